"""The dialer: claim a due task, check the rules, Originate, wait for the outcome, record it.

One batch (``Dialer.run_once``); a periodic sweep (``run_sweep``) runs ``Dialer.drain``, which
claims the next batch as soon as half the originate slots are free, until nothing is due:

1. Claim due tasks with a lease (``store.dialer.claim_due_tasks``: SKIP LOCKED on PostgreSQL,
   one writer on SQLite), at most as many as there are free operators and free originate slots
   (``max_concurrent``), skipping numbers that are on a live call (one live call per patient).
2. A claimed task with an attempt left unfinished under an expired lease is *not* dialled
   again: the stored call carrying its ``CALLBACK_TASK`` gives the outcome (or ``unknown``).
3. Rules before any I/O: working hours (``tasks.schedule``; out of hours → due at the next
   slot), consent for the kind the clinic settings give the task's reason (refused → status
   ``refused`` with the consent's reason), a dialable number (else closed ``undialable``), a
   free operator (the tracker's ``OperatorStateChanged``: nobody on a call, ringing or in
   wrap-up is rung). A task an operator took (``assigned_extension``) is rung operator first
   to that extension only, and waits while that operator is busy.
4. Consent is asked again immediately before the Originate is sent: a withdrawal made a second
   earlier wins.
5. The attempt row is written *before* the Originate is sent, so a crash after sending leaves
   a trace the next holder of the task finds (step 2).
6. ``AmiClient.originate`` with a unique ActionID and ``CALLBACK_TASK``/``PATIENT`` variables;
   the outcome comes from the reply, the OriginateResponse and the tracker's effects
   (``dialer.outcome``), then ``tasks.schedule.decide_after_attempt`` closes or reschedules.

Concurrency: the dialer lives on the AMI client's event loop and learns events through
``DialerTrackingListener``; database work runs in worker threads. The concurrent dials share
their transactions (``Batcher``): the consent checks, the last check plus the attempt rows
(steps 4–5) and the outcomes of all dials that reach that step together are one transaction
each, so the database cost per call falls as the load rises.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from callcenter.ami.actions import OriginateStyle, new_action_id
from callcenter.ami.client import AmiClient, AmiError, AmiNoReply, AmiNotConnected
from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import (
    CallEnded,
    CallerIdentified,
    CallLost,
    CallStarted,
    Effect,
    OperatorStateChanged,
    OperatorStatus,
)
from callcenter.calls.tracker import CallTracker
from callcenter.config import Settings
from callcenter.dialer.outcome import OutcomeBoard, PendingOriginate, outcome_of_stored_disposition
from callcenter.dispatch import EffectDispatcher, StoreWriter, TrackingListener
from callcenter.notify import Notifier, TaskNotice
from callcenter.patients.consent import CallPurpose, may_call
from callcenter.patients.phone import normalize_phone
from callcenter.store import dialer as store
from callcenter.store import queries
from callcenter.store.db import create_db_engine, create_session_factory
from callcenter.store.patients import called_us_within, consent_state_for_phone
from callcenter.store.sink import SqlCallSink, open_call_sink
from callcenter.tasks.schedule import (
    AttemptOutcome,
    ClinicSchedule,
    CloseReasonDialer,
    decide_after_attempt,
    kind_for_reason,
    may_call_at,
    next_call_slot,
)

if TYPE_CHECKING:
    # Only the types: the queries the dialer runs live in callcenter.store.
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: ``normalize_phone`` (pure) remembered: every call's caller is normalized on its start.
_normalized = functools.lru_cache(maxsize=8192)(normalize_phone)

#: How long the dialer keeps the clinic's settings before reading them again.
SCHEDULE_TTL_S = 5.0


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


# -- ports ------------------------------------------------------------------------------------


class Originator(Protocol):
    """What the dialer needs from the AMI client (``AmiClient`` is one)."""

    async def originate(
        self,
        *,
        style: OriginateStyle,
        extension: str,
        patient_number: str,
        task_id: str,
        caller_id: str | None = None,
        timeout_s: float = 30.0,
        action_id: str | None = None,
    ) -> AmiEvent: ...


@dataclass(frozen=True, slots=True)
class Permission:
    """Whether a call may be placed, and why (the same shape as ``patients.consent``)."""

    allowed: bool
    reason: str


class ConsentLookup(Protocol):
    """May we call this number for a task of this kind now?"""

    def __call__(self, *, phone: str, kind: str, at: datetime) -> Permission: ...


class StoreConsentLookup:
    """The real consent check: ``patients.consent.may_call`` over the store's consent state.

    Calling back a number that called us within ``own_request_days`` answers the caller's own
    request: allowed unless the number is on the do-not-call list (``may_call`` decides).
    """

    def __init__(self, *, session_factory: sessionmaker[Session], own_request_days: int) -> None:
        self._sessions = session_factory
        self._own_request = timedelta(days=own_request_days)

    def __call__(self, *, phone: str, kind: str, at: datetime) -> Permission:
        with self._sessions() as session:
            state = consent_state_for_phone(session, phone=phone, at=at)
            own = called_us_within(session, phone=phone, since=at - self._own_request)
        verdict = may_call(purpose=CallPurpose(kind), consent=state, callers_own_request=own)
        return Permission(verdict.allowed, verdict.reason)

    def check_many(self, requests: Sequence[tuple[str, str]], *, at: datetime) -> list[Permission]:
        """Answer several ``(phone, kind)`` questions with one session and a few queries."""
        with self._sessions() as session:
            facts = store.consent_facts_for_phones(
                session, phones={p for p, _ in requests}, at=at, since=at - self._own_request
            )
        answers = []
        for phone, kind in requests:
            fact = facts[phone]
            verdict = may_call(
                purpose=CallPurpose(kind), consent=fact.state, callers_own_request=fact.called_us
            )
            answers.append(Permission(verdict.allowed, verdict.reason))
        return answers


class ConsentScreeningNotifier:
    """A ``Notifier`` that checks consent as soon as a task is opened, then passes every event on.

    The first of the two consent checks: a task whose call is not allowed (do-not-call, no
    consent for a marketing call) gets status ``refused`` with the reason at once, instead of
    waiting in the queue. ``task_changed`` runs on the store writer's thread after the commit,
    so the check may use the database.
    """

    def __init__(
        self,
        *,
        inner: Notifier,
        session_factory: sessionmaker[Session],
        consent: ConsentLookup,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._inner = inner
        self._sessions = session_factory
        self._consent = consent
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        # Every other notification goes to the wrapped notifier unchanged.
        return getattr(self._inner, name)

    def task_changed(self, notice: TaskNotice) -> None:
        """Screen a newly opened task, then pass the notice on."""
        self._inner.task_changed(notice)
        if notice.status != "opened":
            return
        with self._sessions() as session:
            task = queries.get_task(session, task_id=notice.task_id)
            kind = None if task is None else task.kind
        if kind is None:
            return
        verdict = self._consent(phone=notice.phone, kind=kind, at=self._clock())
        if verdict.allowed:
            return
        with self._sessions.begin() as session:
            closed = store.close_task_for(
                session,
                task_id=notice.task_id,
                reason=CloseReasonDialer.REFUSED,
                detail=verdict.reason,
                at=self._clock(),
                worker_id="consent-on-open",
            )
        if closed:
            log.info("task %s refused on opening: %s", notice.task_id, verdict.reason)
            self._inner.task_changed(
                TaskNotice(
                    task_id=notice.task_id,
                    phone=notice.phone,
                    reason=notice.reason,
                    status=store.TASK_REFUSED,
                    linkedid=notice.linkedid,
                    detail=verdict.reason,
                )
            )


# -- live state from the tracker ------------------------------------------------------------


@dataclass
class LiveBoard:
    """Operators' states and the numbers on a live call, from the tracker's effects."""

    operators: dict[str, OperatorStateChanged] = field(default_factory=dict)
    live_phones: dict[str, str] = field(default_factory=dict)  # linkedid → E.164

    def observe(self, effects: Iterable[Effect]) -> None:
        """Take the tracker's effects in stream order."""
        for effect in effects:
            if isinstance(effect, OperatorStateChanged):
                self.operators[effect.agent] = effect
            elif isinstance(effect, CallStarted | CallerIdentified):
                phone = _normalized(effect.caller)
                if phone is not None:
                    self.live_phones[effect.linkedid] = phone
            elif isinstance(effect, CallEnded):
                self.live_phones.pop(effect.call.linkedid, None)
            elif isinstance(effect, CallLost):
                self.live_phones.pop(effect.linkedid, None)

    def is_free(self, agent: str, *, now_ts: float) -> bool:
        """Return True unless the operator is on a call, ringing, in wrap-up, paused or away."""
        state = self.operators.get(agent)
        if state is None or state.status is OperatorStatus.FREE:
            return True
        if state.status is OperatorStatus.WRAP_UP:
            return state.until is not None and state.until <= now_ts
        return False


class DialerTrackingListener(TrackingListener):
    """``TrackingListener`` that also shows every event and its effects to the dialer."""

    def __init__(self, *, dialer: Dialer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dialer = dialer
        self.resynced = asyncio.Event()

    def on_event(self, event: AmiEvent) -> None:
        """Feed the tracker, show the dialer, then dispatch as usual."""
        effects = self.tracker.feed(event)
        self.dialer.observe(event, effects)
        if effects:
            self.dispatcher.dispatch(effects)

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None:
        """Re-sync the tracker and show the dialer what it found."""
        effects = self.tracker.resync(channels=channels, queue_entries=queue_entries, at=at)
        self.dialer.observe(None, effects)
        if effects:
            self.dispatcher.dispatch(effects)
        self.resynced.set()


# -- batching database work -------------------------------------------------------------------

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs a blocking ``run(items) -> results`` over everything submitted while it was busy.

    Concurrent dials each ``await submit(item)``; the first starts a run in a worker thread,
    and whatever arrives meanwhile goes into the next run. One transaction serves many dials
    under load, and a lone dial is not delayed. An exception of a run is raised in every
    submitter of that run; an exception *returned* for one item is raised in its submitter only.
    """

    def __init__(self, run: Callable[[list[T]], Sequence[R | Exception]]) -> None:
        self._run = run
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False

    def submit(self, item: T) -> Awaitable[R]:
        """Queue ``item``; the returned awaitable gives its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await asyncio.to_thread(self._run, [item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"batch of {len(batch)} gave {len(results)} results")
                except Exception as exc:  # handed to every waiter of this batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if future.done():
                            continue
                        if isinstance(result, Exception):
                            future.set_exception(result)
                        else:
                            future.set_result(result)
        finally:
            self._running = False


@dataclass(frozen=True, slots=True)
class _PreDial:
    """One dial's last step before its Originate: consent again, then its attempt row."""

    start: store.AttemptStart
    phone: str
    kind: str


# -- the dialer -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DialerConfig:
    """How this dialer dials; see ``config_from_settings`` for the environment names."""

    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    style: OriginateStyle = "patient_first"
    operators: tuple[str, ...] = ("101",)  # extensions the dialer may connect callbacks to
    max_concurrent: int = 2  # Originates in flight at once, per dialer process
    originate_timeout_s: float = 30.0  # how long the first channel rings
    outcome_grace_s: float = 15.0  # extra wait for the OriginateResponse after that
    answer_wait_s: float = 45.0  # after the first side answered: wait for the second
    lease_s: float = 300.0  # longer than the whole wait above, so a live attempt keeps its task
    own_request_days: int = 30  # a number that called us this recently asked for the call
    caller_id: str | None = None

    def __post_init__(self) -> None:
        if self.style not in ("operator_first", "patient_first"):
            raise ValueError(f"unknown dialer style {self.style!r}")
        if not self.operators:
            raise ValueError("the dialer needs at least one operator extension")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {self.max_concurrent}")
        longest = self.originate_timeout_s + self.outcome_grace_s + self.answer_wait_s
        if self.lease_s <= longest:
            raise ValueError(f"lease_s ({self.lease_s}) must exceed the longest wait ({longest})")


def config_from_settings(settings: Settings) -> DialerConfig:
    """Build the dialer's config from the deployment settings (``DIALER_*`` variables)."""
    return DialerConfig(
        style=cast(OriginateStyle, settings.dialer_style),
        operators=settings.dialer_operators,
        max_concurrent=settings.dialer_max_concurrent,
        originate_timeout_s=settings.dialer_originate_timeout_s,
        lease_s=settings.dialer_lease_s,
        own_request_days=settings.dialer_own_request_days,
        caller_id=settings.dialer_caller_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DialResult:
    """What one sweep did with one claimed task."""

    task_id: int
    action: str  # dialled | resolved_earlier_attempt | out_of_hours | refused | undialable |
    # no_free_operator | lost_lease | unavailable (dial_now: not open, or held elsewhere)
    outcome: AttemptOutcome | None = None
    task_state: str | None = None  # rescheduled | closed | already_closed
    detail: str = ""


class Dialer:
    """Dials due callback tasks; see the module docstring."""

    def __init__(
        self,
        *,
        config: DialerConfig,
        session_factory: sessionmaker[Session],
        originator: Originator | None,
        consent: ConsentLookup,
        clock: Callable[[], datetime] = utc_now,
        schedule: ClinicSchedule | None = None,
        default_schedule: ClinicSchedule | None = None,
    ) -> None:
        """``schedule`` fixes the rules (tests); else the saved clinic settings apply, and
        ``default_schedule`` until any are saved."""
        self.config = config
        self._default_schedule = default_schedule
        self._sessions = session_factory
        # May be attached after construction: the AMI client needs the dialer's listener first.
        self.originator = originator
        self.consent = consent
        self._clock = clock
        self._fixed_schedule = schedule
        self.outcomes = OutcomeBoard()
        self.live = LiveBoard()
        self._signals: dict[str, asyncio.Event] = {}
        self._operators_in_use: set[str] = set()
        self._in_flight = 0
        self._schedule_cache: tuple[float, ClinicSchedule] | None = None
        self._assigned_active: Counter[str] = Counter()  # extensions of taken tasks in hand
        # Concurrent dials share transactions: consent checks, attempt starts, outcomes.
        self._consent_checks: Batcher[tuple[str, str], Permission] = Batcher(self._consent_many)
        self._starts: Batcher[_PreDial, bool | Permission] = Batcher(self._pre_dial)
        self._finishes: Batcher[store.AttemptFinish, str] = Batcher(self._finish_attempts)

    # -- events (on the AMI client's loop) ----------------------------------------------------

    def observe(self, event: AmiEvent | None, effects: Iterable[Effect]) -> None:
        """Take one AMI event (None for a re-sync) and the tracker's effects of it."""
        effects = list(effects)
        if effects:
            self.live.observe(effects)
        for entry in self.outcomes.observe(event, effects):
            signal = self._signals.get(entry.action_id)
            if signal is not None and (entry.outcome is not None or entry.reason is not None):
                signal.set()

    # -- a sweep --------------------------------------------------------------------------------

    async def run_once(self) -> list[DialResult]:
        """Claim what can be dialled now, dial it, and return what became of each task."""
        now = self._clock()
        free = self._free_operators(now)
        room = min(self.config.max_concurrent - self._in_flight, len(free))
        if room <= 0:
            return []
        claimed = await asyncio.to_thread(self._claim, now=now, limit=room)
        if not claimed:
            return []
        schedule = await asyncio.to_thread(self._load_schedule)
        self._reserve(claimed)
        # Every dial runs to its end even if another fails: a call in flight is never dropped.
        done = await asyncio.gather(
            *(self._handle_claimed(t, schedule) for t in claimed), return_exceptions=True
        )
        results: list[DialResult] = []
        failure: BaseException | None = None
        for task, result in zip(claimed, done, strict=True):
            if isinstance(result, BaseException):
                # A bug or the database gone: the lease expires and the task is picked up
                # again, where an attempt left unfinished is resolved, not re-dialled.
                log.error("dialer: task %s failed", task.task_id, exc_info=result)
                failure = failure or result
            else:
                results.append(result)
        if failure is not None:
            raise failure
        return results

    async def drain(self, *, budget_s: float | None = None) -> list[DialResult]:
        """Keep dialling until nothing can be dialled now; return what became of each task.

        Unlike ``run_once`` (one batch, then wait for all of it), a new claim is made as soon
        as half of the ``max_concurrent`` slots are free again, so the Originates in
        flight stay near the cap. Stops claiming after ``budget_s`` seconds and returns when
        the dials in flight are done. A failed dial is raised after every other one finished.
        An empty claim while dials are in flight is tried again after the next one ends (the
        rows may only have been locked by another dialer's claim); two in a row end it.
        """
        loop = asyncio.get_running_loop()
        stop_at = None if budget_s is None else loop.time() + budget_s
        cap = self.config.max_concurrent
        batch = max(1, cap // 2)
        running: dict[asyncio.Task[DialResult], int] = {}
        results: list[DialResult] = []
        failure: BaseException | None = None
        empty_claims = 0
        while True:
            room = self._room(active=len(running))
            want_more = empty_claims < 2 and (stop_at is None or loop.time() < stop_at)
            if want_more and room > 0 and (room >= batch or not running):
                now = self._clock()
                claimed = await asyncio.to_thread(self._claim, now=now, limit=room)
                empty_claims = 0 if claimed else empty_claims + 1
                if claimed:
                    schedule = await asyncio.to_thread(self._load_schedule)
                    self._reserve(claimed)
                    for task in claimed:
                        running[asyncio.ensure_future(self._handle_claimed(task, schedule))] = (
                            task.task_id
                        )
            if not running:
                if want_more and room > 0 and empty_claims == 1:
                    continue  # one empty claim may be another dialer's lock: look once more
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                task_id = running.pop(finished)
                error = finished.exception()
                if error is not None:
                    log.error("dialer: task %s failed", task_id, exc_info=error)
                    failure = failure or error
                    empty_claims = 2  # stop claiming: something is wrong
                else:
                    results.append(finished.result())
        if failure is not None:
            raise failure
        return results

    def _room(self, *, active: int) -> int:
        """How many more tasks may be claimed now: free slots, and free operators left over
        by the dials that have not taken one yet."""
        free = len(self._free_operators(self._clock()))
        waiting = max(0, active - len(self._operators_in_use))
        return min(self.config.max_concurrent - active, free - waiting)

    def _reserve(self, claimed: Iterable[store.ClaimedTask]) -> None:
        for task in claimed:
            if task.assigned_extension:
                self._assigned_active[task.assigned_extension] += 1

    async def _handle_claimed(
        self, task: store.ClaimedTask, schedule: ClinicSchedule
    ) -> DialResult:
        try:
            return await self._handle(task, schedule)
        finally:
            if task.assigned_extension:
                self._assigned_active[task.assigned_extension] -= 1
                if self._assigned_active[task.assigned_extension] <= 0:
                    del self._assigned_active[task.assigned_extension]

    def _claim(self, *, now: datetime, limit: int) -> list[store.ClaimedTask]:
        with self._sessions.begin() as session:
            return store.claim_due_tasks(
                session,
                worker_id=self.config.worker_id,
                now=now,
                lease_s=self.config.lease_s,
                limit=limit,
                exclude_phones=set(self.live.live_phones.values()),
            )

    def _load_schedule(self) -> ClinicSchedule:
        """The clinic's rules: re-read at most every ``SCHEDULE_TTL_S``, not per sweep."""
        if self._fixed_schedule is not None:
            return self._fixed_schedule
        cached = self._schedule_cache
        if cached is not None and time.monotonic() - cached[0] < SCHEDULE_TTL_S:
            return cached[1]
        with self._sessions() as session:
            schedule = store.load_clinic_schedule(session, default=self._default_schedule)
        self._schedule_cache = (time.monotonic(), schedule)
        return schedule

    def _claim_one(self, task_id: int, now: datetime) -> store.ClaimedTask | None:
        with self._sessions.begin() as session:
            return store.claim_task(
                session,
                task_id=task_id,
                worker_id=self.config.worker_id,
                now=now,
                lease_s=self.config.lease_s,
            )

    def _is_free(self, extension: str, now: datetime) -> bool:
        return extension not in self._operators_in_use and self.live.is_free(
            extension, now_ts=now.timestamp()
        )

    def _free_operators(self, now: datetime) -> list[str]:
        return [ext for ext in self.config.operators if self._is_free(ext, now)]

    async def _handle(self, task: store.ClaimedTask, schedule: ClinicSchedule) -> DialResult:
        if task.unfinished:
            return await asyncio.to_thread(self._resolve_earlier_attempt, task, schedule)
        now = self._clock()
        if not may_call_at(now, schedule):
            due = next_call_slot(now, schedule)
            await asyncio.to_thread(self._release, task.task_id, due)
            return DialResult(task_id=task.task_id, action="out_of_hours", detail=due.isoformat())
        # The kind the supervisors set for this reason wins over the one the task was opened
        # with: reclassifying a reason as marketing must take effect for open tasks too.
        kind = (
            str(schedule.kinds[task.reason])
            if task.reason in schedule.kinds
            else task.kind or str(kind_for_reason(task.reason, schedule))
        )
        refused = await self._check_consent(task, kind)
        if refused is not None:
            return refused
        number = dial_string(task.phone)
        if number is None:
            await asyncio.to_thread(
                self._close, task.task_id, CloseReasonDialer.UNDIALABLE, task.phone
            )
            return DialResult(task_id=task.task_id, action="undialable", detail=task.phone)
        style: OriginateStyle = self.config.style
        if task.assigned_extension is not None:
            # Taken by an operator: that operator only, rung first.
            style = "operator_first"
            mine = task.assigned_extension
            operator = mine if self._is_free(mine, now) else None
        else:
            # Operators whose taken tasks are being handled are theirs, not the pool's.
            free = (ext for ext in self._free_operators(now) if ext not in self._assigned_active)
            operator = next(free, None)
        if operator is None:
            due = next_call_slot(now + timedelta(seconds=schedule.not_an_attempt_gap_s), schedule)
            await asyncio.to_thread(self._release, task.task_id, due)
            return DialResult(task_id=task.task_id, action="no_free_operator")
        self._operators_in_use.add(operator)
        self._in_flight += 1
        try:
            return await self._dial(
                task, schedule, kind=kind, number=number, operator=operator, style=style
            )
        finally:
            self._operators_in_use.discard(operator)
            self._in_flight -= 1

    async def dial_now(self, task_id: int) -> DialResult:
        """Dial one task now, due or not (an operator asked), with every check of a sweep.

        ``action`` is ``unavailable`` when the task is not open or another dialer holds it.
        """
        now = self._clock()
        claimed = await asyncio.to_thread(self._claim_one, task_id, now)
        if claimed is None:
            return DialResult(task_id=task_id, action="unavailable")
        schedule = await asyncio.to_thread(self._load_schedule)
        return await self._handle(claimed, schedule)

    async def _dial(
        self,
        task: store.ClaimedTask,
        schedule: ClinicSchedule,
        *,
        kind: str,
        number: str,
        operator: str,
        style: OriginateStyle,
    ) -> DialResult:
        task_ref = str(task.task_id)
        action_id = new_action_id(f"cb-{task_ref}")
        # The second consent check, immediately before the call (a fresh withdrawal wins), and
        # the attempt row written before the Originate goes out: one step, batched.
        started = await self._starts.submit(
            _PreDial(
                start=store.AttemptStart(task_id=task.task_id, action_id=action_id),
                phone=task.phone,
                kind=kind,
            )
        )
        if isinstance(started, Permission):
            return DialResult(task_id=task.task_id, action="refused", detail=started.reason)
        if not started:
            return DialResult(task_id=task.task_id, action="lost_lease")
        entry = self.outcomes.watch(action_id=action_id, task_id=task_ref, style=style)
        signal = self._signals[action_id] = asyncio.Event()
        try:
            outcome, detail = await self._originate_and_wait(
                entry, signal, number=number, operator=operator, style=style
            )
        finally:
            self.outcomes.forget(action_id)
            self._signals.pop(action_id, None)
        state = await self._finishes.submit(
            self._finish_of(task, schedule, action_id, outcome, entry.linkedid)
        )
        log.info(
            "dialer: task %s → %s (%s) %s; task %s",
            task.task_id,
            outcome,
            action_id,
            detail,
            state,
        )
        return DialResult(
            task_id=task.task_id, action="dialled", outcome=outcome, task_state=state, detail=detail
        )

    async def _originate_and_wait(
        self,
        entry: PendingOriginate,
        signal: asyncio.Event,
        *,
        number: str,
        operator: str,
        style: OriginateStyle,
    ) -> tuple[AttemptOutcome, str]:
        cfg = self.config
        if self.originator is None:
            raise RuntimeError("Dialer.originator is not attached")
        try:
            reply = await self.originator.originate(
                style=style,
                extension=operator,
                patient_number=number,
                task_id=entry.task_id,
                caller_id=cfg.caller_id,
                timeout_s=cfg.originate_timeout_s,
                action_id=entry.action_id,
            )
        except AmiNotConnected as exc:
            return AttemptOutcome.NOT_SENT, str(exc)
        except AmiNoReply as exc:
            # It may have been sent: an OriginateResponse may still come on this link.
            log.warning("dialer: task %s: %s; waiting for an outcome anyway", entry.task_id, exc)
            detail = str(exc)
        except AmiError as exc:
            return AttemptOutcome.REJECTED, str(exc)
        else:
            entry.feed_reply(reply)
            detail = reply.get("Message") or reply.name
            if entry.outcome is AttemptOutcome.REJECTED:
                return AttemptOutcome.REJECTED, detail
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.originate_timeout_s + cfg.outcome_grace_s
        extended = False
        while entry.outcome is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                if entry.reason is not None and not extended:
                    # The first side answered (or ended): give the second side its time.
                    extended = True
                    deadline = loop.time() + cfg.answer_wait_s
                    continue
                break
            signal.clear()
            if entry.outcome is not None:
                break
            try:
                await asyncio.wait_for(signal.wait(), remaining)
            except TimeoutError:
                continue
        return entry.outcome_at_deadline(), detail

    # -- database steps (worker threads) --------------------------------------------------------

    async def _check_consent(self, task: store.ClaimedTask, kind: str) -> DialResult | None:
        verdict = await self._consent_checks.submit((task.phone, kind))
        if verdict.allowed:
            return None
        await asyncio.to_thread(
            self._close, task.task_id, CloseReasonDialer.REFUSED, verdict.reason
        )
        return DialResult(task_id=task.task_id, action="refused", detail=verdict.reason)

    def _consent_many(self, requests: list[tuple[str, str]]) -> Sequence[Permission | Exception]:
        at = self._clock()
        many = getattr(self.consent, "check_many", None)
        if many is not None:
            return cast(Sequence[Permission], many(requests, at=at))
        answers: list[Permission | Exception] = []
        for phone, kind in requests:
            try:
                answers.append(self.consent(phone=phone, kind=kind, at=at))
            except Exception as exc:  # this task's failure, not its neighbours'
                answers.append(exc)
        return answers

    def _pre_dial(self, items: list[_PreDial]) -> list[bool | Permission | Exception]:
        """Ask consent again for each, then record the attempts of those allowed.

        Per item: True (attempt recorded: send the Originate), False (the lease is lost), the
        refusing ``Permission`` (the task is now ``refused``) or this item's exception.
        """
        verdicts = self._consent_many([(i.phone, i.kind) for i in items])
        allowed = [
            i.start
            for i, v in zip(items, verdicts, strict=True)
            if isinstance(v, Permission) and v.allowed
        ]
        started: set[int] = set()
        if allowed:
            with self._sessions.begin() as session:
                started = store.start_attempts(
                    session, starts=allowed, worker_id=self.config.worker_id, now=self._clock()
                )
        answers: list[bool | Permission | Exception] = []
        for item, verdict in zip(items, verdicts, strict=True):
            if isinstance(verdict, Exception):
                answers.append(verdict)
            elif not verdict.allowed:
                self._close(item.start.task_id, CloseReasonDialer.REFUSED, verdict.reason)
                answers.append(verdict)
            else:
                answers.append(item.start.task_id in started)
        return answers

    def _finish_of(
        self,
        task: store.ClaimedTask,
        schedule: ClinicSchedule,
        action_id: str | None,
        outcome: AttemptOutcome,
        linkedid: str | None,
    ) -> store.AttemptFinish:
        now = self._clock()
        return store.AttemptFinish(
            task_id=task.task_id,
            action_id=action_id,
            outcome=outcome,
            linkedid=linkedid,
            ended_at=now,
            decision=decide_after_attempt(
                outcome=outcome, attempts_before=task.attempts, finished_at=now, schedule=schedule
            ),
        )

    def _finish_attempts(self, finishes: list[store.AttemptFinish]) -> list[str]:
        with self._sessions.begin() as session:
            return store.finish_attempts(
                session, finishes=finishes, worker_id=self.config.worker_id
            )

    def _close(self, task_id: int, reason: CloseReasonDialer, detail: str) -> None:
        with self._sessions.begin() as session:
            store.close_task_for(
                session,
                task_id=task_id,
                reason=reason,
                detail=detail,
                at=self._clock(),
                worker_id=self.config.worker_id,
            )

    def _release(self, task_id: int, due_at: datetime | None) -> None:
        with self._sessions.begin() as session:
            store.release_task(
                session, task_id=task_id, worker_id=self.config.worker_id, due_at=due_at
            )

    def _finish(
        self,
        task: store.ClaimedTask,
        schedule: ClinicSchedule,
        action_id: str | None,
        outcome: AttemptOutcome,
        linkedid: str | None,
    ) -> str:
        finish = self._finish_of(task, schedule, action_id, outcome, linkedid)
        return self._finish_attempts([finish])[0]

    def _resolve_earlier_attempt(
        self, task: store.ClaimedTask, schedule: ClinicSchedule
    ) -> DialResult:
        """Take the outcome of a call placed under an expired lease instead of dialling again."""
        earliest = min(u.started_at for u in task.unfinished)
        with self._sessions() as session:
            call = store.find_callback_call(session, task_id=task.task_id, since=earliest)
            found = None if call is None else (call.disposition, call.linkedid)
        outcome = (
            AttemptOutcome.UNKNOWN if found is None else outcome_of_stored_disposition(found[0])
        )
        state = ""
        for unfinished in task.unfinished:
            state = self._finish(
                task, schedule, unfinished.action_id, outcome, None if found is None else found[1]
            )
        return DialResult(
            task_id=task.task_id,
            action="resolved_earlier_attempt",
            outcome=outcome,
            task_state=state,
            detail="from the stored call" if found else "no call stored for it",
        )


def dial_string(phone: str) -> str | None:
    """Return the digits to dial for a stored E.164 number, or None when it cannot be dialled.

    >>> dial_string("+79031234567"), dial_string("+7903,1"), dial_string("")
    ('79031234567', None, None)
    """
    digits = phone[1:] if phone.startswith("+") else phone
    if not digits.isdigit() or not 5 <= len(digits) <= 15:
        return None
    return digits


# -- wiring ---------------------------------------------------------------------------------


@dataclass
class DialerProcess:
    """A dialer with its own AMI link and tracker; started and stopped together.

    With ``store_calls`` the link also stores calls and applies the task rules, as the
    listener does (``callcenter serve`` can run one link for both); without it only the dialer
    learns from the events (a ``callcenter worker`` next to a separate listener).
    """

    client: AmiClient
    listener: DialerTrackingListener
    dialer: Dialer
    writer: StoreWriter | None
    sink: SqlCallSink | None
    engine: Engine

    async def start(self) -> None:
        """Connect to AMI; returns at once."""
        await self.client.start()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until logged in and re-synced (operators' states known); False on timeout."""
        try:
            await asyncio.wait_for(self.listener.resynced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the link, then write what was received, then close the database."""
        await self.client.stop()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.stop)
        if self.sink is not None:
            self.sink.close()
        self.engine.dispose()


def build_dialer_process(
    settings: Any,
    *,
    notifier: Notifier,
    store_calls: bool,
    config: DialerConfig | None = None,
    consent: ConsentLookup | None = None,
    clock: Callable[[], datetime] = utc_now,
    schedule: ClinicSchedule | None = None,
) -> DialerProcess:
    """Wire AMI client → tracker → dialer (and optionally → store) for one dialer process."""
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    cfg = config or config_from_settings(settings)
    dialer = Dialer(
        config=cfg,
        session_factory=sessions,
        originator=None,
        consent=consent
        or StoreConsentLookup(session_factory=sessions, own_request_days=cfg.own_request_days),
        clock=clock,
        schedule=schedule,
        default_schedule=ClinicSchedule(tz=settings.timezone),
    )
    sink = open_call_sink(settings.database_url) if store_calls else None
    writer = StoreWriter(name="dialer-store-writer") if store_calls else None
    if store_calls:
        notifier = ConsentScreeningNotifier(
            inner=notifier, session_factory=sessions, consent=dialer.consent, clock=clock
        )
    dispatcher = EffectDispatcher(notifier=notifier, sink=sink, writer=writer)
    tracker = CallTracker(wrapup_s=float(getattr(settings, "queue_wrapup_s", 0.0)))
    listener = DialerTrackingListener(dialer=dialer, tracker=tracker, dispatcher=dispatcher)
    client = AmiClient.from_settings(settings, listener=listener)
    dialer.originator = client
    return DialerProcess(
        client=client, listener=listener, dialer=dialer, writer=writer, sink=sink, engine=engine
    )


#: How long one periodic sweep keeps claiming (the sweep fires every minute).
SWEEP_BUDGET_S = 45.0


async def run_sweep(
    process: DialerProcess, *, ready_timeout: float = 10.0, budget_s: float = SWEEP_BUDGET_S
) -> list[DialResult]:
    """Run one dialer sweep on a started process: dial until nothing is due now (claiming for
    at most ``budget_s``). Nothing is dialled without a logged-in, re-synced link."""
    if not await process.wait_ready(ready_timeout):
        log.warning("dialer: AMI link not ready within %gs; sweep skipped", ready_timeout)
        return []
    return await process.dialer.drain(budget_s=budget_s)
