"""The operators' callback list: list, take, snooze, close, click-to-call (the caller commits).

Every function takes a ``Session`` inside the caller's transaction (``session_factory.begin()``)
and aware UTC datetimes.

* A task *taken* by an operator is assigned to that operator's extension and due now: the dialer
  rings that extension first (operator first) and offers the task to nobody else, and it leaves
  every other operator's list.
* A task is *unavailable* (``TaskUnavailable``) when it is no longer open, is taken by another
  extension, or a dialer holds a live lease on it (a call is being placed).
* Bad requests (``BadTaskRequest``): snoozing into the past, an unknown close reason, a number
  that cannot be dialled, an extension that is not one.

Changes to one task are serialized like the listener's and the dialer's: the number's lock
(``queries.lock_phone``) and, on PostgreSQL, the task row's lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from callcenter.errors import CallcenterError
from callcenter.patients.phone import normalize_phone
from callcenter.store import dialer as store_dialer
from callcenter.store import queries
from callcenter.store.models import Task, TaskAttempt, TaskEvent
from callcenter.store.models_dialer import TaskLease
from callcenter.store.models_patients import Patient, PatientPhone
from callcenter.store.patients import find_patient_id
from callcenter.tasks.rules import TaskKind

#: A task whose call the patient's consent does not allow (``close_reason`` says why).
TASK_REFUSED = store_dialer.TASK_REFUSED

#: Why an operator may close a task by hand.
OPERATOR_CLOSE_REASONS: tuple[str, ...] = (
    "reached_elsewhere",  # the patient was reached another way (they called, we met them)
    "not_interested",
    "wrong_number",
    "duplicate",
    "other",
)

#: The reason of a task opened by click-to-call.
CLICK_TO_CALL_REASON = "click_to_call"

EVENT_TAKEN = "taken"
EVENT_SNOOZED = "snoozed"

#: ``CallbackItem.status`` of an open task: due now, due later, or a call being placed.
STATUS_DUE = "due"
STATUS_SCHEDULED = "scheduled"
STATUS_DIALLING = "dialling"

_EXTENSION = re.compile(r"[0-9]{2,10}")


class TaskUnavailable(CallcenterError):
    """The task is closed, taken by another operator, or being dialled."""


class BadTaskRequest(CallcenterError):
    """The request itself is wrong: snooze into the past, unknown close reason, bad number."""


@dataclass(frozen=True, slots=True)
class CallbackItem:
    """One task as an operator's list shows it.

    ``status``: ``due`` / ``scheduled`` / ``dialling`` for an open task (due now or before,
    due later, a dialer holds it); else the task's own status (``closed``, ``refused``).
    """

    task_id: int
    phone: str
    patient_id: int | None
    patient_name: str | None
    reason: str
    kind: str
    status: str
    due_at: datetime | None
    attempts: int
    last_outcome: str | None
    assigned_extension: str | None


# -- reading --------------------------------------------------------------------------------


def list_operator_callbacks(
    session: Session,
    *,
    extension: str,
    now: datetime,
    horizon: timedelta = timedelta(days=1),
    limit: int = 50,
) -> list[CallbackItem]:
    """Return the open tasks due by ``now + horizon`` that are not taken by another extension.

    Dropped callers first, then the oldest first (the dialer's order).

    :raises BadTaskRequest: a malformed extension, a negative horizon or a limit below 1.
    """
    _check_extension(extension)
    if horizon < timedelta(0):
        raise BadTaskRequest(f"horizon must not be negative, got {horizon}")
    if limit < 1:
        raise BadTaskRequest(f"limit must be at least 1, got {limit}")
    priority = store_dialer.task_priority()
    query = (
        select(Task)
        .where(
            Task.status == queries.TASK_OPEN,
            Task.due_at <= now + horizon,
            or_(Task.assigned_extension.is_(None), Task.assigned_extension == extension),
        )
        .order_by(priority, Task.opened_at, Task.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    tasks = list(session.scalars(query))
    return _items(session, tasks, now=now)


def get_callback(session: Session, task_id: int, *, now: datetime) -> CallbackItem:
    """Return one task as a list item.

    :raises TaskUnavailable: no such task.
    """
    task = queries.get_task(session, task_id=task_id)
    if task is None:
        raise TaskUnavailable(f"task {task_id} does not exist")
    return _items(session, [task], now=now)[0]


def _items(session: Session, tasks: Sequence[Task], *, now: datetime) -> list[CallbackItem]:
    if not tasks:
        return []
    ids = [t.id for t in tasks]
    names = _patient_names(session, tasks)
    dialling = set(
        session.scalars(
            select(TaskLease.task_id).where(TaskLease.task_id.in_(ids), TaskLease.lease_until > now)
        )
    )
    latest = (
        select(TaskAttempt.task_id, func.max(TaskAttempt.id).label("last_id"))
        .where(TaskAttempt.task_id.in_(ids), TaskAttempt.outcome.is_not(None))
        .group_by(TaskAttempt.task_id)
        .subquery()
    )
    outcomes = dict(
        session.execute(
            select(TaskAttempt.task_id, TaskAttempt.outcome).join(
                latest, TaskAttempt.id == latest.c.last_id
            )
        )
        .tuples()
        .all()
    )
    items = []
    for task in tasks:
        patient_id, name = names.get(task.id, (task.patient_id, None))
        items.append(
            CallbackItem(
                task_id=task.id,
                phone=task.phone,
                patient_id=patient_id,
                patient_name=name,
                reason=task.reason,
                kind=task.kind,
                status=_status(task, now=now, dialling=task.id in dialling),
                due_at=task.due_at,
                attempts=task.attempts,
                last_outcome=outcomes.get(task.id),
                assigned_extension=task.assigned_extension,
            )
        )
    return items


def _status(task: Task, *, now: datetime, dialling: bool) -> str:
    if task.status != queries.TASK_OPEN:
        return task.status
    if dialling:
        return STATUS_DIALLING
    return STATUS_DUE if task.due_at <= now else STATUS_SCHEDULED


def _patient_names(
    session: Session, tasks: Sequence[Task]
) -> dict[int, tuple[int | None, str | None]]:
    """Return task id → (patient id, full name): the task's patient, else the number's owner."""
    by_id = {t.patient_id for t in tasks if t.patient_id is not None}
    by_phone = {t.phone for t in tasks}
    owners = dict(
        session.execute(
            select(PatientPhone.phone, PatientPhone.patient_id).where(
                PatientPhone.phone.in_(sorted(by_phone))
            )
        )
        .tuples()
        .all()
    )
    wanted = by_id | set(owners.values())
    names = (
        dict(
            session.execute(
                select(Patient.id, Patient.full_name).where(Patient.id.in_(sorted(wanted)))
            )
            .tuples()
            .all()
        )
        if wanted
        else {}
    )
    found: dict[int, tuple[int | None, str | None]] = {}
    for task in tasks:
        patient_id = task.patient_id if task.patient_id is not None else owners.get(task.phone)
        found[task.id] = (patient_id, names.get(patient_id) if patient_id is not None else None)
    return found


# -- changing -------------------------------------------------------------------------------


def take_task(
    session: Session, task_id: int, *, extension: str, by: str, now: datetime
) -> CallbackItem:
    """Assign the task to ``extension`` and make it due now; the dialer rings that operator first.

    Taking a task one already holds again is allowed (it becomes due now again).

    :raises TaskUnavailable: closed or refused, taken by another extension, or being dialled.
    :raises BadTaskRequest: a malformed extension.
    """
    _check_extension(extension)
    task = _lock_available(session, task_id, now=now, extension=extension)
    task.assigned_extension = extension
    task.due_at = now
    session.add(TaskEvent(task_id=task.id, at=now, kind=EVENT_TAKEN, detail=f"{extension} ({by})"))
    session.flush()
    return get_callback(session, task.id, now=now)


def snooze_task(
    session: Session, task_id: int, *, until: datetime, by: str, now: datetime
) -> CallbackItem:
    """Make the task due at ``until`` (later than now).

    :raises BadTaskRequest: ``until`` is not after ``now``.
    :raises TaskUnavailable: closed or refused, or being dialled.
    """
    if until.tzinfo is None:
        raise BadTaskRequest(f"naive datetime {until!r}: pass a timezone-aware datetime")
    if until <= now:
        raise BadTaskRequest(f"cannot snooze into the past: {until.isoformat()}")
    task = _lock_available(session, task_id, now=now, extension=None)
    task.due_at = until
    session.add(
        TaskEvent(task_id=task.id, at=now, kind=EVENT_SNOOZED, detail=f"{until.isoformat()} ({by})")
    )
    session.flush()
    return get_callback(session, task.id, now=now)


def close_task_by_operator(
    session: Session, task_id: int, *, reason: str, by: str, now: datetime
) -> None:
    """Close the task by hand for one of ``OPERATOR_CLOSE_REASONS``.

    :raises BadTaskRequest: an unknown reason.
    :raises TaskUnavailable: closed or refused already, or being dialled.
    """
    if reason not in OPERATOR_CLOSE_REASONS:
        raise BadTaskRequest(
            f"unknown close reason {reason!r}; one of {', '.join(OPERATOR_CLOSE_REASONS)}"
        )
    task = _lock_available(session, task_id, now=now, extension=None)
    task.status = queries.TASK_CLOSED
    task.closed_at = now
    task.close_reason = reason
    session.add(
        TaskEvent(task_id=task.id, at=now, kind=queries.EVENT_CLOSED, detail=f"{reason} ({by})")
    )
    session.flush()


def request_call(
    session: Session, *, phone: str, extension: str, by: str, now: datetime
) -> CallbackItem:
    """Click-to-call: take the number's open task, or open one (``click_to_call``, service).

    :raises BadTaskRequest: the number cannot be dialled, or a malformed extension.
    :raises TaskUnavailable: the number's open task is taken by another extension or dialled.
    """
    _check_extension(extension)
    normalized = normalize_phone(phone)
    if normalized is None or not 5 <= len(normalized.lstrip("+")) <= 15:
        raise BadTaskRequest(f"{phone!r} is not a number that can be dialled")
    queries.lock_phone(session, phone=normalized)
    task = queries.find_open_task(session, phone=normalized)
    if task is None:
        task = Task(
            phone=normalized,
            reason=CLICK_TO_CALL_REASON,
            kind=str(TaskKind.SERVICE),
            status=queries.TASK_OPEN,
            opened_at=now,
            due_at=now,
            attempts=0,
            dropped_calls=0,
            patient_id=find_patient_id(session, phone=normalized),
        )
        task.events.append(
            TaskEvent(at=now, kind=queries.EVENT_OPENED, detail=f"{CLICK_TO_CALL_REASON} ({by})")
        )
        session.add(task)
        session.flush()
    return take_task(session, task.id, extension=extension, by=by, now=now)


def _lock_available(
    session: Session, task_id: int, *, now: datetime, extension: str | None
) -> Task:
    """Lock and return the open task; raise ``TaskUnavailable`` when it cannot be changed."""
    task = queries.get_task(session, task_id=task_id)
    if task is None:
        raise TaskUnavailable(f"task {task_id} does not exist")
    queries.lock_phone(session, phone=task.phone)
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        raise TaskUnavailable(f"task {task_id} does not exist")
    if task.status != queries.TASK_OPEN:
        raise TaskUnavailable(f"task {task_id} is {task.status}")
    if (
        extension is not None
        and task.assigned_extension is not None
        and task.assigned_extension != extension
    ):
        raise TaskUnavailable(f"task {task_id} is taken by {task.assigned_extension}")
    lease = session.get(TaskLease, task_id, populate_existing=True)
    if lease is not None and lease.lease_until > now:
        raise TaskUnavailable(f"task {task_id} is being dialled")
    return task


def _check_extension(extension: str) -> None:
    if not _EXTENSION.fullmatch(extension):
        raise BadTaskRequest(f"{extension!r} is not an extension (2–10 digits)")
