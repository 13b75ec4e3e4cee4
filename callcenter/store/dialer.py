"""The dialer's reads and writes: clinic settings with history, claims with leases, attempts.

The caller owns the transaction. Claiming is the one place where back-ends differ:

* PostgreSQL: ``SELECT … FOR UPDATE OF tasks SKIP LOCKED`` — concurrent dialers skip the rows
  another one is claiming, and the lease written before commit keeps them off afterwards.
  Because a statement's snapshot may predate another dialer's committed lease, the leases of
  the rows we locked are read again (a new statement sees every commit) before they are taken.
* SQLite: every transaction begins IMMEDIATE (``store.db``), so one dialer claims at a time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from callcenter.store import queries
from callcenter.store.models import Call, Task, TaskAttempt, TaskEvent
from callcenter.store.models_dialer import ClinicSettingsVersion, TaskLease
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
    *,
    schedule: ClinicSchedule,
    changed_by: str,
    at: datetime,
    note: str | None = None,
) -> int:
    """Save a new version of the clinic's schedule; earlier versions stay as history."""
    row = ClinicSettingsVersion(
        schedule_json=schedule_to_json(schedule), changed_by=changed_by, changed_at=at, note=note
    )
    session.add(row)
    session.flush()
    return row.id


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
    priority = case((Task.reason.in_(sorted(DROPPED_CALL_REASONS)), 0), else_=1)
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
    priority = case((Task.reason.in_(sorted(DROPPED_CALL_REASONS)), 0), else_=1)
    query = (
        select(Task)
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
        .execution_options(populate_existing=True)
    )
    tasks = [t for t in session.scalars(query) if t.phone not in exclude_phones]
    if not tasks:
        return []
    # Read the leases again: this statement sees leases committed after the one above began.
    live = set(
        session.scalars(
            select(TaskLease.task_id).where(
                TaskLease.task_id.in_([t.id for t in tasks]), TaskLease.lease_until > now
            )
        )
    )
    claimed: list[ClaimedTask] = []
    for task in tasks:
        if task.id in live:
            continue
        if len(claimed) >= limit:
            break
        claimed.append(_take_lease(session, task, worker_id=worker_id, now=now, lease_s=lease_s))
    session.flush()
    return claimed


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
    claimed = _take_lease(session, task, worker_id=worker_id, now=now, lease_s=lease_s)
    session.flush()
    return claimed


def _take_lease(
    session: Session, task: Task, *, worker_id: str, now: datetime, lease_s: float
) -> ClaimedTask:
    until = now + timedelta(seconds=lease_s)
    lease = session.get(TaskLease, task.id, populate_existing=True)
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
        unfinished=_unfinished_attempts(session, task_id=task.id),
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


def _unfinished_attempts(session: Session, *, task_id: int) -> tuple[UnfinishedAttempt, ...]:
    rows = session.scalars(
        select(TaskAttempt)
        .where(TaskAttempt.task_id == task_id, TaskAttempt.outcome.is_(None))
        .order_by(TaskAttempt.id)
    )
    return tuple(UnfinishedAttempt(action_id=r.action_id, started_at=r.started_at) for r in rows)


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
    task = queries.get_task(session, task_id=task_id)
    if task is None:
        raise LookupError(f"task {task_id} does not exist")
    queries.lock_phone(session, phone=task.phone)
    task = queries.get_task(session, task_id=task_id)
    assert task is not None
    attempt = None
    if action_id is not None:
        attempt = session.scalar(select(TaskAttempt).where(TaskAttempt.action_id == action_id))
    if attempt is None:
        attempt = TaskAttempt(task_id=task_id, started_at=ended_at, action_id=action_id)
        session.add(attempt)
    attempt.outcome = str(outcome)
    attempt.ended_at = ended_at
    attempt.call_linkedid = linkedid
    release_task(session, task_id=task_id, worker_id=worker_id)
    session.add(
        TaskEvent(
            task_id=task_id,
            at=ended_at,
            kind=EVENT_ATTEMPT,
            detail=f"{outcome} (action {action_id}, call {linkedid})",
        )
    )
    task.last_attempt_at = attempt.started_at
    if task.status != queries.TASK_OPEN:
        # The stored call closed it first (reached / got through): only the attempt is new.
        task.attempts = max(task.attempts, decision.attempts)
        return "already_closed"
    task.attempts = decision.attempts
    match decision:
        case Reschedule():
            task.due_at = decision.due_at
            return "rescheduled"
        case CloseAfterAttempt():
            _close(session, task=task, reason=decision.close_reason, at=ended_at, detail=None)
            return "closed"
    raise AssertionError(f"unknown decision {decision!r}")


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
