"""Effects → rows, tasks and notifications: the edge the pure tracker hands its results to.

Concurrency: the AMI listener runs on an asyncio loop and must never block on the database,
so every write goes to one ``StoreWriter`` thread, in order. One writer also gives SQLite the
single-writer discipline it needs. Notifications of calls go out at once from the loop; task
notices go out from the writer after their transaction commits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallStarted,
    Effect,
    OperatorStateChanged,
)
from callcenter.calls.model import CallRecord
from callcenter.calls.tracker import CallTracker
from callcenter.notify import Notifier, TaskNotice

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store cannot be reached now (connection refused or lost); the same write may work later.

    A ``CallSink`` raises it for a lost database connection; ``StoreWriter`` then holds the job
    and every job after it and retries with backoff, instead of dropping the write.
    """


class CallSink(Protocol):
    """Where finished calls and link gaps are kept (the store, or a fake in tests).

    Every method may raise ``StoreUnavailable``; it must then be safe to call again with the
    same arguments (``save_call`` stores a linkedid once however often it is called).
    """

    def save_call(self, call: CallRecord) -> list[TaskNotice]: ...
    def open_gap(self, *, at: float, reason: str) -> int: ...
    def close_gap(self, *, gap_id: int, at: float) -> None: ...


_STOP = object()


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of a ``StoreWriter``'s counters (metrics, tests)."""

    backlog: int  # jobs submitted and not yet done (held ones included)
    failures: int  # jobs that failed for good (a bug or bad data: logged with the traceback)
    retries: int  # attempts repeated because the store was unreachable
    dropped: int  # jobs given up at stop because the store stayed unreachable
    unavailable_since: float | None  # time.time() of the first failed attempt of the outage


class StoreWriter:
    """Run store work on one thread, in submission order; ``stop`` drains what is queued.

    A job that raises ``StoreUnavailable`` is held: it is retried with capped exponential
    backoff (``retry_initial`` doubling up to ``retry_max``), and the jobs after it wait, so
    effects are written in order once the store is back. Only ``stop`` gives up on a store that
    stays unreachable past its timeout, and then logs every write it drops. Any other exception
    is a failed job: logged with its traceback, counted, and the next job runs.
    """

    def __init__(
        self,
        *,
        name: str = "store-writer",
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        if not 0 < retry_initial <= retry_max:
            raise ValueError(
                f"need 0 < retry_initial <= retry_max, got {retry_initial}, {retry_max}"
            )
        self.name = name
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._queue: queue.Queue[tuple[object, str | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._stop_deadline: float | None = None
        self._wake = threading.Event()
        self.failures = 0
        self.retries = 0
        self.dropped = 0
        self._unavailable_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def stats(self) -> WriterStats:
        """Return the counters and the backlog now."""
        with self._lock:
            return WriterStats(
                backlog=self._pending,
                failures=self.failures,
                retries=self.retries,
                dropped=self.dropped,
                unavailable_since=self._unavailable_since,
            )

    def submit(self, job: Callable[[], None], *, what: str | None = None) -> None:
        """Queue a job; it runs after every job submitted before it.

        ``what`` names the job in the log if it has to be dropped (e.g. ``"call 1795.12"``).
        """
        with self._lock:
            self._pending += 1
        self._queue.put((job, what))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every job submitted so far has run; return False on timeout."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Run what is queued, then end the thread.

        A held write is retried until ``timeout``; after that, writes the unreachable store
        refuses are dropped with an error naming each of them.
        """
        with self._lock:
            self._stop_deadline = time.monotonic() + timeout
        self._queue.put((_STOP, None))
        self._wake.set()
        self._thread.join(timeout + 5.0)

    def _run(self) -> None:
        while True:
            job, what = self._queue.get()
            if job is _STOP:
                return
            try:
                self._run_held(job, what)  # type: ignore[arg-type]
            finally:
                with self._lock:
                    self._pending -= 1

    def _run_held(self, job: Callable[[], None], what: str | None) -> None:
        delay = self.retry_initial
        while True:
            try:
                job()
            except StoreUnavailable as exc:
                if self._give_up(exc, what):
                    return
                self._pause(delay)
                delay = min(self.retry_max, delay * 2)
                continue
            except Exception:
                # A failed write must not stop later ones; it is logged with its traceback
                # and counted, and the call stays in the log line.
                with self._lock:
                    self.failures += 1
                log.exception("store job failed%s", f" ({what})" if what else "")
                return
            self._recovered()
            return

    def _pause(self, delay: float) -> None:
        """Wait before the next attempt; once stopping, never past the stop deadline."""
        with self._lock:
            deadline = self._stop_deadline
        if deadline is None:
            self._wake.wait(delay)  # stop() wakes it, to retry at once and then give up
        else:
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def _give_up(self, exc: StoreUnavailable, what: str | None) -> bool:
        """Count a failed attempt; return True when the job must be dropped (stopping)."""
        with self._lock:
            first = self._unavailable_since is None
            if first:
                self._unavailable_since = time.time()
            deadline = self._stop_deadline
            backlog = self._pending
            if deadline is not None and time.monotonic() >= deadline:
                self.dropped += 1
                dropping = True
            else:
                self.retries += 1
                dropping = False
        if dropping:
            log.error(
                "store unreachable at stop (%s): dropping %s",
                exc,
                what or "a write",
                extra={"store_backlog": backlog},
            )
            return True
        if first:
            log.error(
                "store unreachable (%s): holding %d write(s), retrying every %g-%gs",
                exc,
                backlog,
                self.retry_initial,
                self.retry_max,
                extra={"store_backlog": backlog},
            )
        return False

    def _recovered(self) -> None:
        with self._lock:
            since, self._unavailable_since = self._unavailable_since, None
            backlog = self._pending - 1
        if since is not None:
            log.warning(
                "store reachable again after %.1fs; writing %d held write(s)",
                time.time() - since,
                backlog,
                extra={"store_backlog": backlog},
            )


@dataclass
class EffectDispatcher:
    """Send each tracker effect to the notifier and, through the writer, to the store."""

    notifier: Notifier
    sink: CallSink | None = None
    writer: StoreWriter | None = None

    def dispatch(self, effects: Iterable[Effect]) -> None:
        """Handle effects in order."""
        for effect in effects:
            if isinstance(effect, CallEnded):
                self._call_ended(effect.call)
            elif isinstance(effect, AgentRinging):
                self.notifier.call_ringing(effect)
            elif isinstance(effect, AgentStoppedRinging):
                # A ring-all queue's other phones stop: their screen pops are withdrawn.
                self.notifier.agent_stopped_ringing(effect)
            elif isinstance(effect, CallStarted):
                self.notifier.call_started(effect)
            elif isinstance(effect, CallQueued):
                self.notifier.call_queued(effect)
            elif isinstance(effect, CallAnswered):
                self.notifier.call_answered(effect)
            elif isinstance(effect, OperatorStateChanged):
                self.notifier.operator_state(effect)

    def _call_ended(self, call: CallRecord) -> None:
        log.info(
            "call ended",
            extra={"linkedid": call.linkedid, "disposition": str(call.disposition)},
        )
        self.notifier.call_ended(call)
        sink = self.sink
        if sink is None:
            return

        def save() -> None:
            for notice in sink.save_call(call):
                self.notifier.task_changed(notice)

        self.write(save, what=f"call {call.linkedid} ({call.disposition})")

    def write(self, job: Callable[[], None], *, what: str | None = None) -> None:
        """Run a store job on the writer thread (or at once without one)."""
        if self.writer is None:
            job()
        else:
            self.writer.submit(job, what=what)


class TrackingListener:
    """The AMI client's listener: events → tracker → dispatcher; link gaps → store."""

    def __init__(
        self,
        *,
        tracker: CallTracker,
        dispatcher: EffectDispatcher,
    ) -> None:
        self.tracker = tracker
        self.dispatcher = dispatcher
        self._gap_id: int | None = None
        self.link_up = False

    def on_event(self, event: AmiEvent) -> None:
        """Feed one AMI event to the tracker and dispatch what it reports."""
        effects = self.tracker.feed(event)
        if effects:
            self.dispatcher.dispatch(effects)

    def on_link_up(self, *, at: float) -> None:
        """Close the open gap, if any, and tell the screens."""
        self.link_up = True
        self.dispatcher.notifier.link_state(up=True, at=at, reason=None)
        sink = self.dispatcher.sink
        if sink is None:
            return

        def close() -> None:
            # Runs on the writer after the open job below, so _gap_id is set by then.
            if self._gap_id is not None:
                sink.close_gap(gap_id=self._gap_id, at=at)
                self._gap_id = None

        self.dispatcher.write(close, what=f"AMI gap end at {at:.3f}")

    def on_link_down(self, *, at: float, reason: str) -> None:
        """Open a gap at once: until the link is back, calls may go unseen."""
        was_up, self.link_up = self.link_up, False
        self.dispatcher.notifier.link_state(up=False, at=at, reason=reason)
        sink = self.dispatcher.sink
        if not was_up:
            return  # still down (a failed reconnect): the open gap already covers it
        if sink is None:
            log.warning("AMI link down at %.3f (%s); calls may be missing", at, reason)
            return

        def open_() -> None:
            self._gap_id = sink.open_gap(at=at, reason=reason)

        self.dispatcher.write(open_, what=f"AMI gap start at {at:.3f} ({reason})")

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None:
        """Re-attach calls still live after a reconnect; report the ones that vanished."""
        effects = self.tracker.resync(channels=channels, queue_entries=queue_entries, at=at)
        if effects:
            self.dispatcher.dispatch(effects)
