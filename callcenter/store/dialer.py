"""The dialer's reads and writes: clinic settings with history, claims with leases, attempts.

The caller owns the transaction. Claiming is the one place where back-ends differ:

* PostgreSQL: ``SELECT … FOR UPDATE OF tasks SKIP LOCKED`` — concurrent dialers skip the rows
  another one is claiming, and the lease written before commit keeps them off afterwards.
  Because a statement's snapshot may predate another dialer's committed lease, the leases of
  the rows we locked are read again (a new statement sees every commit) before they are taken.
* SQLite: every transaction begins IMMEDIATE (``store.db``), so one dialer claims at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from callcenter.patients.consent import (
    ConsentRecordView,
    ConsentState,
    consent_state_from_records,
)
from callcenter.patients.phone import normalize_phone
from callcenter.store import queries
from callcenter.store.db import _ADVISORY_LOCK_NAMESPACE as ADVISORY_LOCK_NAMESPACE
from callcenter.store.models import Call, Task, TaskAttempt, TaskEvent
from callcenter.store.models_dialer import ClinicSettingsVersion, TaskLease
from callcenter.store.models_patients import ConsentRecord, DoNotCall, PatientPhone
from callcenter.store.patients import phone_hash
from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import (
    DROPPED_CALL_REASONS,
    AttemptDecision,
    AttemptOutcome,
    ClinicSchedule,
    CloseAfterAttempt,
    CloseReasonDialer,
    Reschedule,
    schedule_from_json,
    schedule_to_json,
)

#: ``normalize_phone`` (pure) remembered: the dialer asks about the same numbers again and again.
_normalized = functools.lru_cache(maxsize=8192)(normalize_phone)

#: How often a claim looks again when every row it found was leased meanwhile.
_CLAIM_TRIES = 3

EVENT_ATTEMPT = "attempt"
EVENT_REFUSED = "refused"
#: A task whose call consent does not allow; ``close_reason`` holds the consent's reason.
TASK_REFUSED = "refused"
#: Every status a task can have, in the order ``callcenter tasks`` shows them.
TASK_STATUSES = (queries.TASK_OPEN, TASK_REFUSED, queries.TASK_CLOSED)


# -- clinic settings ------------------------------------------------------------------------


def load_clinic_schedule(
    session: Session, *, default: ClinicSchedule | None = None
) -> ClinicSchedule:
    """Return the clinic's schedule in force: the newest saved version, else ``default``."""
    row = session.scalar(
        select(ClinicSettingsVersion)
        .order_by(ClinicSettingsVersion.changed_at.desc(), ClinicSettingsVersion.id.desc())
        .limit(1)
    )
    if row is None:
        return default if default is not None else ClinicSchedule()
    return schedule_from_json(row.schedule_json)


def save_clinic_schedule(
    session: Session,
    schedule: ClinicSchedule,
    *,
    by: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
    changed_by: str | None = None,
) -> int:
    """Save a new version of the clinic's schedule (hours, holidays, retry gaps, attempt
    limits, the kind of each reason); earlier versions stay as history. Returns its id.

    ``by`` is who saved it (``changed_by`` is the older name of the same argument); ``at``
    defaults to now.

    :raises ValueError: nobody named, or a reason's kind that is not service or marketing.
    """
    who = (by if by is not None else changed_by or "").strip()
    if not who:
        raise ValueError("save_clinic_schedule: say who saved the settings (by=...)")
    if by is not None and changed_by is not None and by != changed_by:
        raise ValueError("save_clinic_schedule: give either by or changed_by, not both")
    for reason, kind in schedule.kinds.items():
        if not reason or str(kind) not in {str(k) for k in TaskKind}:
            raise ValueError(f"reason {reason!r}: kind must be service or marketing, got {kind!r}")
    row = ClinicSettingsVersion(
        schedule_json=schedule_to_json(schedule),
        changed_by=who,
        changed_at=at if at is not None else datetime.now(UTC),
        note=note,
    )
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True, slots=True, kw_only=True)
class ClinicSettingsVersionView:
    """One saved version of the clinic's settings, decoded."""

    id: int
    schedule: ClinicSchedule
    changed_by: str
    changed_at: datetime
    note: str | None
    in_force: bool  # the newest version: the one the dialer uses


def list_clinic_settings_versions(session: Session) -> list[ClinicSettingsVersionView]:
    """Return every saved version, newest (in force) first, with its schedule decoded."""
    rows = clinic_settings_history(session)
    return [
        ClinicSettingsVersionView(
            id=row.id,
            schedule=schedule_from_json(row.schedule_json),
            changed_by=row.changed_by,
            changed_at=row.changed_at,
            note=row.note,
            in_force=n == 0,
        )
        for n, row in enumerate(rows)
    ]


def clinic_settings_history(session: Session) -> list[ClinicSettingsVersion]:
    """Return every saved version, newest first."""
    return list(
        session.scalars(
            select(ClinicSettingsVersion).order_by(
                ClinicSettingsVersion.changed_at.desc(), ClinicSettingsVersion.id.desc()
            )
        )
    )


# -- listing (``callcenter tasks``) ------------------------------------------------------------

#: What ``list_task_rows`` can show: open = due + scheduled; all = every task.
TASK_LIST_FILTERS = ("open", "due", "scheduled", "refused", "closed", "all")


def list_task_rows(
    session: Session, *, now: datetime, status: str = "open", limit: int | None = None
) -> list[dict[str, Any]]:
    """Return tasks as JSON-ready dicts with their ``state``: due, scheduled, refused, closed.

    Order: due tasks in callback order (dropped callers first, older first), then scheduled
    ones by due time, then refused and closed ones, the latest first. For refused and closed
    tasks ``close_reason`` says why (for refused: the consent's reason, e.g. ``do_not_call``).

    :raises ValueError: an unknown ``status`` filter or a limit below 1.
    """
    if status not in TASK_LIST_FILTERS:
        raise ValueError(f"unknown task status {status!r}; one of {', '.join(TASK_LIST_FILTERS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    wanted = {
        "open": ("due", "scheduled"),
        "all": ("due", "scheduled", TASK_REFUSED, queries.TASK_CLOSED),
    }.get(status, (status,))
    priority = task_priority()
    rows: list[dict[str, Any]] = []
    for state in wanted:
        room = None if limit is None else limit - len(rows)
        if room is not None and room <= 0:
            break
        query = select(Task)
        if state == "due":
            query = query.where(Task.status == queries.TASK_OPEN, Task.due_at <= now).order_by(
                priority, Task.opened_at, Task.id
            )
        elif state == "scheduled":
            query = query.where(Task.status == queries.TASK_OPEN, Task.due_at > now).order_by(
                Task.due_at, Task.id
            )
        else:
            query = query.where(Task.status == state).order_by(
                Task.closed_at.desc(), Task.id.desc()
            )
        if room is not None:
            query = query.limit(room)
        for task in session.scalars(query):
            row = queries.task_row(task)
            row["state"] = state
            row["assigned_extension"] = task.assigned_extension
            rows.append(row)
    return rows


# -- claims ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfinishedAttempt:
    """An attempt sent under an earlier lease whose outcome was never recorded."""

    action_id: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedTask:
    """A due task this dialer now holds until ``lease_until``."""

    task_id: int
    phone: str
    reason: str
    kind: str
    attempts: int
    opened_at: datetime
    due_at: datetime
    lease_until: datetime
    unfinished: tuple[UnfinishedAttempt, ...] = ()
    # Taken by an operator: ring only this extension, operator first.
    assigned_extension: str | None = None


def task_priority() -> Any:
    """The SQL form of ``schedule.priority_key``'s tier: dropped callers, then service
    follow-ups, then marketing calls (ordered by ``opened_at`` within each)."""
    return case(
        (Task.reason.in_(sorted(DROPPED_CALL_REASONS)), 0),
        (Task.kind == str(TaskKind.SERVICE), 1),
        else_=2,
    )


def claim_due_tasks(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
    limit: int,
    exclude_phones: Collection[str] = (),
) -> list[ClaimedTask]:
    """Claim up to ``limit`` due, open, unleased tasks, dropped callers first, oldest first.

    A task whose lease has expired is due again: its ``unfinished`` attempts say a call may
    already have been placed for it.
    """
    if limit <= 0:
        return []
    priority = task_priority()
    query = (
        select(
            Task.id,
            Task.phone,
            Task.reason,
            Task.kind,
            Task.attempts,
            Task.opened_at,
            Task.due_at,
            Task.assigned_extension,
        )
        .outerjoin(TaskLease, TaskLease.task_id == Task.id)
        .where(
            Task.status == queries.TASK_OPEN,
            Task.due_at <= now,
            or_(TaskLease.task_id.is_(None), TaskLease.lease_until <= now),
        )
        .order_by(priority, Task.opened_at, Task.id)
        # Over-fetch a little: some rows may turn out leased or excluded below.
        .limit(limit + len(exclude_phones))
        .with_for_update(skip_locked=True, of=Task)
    )
    # Plain rows, plain statements: this runs for every batch the dialer claims.
    connection = session.connection()
    for _ in range(_CLAIM_TRIES):
        tasks = [t for t in connection.execute(query) if t.phone not in exclude_phones]
        if not tasks:
            return []
        # Read the leases again: this statement sees leases committed after the one above
        # began.
        leases = dict(
            connection.execute(
                select(TaskLease.task_id, TaskLease.lease_until).where(
                    TaskLease.task_id.in_([t.id for t in tasks])
                )
            )
            .tuples()
            .all()
        )
        chosen = [t for t in tasks if t.id not in leases or leases[t.id] <= now][:limit]
        if chosen:
            break
        # Every row found was leased by dialers that committed meanwhile: look again (a new
        # statement sees their leases), rather than report "nothing due" while plenty is.
    else:
        return []
    unfinished = _unfinished_attempts_of(session, task_ids=[t.id for t in chosen])
    until = now + timedelta(seconds=lease_s)
    fresh = [t.id for t in chosen if t.id not in leases]
    expired = [t.id for t in chosen if t.id in leases]
    if fresh:
        connection.execute(
            insert(TaskLease),
            [
                {"task_id": i, "claimed_by": worker_id, "claimed_at": now, "lease_until": until}
                for i in fresh
            ],
        )
    if expired:
        connection.execute(
            update(TaskLease)
            .where(TaskLease.task_id.in_(expired))
            .values(claimed_by=worker_id, claimed_at=now, lease_until=until, action_id=None)
        )
    return [
        ClaimedTask(
            task_id=t.id,
            phone=t.phone,
            reason=t.reason,
            kind=t.kind,
            attempts=t.attempts,
            opened_at=t.opened_at,
            due_at=t.due_at,
            lease_until=until,
            unfinished=unfinished.get(t.id, ()),
            assigned_extension=t.assigned_extension,
        )
        for t in chosen
    ]


def claim_task(
    session: Session, *, task_id: int, worker_id: str, now: datetime, lease_s: float
) -> ClaimedTask | None:
    """Claim one task now, due or not (an operator asked for the call); None if it cannot be.

    None when the task does not exist, is not open, or another dialer holds a live lease (or
    is claiming it right now: the row lock is skipped, not waited for).
    """
    task = session.scalar(
        select(Task)
        .where(Task.id == task_id, Task.status == queries.TASK_OPEN)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if task is None:
        return None
    lease = session.get(TaskLease, task_id, populate_existing=True)
    if lease is not None and lease.lease_until > now:
        return None
    unfinished = _unfinished_attempts_of(session, task_ids=[task_id])
    claimed = _take_lease(
        session,
        task,
        worker_id=worker_id,
        now=now,
        lease_s=lease_s,
        lease=lease,
        unfinished=unfinished.get(task_id, ()),
    )
    session.flush()
    return claimed


def _take_lease(
    session: Session,
    task: Task,
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
    lease: TaskLease | None,
    unfinished: tuple[UnfinishedAttempt, ...],
) -> ClaimedTask:
    until = now + timedelta(seconds=lease_s)
    if lease is None:
        session.add(
            TaskLease(task_id=task.id, claimed_by=worker_id, claimed_at=now, lease_until=until)
        )
    else:
        lease.claimed_by, lease.claimed_at, lease.lease_until = worker_id, now, until
        lease.action_id = None
    return ClaimedTask(
        task_id=task.id,
        phone=task.phone,
        reason=task.reason,
        kind=task.kind,
        attempts=task.attempts,
        opened_at=task.opened_at,
        due_at=task.due_at,
        lease_until=until,
        unfinished=unfinished,
        assigned_extension=task.assigned_extension,
    )


def holds_lease(session: Session, *, task_id: int, worker_id: str, now: datetime) -> bool:
    """Return True while ``worker_id`` holds a live lease on the task."""
    lease = session.get(TaskLease, task_id, populate_existing=True)
    return lease is not None and lease.claimed_by == worker_id and lease.lease_until > now


def release_task(
    session: Session, *, task_id: int, worker_id: str, due_at: datetime | None = None
) -> None:
    """Give the task back (due again at ``due_at`` if given); only its holder may."""
    lease = session.get(TaskLease, task_id, populate_existing=True)
    if lease is None or lease.claimed_by != worker_id:
        return
    session.delete(lease)
    if due_at is not None:
        task = queries.get_task(session, task_id=task_id)
        if task is not None and task.status == queries.TASK_OPEN:
            task.due_at = due_at


def _unfinished_attempts_of(
    session: Session, *, task_ids: Sequence[int]
) -> dict[int, tuple[UnfinishedAttempt, ...]]:
    """Return the attempts without an outcome of these tasks, in one query."""
    if not task_ids:
        return {}
    found: dict[int, list[UnfinishedAttempt]] = {}
    rows = session.execute(
        select(TaskAttempt.task_id, TaskAttempt.action_id, TaskAttempt.started_at)
        .where(TaskAttempt.task_id.in_(task_ids), TaskAttempt.outcome.is_(None))
        .order_by(TaskAttempt.id)
    )
    for task_id, action_id, started_at in rows:
        found.setdefault(task_id, []).append(
            UnfinishedAttempt(action_id=action_id, started_at=started_at)
        )
    return {task_id: tuple(items) for task_id, items in found.items()}


# -- attempts -------------------------------------------------------------------------------


def start_attempt(session: Session, *, task_id: int, action_id: str, started_at: datetime) -> int:
    """Record that an Originate is about to be sent for the task (before it is sent)."""
    attempt = TaskAttempt(task_id=task_id, started_at=started_at, action_id=action_id)
    session.add(attempt)
    lease = session.get(TaskLease, task_id)
    if lease is not None:
        lease.action_id = action_id
    session.flush()
    return attempt.id


def find_callback_call(session: Session, *, task_id: int, since: datetime) -> Call | None:
    """Return the stored call placed for this task (``CALLBACK_TASK``) that started since then.

    An answered one wins over a failed one: it is what closes the task.
    """
    # A few seconds of slack: the call's start is Asterisk's clock, ``since`` is ours.
    calls = list(
        session.scalars(
            select(Call)
            .where(
                Call.callback_task == str(task_id),
                Call.started_at >= since - timedelta(seconds=5),
            )
            .order_by(Call.started_at)
        )
    )
    answered = [c for c in calls if c.disposition == "outbound_answered"]
    chosen = answered or calls
    return chosen[-1] if chosen else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptStart:
    """An Originate about to be sent for a task (``start_attempts``)."""

    task_id: int
    action_id: str


def start_attempts(
    session: Session, *, starts: Sequence[AttemptStart], worker_id: str, now: datetime
) -> set[int]:
    """Record the attempts of several tasks at once, before their Originates are sent.

    Only tasks on which ``worker_id`` still holds a live lease get one; returns their ids.
    Plain bulk statements (no ORM unit of work): this runs for every dial.
    """
    if not starts:
        return set()
    held = set(
        session.scalars(
            select(TaskLease.task_id).where(
                TaskLease.task_id.in_([s.task_id for s in starts]),
                TaskLease.claimed_by == worker_id,
                TaskLease.lease_until > now,
            )
        )
    )
    chosen: dict[int, AttemptStart] = {}
    for start in starts:
        if start.task_id in held and start.task_id not in chosen:
            chosen[start.task_id] = start
    if not chosen:
        return set()
    connection = session.connection()
    connection.execute(
        insert(TaskAttempt),
        [
            {"task_id": s.task_id, "started_at": now, "action_id": s.action_id}
            for s in chosen.values()
        ],
    )
    connection.execute(
        update(TaskLease)
        .where(TaskLease.task_id == bindparam("b_task_id"))
        .values(action_id=bindparam("b_action_id")),
        [{"b_task_id": s.task_id, "b_action_id": s.action_id} for s in chosen.values()],
    )
    return set(chosen)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFinish:
    """An attempt's outcome and what it does to its task (``finish_attempts``)."""

    task_id: int
    action_id: str | None
    outcome: AttemptOutcome
    linkedid: str | None
    ended_at: datetime
    decision: AttemptDecision


def finish_attempts(
    session: Session, *, finishes: Sequence[AttemptFinish], worker_id: str
) -> list[str]:
    """``finish_attempt`` for several tasks in one transaction; results in the same order.

    The numbers are locked in sorted order (as every locker of several numbers does), so two
    batches, or a batch and the listener, cannot deadlock. Plain bulk statements (no ORM unit
    of work): this runs for every dial.
    """
    if not finishes:
        return []
    ids = sorted({f.task_id for f in finishes})
    phones = dict(
        session.execute(select(Task.id, Task.phone).where(Task.id.in_(ids))).tuples().all()
    )
    missing = [i for i in ids if i not in phones]
    if missing:
        raise LookupError(f"tasks {missing} do not exist")
    lock_phones(session, phones=phones.values())
    connection = session.connection()
    # Read after the locks: a stored call may have closed a task meanwhile.
    state = {
        row.id: row
        for row in session.execute(
            select(
                Task.id,
                Task.status,
                Task.attempts,
                Task.due_at,
                Task.closed_at,
                Task.close_reason,
                Task.last_attempt_at,
            ).where(Task.id.in_(ids))
        )
    }
    action_ids = [f.action_id for f in finishes if f.action_id is not None]
    known = {
        row.action_id: row
        for row in (
            session.execute(
                select(TaskAttempt.id, TaskAttempt.action_id, TaskAttempt.started_at).where(
                    TaskAttempt.action_id.in_(action_ids)
                )
            )
            if action_ids
            else ()
        )
    }
    connection.execute(
        delete(TaskLease).where(TaskLease.task_id.in_(ids), TaskLease.claimed_by == worker_id)
    )
    attempt_updates: list[dict[str, Any]] = []
    attempt_inserts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    tasks: dict[int, dict[str, Any]] = {}
    answers: list[str] = []
    for f in finishes:
        done = {"outcome": str(f.outcome), "ended_at": f.ended_at, "call_linkedid": f.linkedid}
        attempt = known.get(f.action_id) if f.action_id is not None else None
        if attempt is not None:
            attempt_updates.append({"b_id": attempt.id, **{f"b_{k}": v for k, v in done.items()}})
            started = attempt.started_at
        else:
            attempt_inserts.append(
                {"task_id": f.task_id, "started_at": f.ended_at, "action_id": f.action_id, **done}
            )
            started = f.ended_at
        events.append(
            {
                "task_id": f.task_id,
                "at": f.ended_at,
                "kind": EVENT_ATTEMPT,
                "call_linkedid": None,
                "detail": f"{f.outcome} (action {f.action_id}, call {f.linkedid})",
            }
        )
        row = tasks.get(f.task_id)
        if row is None:
            current = state[f.task_id]
            row = tasks[f.task_id] = {
                "b_id": f.task_id,
                "status": current.status,
                "attempts": current.attempts,
                "due_at": current.due_at,
                "closed_at": current.closed_at,
                "close_reason": current.close_reason,
                "last_attempt_at": current.last_attempt_at,
            }
        row["last_attempt_at"] = started
        decision = f.decision
        if row["status"] != queries.TASK_OPEN:
            # The stored call closed it first (reached / got through): only the attempt is new.
            row["attempts"] = max(row["attempts"], decision.attempts)
            answers.append("already_closed")
            continue
        row["attempts"] = decision.attempts
        match decision:
            case Reschedule():
                row["due_at"] = decision.due_at
                answers.append("rescheduled")
            case CloseAfterAttempt():
                reason = str(decision.close_reason)
                row["status"], row["closed_at"], row["close_reason"] = (
                    queries.TASK_CLOSED,
                    f.ended_at,
                    reason,
                )
                events.append(
                    {
                        "task_id": f.task_id,
                        "at": f.ended_at,
                        "kind": queries.EVENT_CLOSED,
                        "call_linkedid": None,
                        "detail": reason,
                    }
                )
                answers.append("closed")
            case _:
                raise AssertionError(f"unknown decision {decision!r}")
    if attempt_updates:
        connection.execute(
            update(TaskAttempt)
            .where(TaskAttempt.id == bindparam("b_id"))
            .values(
                outcome=bindparam("b_outcome"),
                ended_at=bindparam("b_ended_at"),
                call_linkedid=bindparam("b_call_linkedid"),
            ),
            attempt_updates,
        )
    if attempt_inserts:
        connection.execute(insert(TaskAttempt), attempt_inserts)
    connection.execute(insert(TaskEvent), events)
    connection.execute(
        update(Task)
        .where(Task.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            due_at=bindparam("b_due_at"),
            closed_at=bindparam("b_closed_at"),
            close_reason=bindparam("b_close_reason"),
            last_attempt_at=bindparam("b_last_attempt_at"),
        ),
        [{f"b_{k}" if k != "b_id" else k: v for k, v in row.items()} for row in tasks.values()],
    )
    return answers


def lock_phones(session: Session, *, phones: Collection[str]) -> None:
    """``queries.lock_phone`` for many numbers in one round trip, in sorted order.

    PostgreSQL: the same advisory locks (namespace and ``task-phone:<number>`` key) as
    ``store.db.lock_key``, taken one after the other in the array's order. SQLite: nothing to
    do, a transaction is already the only writer.
    """
    ordered = sorted(set(phones))
    if not ordered or session.get_bind().dialect.name != "postgresql":
        for phone in ordered:
            queries.lock_phone(session, phone=phone)
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(:namespace, hashtext(k)))"
            " FROM unnest(CAST(:keys AS text[])) AS k"
        ),
        {"namespace": ADVISORY_LOCK_NAMESPACE, "keys": [f"task-phone:{p}" for p in ordered]},
    )


def finish_attempt(
    session: Session,
    *,
    task_id: int,
    action_id: str | None,
    outcome: AttemptOutcome,
    linkedid: str | None,
    ended_at: datetime,
    decision: AttemptDecision,
    worker_id: str,
) -> str:
    """Record the attempt's outcome and apply the decision to its task; release the lease.

    Runs under the number's lock (``queries.lock_phone``), like the listener's task changes, so
    an answered callback closed by the stored call and by the dialer is closed once. Returns
    what happened to the task: ``"rescheduled"``, ``"closed"`` or ``"already_closed"``.
    """
    return finish_attempts(
        session,
        finishes=[
            AttemptFinish(
                task_id=task_id,
                action_id=action_id,
                outcome=outcome,
                linkedid=linkedid,
                ended_at=ended_at,
                decision=decision,
            )
        ],
        worker_id=worker_id,
    )[0]


def close_task_for(
    session: Session,
    *,
    task_id: int,
    reason: CloseReasonDialer,
    detail: str,
    at: datetime,
    worker_id: str,
) -> bool:
    """Close an open task for a dialer reason (refused, undialable); return False if not open.

    ``undialable``: status ``closed``, the reason is ``close_reason`` and why in words the
    closing event's ``detail``. ``refused``: status ``refused``, ``close_reason`` is the
    consent's reason (``detail``, e.g. ``do_not_call``), recorded by a ``refused`` event.
    """
    task = queries.get_task(session, task_id=task_id)
    if task is None:
        return False
    queries.lock_phone(session, phone=task.phone)
    task = queries.get_task(session, task_id=task_id)
    release_task(session, task_id=task_id, worker_id=worker_id)
    if task is None or task.status != queries.TASK_OPEN:
        return False
    _close(session, task=task, reason=reason, at=at, detail=detail)
    return True


def _close(
    session: Session, *, task: Task, reason: CloseReasonDialer, at: datetime, detail: str | None
) -> None:
    if reason is CloseReasonDialer.REFUSED:
        # Consent does not allow the call: status ``refused``, the consent's reason recorded.
        why = detail or str(reason)
        task.status = TASK_REFUSED
        task.closed_at = at
        task.close_reason = why[:32]
        session.add(TaskEvent(task_id=task.id, at=at, kind=EVENT_REFUSED, detail=why))
        return
    task.status = queries.TASK_CLOSED
    task.closed_at = at
    task.close_reason = str(reason)
    session.add(
        TaskEvent(task_id=task.id, at=at, kind=queries.EVENT_CLOSED, detail=detail or str(reason))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentFacts:
    """What the consent rule needs to know about one number."""

    state: ConsentState | None  # None: no patient has it and it is not on the do-not-call list
    called_us: bool  # an inbound call from it started at or after ``since``


def consent_facts_for_phones(
    session: Session, *, phones: Collection[str], at: datetime, since: datetime
) -> dict[str, ConsentFacts]:
    """``patients.consent_state_for_phone`` and ``called_us_within`` for many numbers at once.

    The same answers as those two (a person's do-not-call request on any of their numbers
    counts for all), in five queries whatever the number of phones. Keys are the phones as
    given; a phone that is not a number gets ``ConsentFacts(state=None, called_us=False)``.
    """
    normalized = {phone: _normalized(phone) for phone in phones}
    numbers = sorted({n for n in normalized.values() if n is not None})
    if not numbers:
        return {phone: ConsentFacts(state=None, called_us=False) for phone in phones}
    owner = dict(
        session.execute(
            select(PatientPhone.phone, PatientPhone.patient_id).where(
                PatientPhone.phone.in_(numbers)
            )
        )
        .tuples()
        .all()
    )
    patient_ids = sorted(set(owner.values()))
    their_phones: dict[int, list[str]] = {}
    records: dict[int, list[ConsentRecordView]] = {}
    if patient_ids:
        for patient_id, phone in session.execute(
            select(PatientPhone.patient_id, PatientPhone.phone).where(
                PatientPhone.patient_id.in_(patient_ids)
            )
        ):
            their_phones.setdefault(patient_id, []).append(phone)
        for patient_id, kind, action, when in session.execute(
            select(
                ConsentRecord.patient_id, ConsentRecord.kind, ConsentRecord.action, ConsentRecord.at
            ).where(ConsentRecord.patient_id.in_(patient_ids))
        ):
            records.setdefault(patient_id, []).append(
                ConsentRecordView(kind=kind, action=action, at=when)
            )
    every_phone = set(numbers).union(*their_phones.values())
    hashes = {phone_hash(p): p for p in every_phone}
    barred = {
        hashes[h]
        for h in session.scalars(
            select(DoNotCall.phone_hash).where(DoNotCall.phone_hash.in_(sorted(hashes)))
        )
    }
    callers = set(
        session.scalars(
            select(Call.phone)
            .where(Call.phone.in_(numbers), Call.direction == "inbound", Call.started_at >= since)
            .distinct()
        )
    )
    facts: dict[str, ConsentFacts] = {}
    for phone, number in normalized.items():
        if number is None:
            facts[phone] = ConsentFacts(state=None, called_us=False)
            continue
        patient_id = owner.get(number)
        state: ConsentState | None
        if patient_id is None:
            state = (
                ConsentState(pd_consent=False, marketing_consent=False, do_not_call=True)
                if number in barred
                else None
            )
        else:
            state = consent_state_from_records(
                records.get(patient_id, []),
                do_not_call=any(p in barred for p in their_phones.get(patient_id, [])),
                at=at,
            )
        facts[phone] = ConsentFacts(state=state, called_us=number in callers)
    return facts


def called_us_since(session: Session, *, phone: str, since: datetime) -> bool:
    """Return True when this number called the clinic (any inbound call) since then."""
    return (
        session.scalar(
            select(Call.id)
            .where(Call.phone == phone, Call.direction == "inbound", Call.started_at >= since)
            .limit(1)
        )
        is not None
    )


def sqlite_database_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None (another back-end, or in memory).

    >>> sqlite_database_path("sqlite:////var/lib/cc/callcenter.db")
    PosixPath('/var/lib/cc/callcenter.db')
    >>> sqlite_database_path("postgresql+psycopg://db/cc") is None
    True
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)
