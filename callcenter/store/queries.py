"""Reads and writes: calls, callback tasks, AMI gaps. The caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.calls.model import AgentLeg, CallRecord
from callcenter.patients.phone import normalize_phone
from callcenter.store.db import lock_key
from callcenter.store.models import AmiGap, Call, CallLeg, Task, TaskEvent
from callcenter.tasks.rules import (
    CONTACT_DISPOSITIONS,
    REASON_BY_DISPOSITION,
    CloseTask,
    NoChange,
    OpenTask,
    RecordManualAttempt,
    RecordRepeatDrop,
    TaskDecision,
    TaskKind,
)

TASK_OPEN = "open"
TASK_CLOSED = "closed"
EVENT_OPENED = "opened"
EVENT_REPEAT_DROP = "repeat_drop"
EVENT_CLOSED = "closed"
EVENT_ATTEMPT = "attempt"  # an outbound call to the number (the dialer's, or dialled by hand)
EVENT_TAKEN_OVER = "taken_over"  # a dropped call turned one of our follow-ups into a callback

# Tasks opened for a dropped caller come first in the callback queue: the patient asked for us.
_DROPPED_CALL_REASONS = frozenset(str(reason) for reason in REASON_BY_DISPOSITION.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskChange:
    """One change a stored call made to a task, for screens and logs."""

    task_id: int
    phone: str
    reason: str
    status: str  # what happened, as the task event kind: "opened" | "repeat_drop" | "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistResult:
    """What persisting one finished call did."""

    stored: bool  # False: this linkedid was already stored, nothing was written
    call_id: int | None
    decision: TaskDecision | None  # None when nothing was stored
    task_changes: tuple[TaskChange, ...] = ()


def to_utc(ts: float) -> datetime:
    """Return the AMI epoch timestamp as an aware UTC datetime.

    >>> to_utc(1795369641.395).isoformat()
    '2026-11-22T17:47:21.395000+00:00'
    """
    return datetime.fromtimestamp(ts, tz=UTC)


def persist_call(session: Session, *, call: CallRecord) -> PersistResult:
    """Store a finished call with its legs and apply the task rules, once per linkedid."""
    # NOTE: imported here because tasks.service is built on the task queries of this module;
    # a module-level import would be circular.
    from callcenter.tasks import service as task_service

    if get_call(session, linkedid=call.linkedid) is not None:
        return PersistResult(stored=False, call_id=None, decision=None)
    row = _build_call(call)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another session stored the same linkedid between our check and our insert.
        if get_call(session, linkedid=call.linkedid) is None:
            raise
        return PersistResult(stored=False, call_id=None, decision=None)
    decision = task_service.apply_call(session, call=call)
    return PersistResult(
        stored=True,
        call_id=row.id,
        decision=decision,
        task_changes=_task_changes(session, decision=decision),
    )


def get_call(session: Session, *, linkedid: str) -> Call | None:
    """Return the stored call with this linkedid, if any."""
    return session.scalar(select(Call).where(Call.linkedid == linkedid))


def count_calls_by_disposition(session: Session) -> dict[str, int]:
    """Return how many stored calls ended with each disposition."""
    rows = session.execute(select(Call.disposition, func.count()).group_by(Call.disposition))
    return {disposition: count for disposition, count in rows.tuples()}


def lock_phone(session: Session, *, phone: str) -> None:
    """Serialize task decisions for one number until the transaction ends."""
    lock_key(session, key=f"task-phone:{phone}")


def find_open_task(session: Session, *, phone: str) -> Task | None:
    """Return the number's open task, if any."""
    query = select(Task).where(Task.phone == phone, Task.status == TASK_OPEN)
    # populate_existing: another session may have changed a task this session loaded earlier.
    return session.scalar(query.execution_options(populate_existing=True))


def get_task(session: Session, *, task_id: int) -> Task | None:
    """Return the task with this id, if any."""
    return session.get(Task, task_id, populate_existing=True)


def last_contact_end_ts(session: Session, *, phone: str) -> float | None:
    """Return when the latest stored call in which the clinic talked to this number ended."""
    return session.scalar(
        select(func.max(Call.end_ts)).where(
            Call.phone == phone,
            Call.disposition.in_([str(d) for d in CONTACT_DISPOSITIONS]),
        )
    )


def try_open_task(session: Session, *, decision: OpenTask, call_linkedid: str) -> Task | None:
    """Open a task; return None when the number already has an open one."""
    task = Task(
        phone=decision.phone,
        reason=str(decision.reason),
        kind=str(decision.kind),
        status=TASK_OPEN,
        opened_at=to_utc(decision.opened_at),
        due_at=to_utc(decision.due_at),
        attempts=0,
        first_call_linkedid=call_linkedid,
        dropped_calls=1,
        last_drop_started_ts=decision.drop_started_at,
    )
    task.events.append(
        TaskEvent(
            at=to_utc(decision.opened_at),
            kind=EVENT_OPENED,
            call_linkedid=call_linkedid,
            detail=str(decision.reason),
        )
    )
    try:
        with session.begin_nested():
            session.add(task)
    except IntegrityError:
        # The partial unique index uq_tasks_open_phone: someone opened one first.
        if find_open_task(session, phone=decision.phone) is None:
            raise
        return None
    return task


def record_repeat_drop(
    session: Session, *, task: Task, decision: RecordRepeatDrop, call_linkedid: str
) -> None:
    """Record another dropped call on an open task (taking over one of our follow-ups)."""
    if decision.takes_over:
        task.events.append(
            TaskEvent(
                at=to_utc(decision.dropped_at),
                kind=EVENT_TAKEN_OVER,
                call_linkedid=call_linkedid,
                detail=f"{task.reason} → {decision.reason}",
            )
        )
        task.reason = str(decision.reason)
        task.kind = str(TaskKind.SERVICE)
        if decision.due_at is not None and to_utc(decision.due_at) < task.due_at:
            task.due_at = to_utc(decision.due_at)
    task.dropped_calls += 1
    # Calls arrive in end-time order, so a repeat drop may have started before the latest one.
    if task.last_drop_started_ts is None or decision.drop_started_at > task.last_drop_started_ts:
        task.last_drop_started_ts = decision.drop_started_at
    task.events.append(
        TaskEvent(
            at=to_utc(decision.dropped_at),
            kind=EVENT_REPEAT_DROP,
            call_linkedid=call_linkedid,
            detail=str(decision.reason),
        )
    )
    session.flush()


def close_task(session: Session, *, task: Task, decision: CloseTask, call_linkedid: str) -> None:
    """Close an open task."""
    task.status = TASK_CLOSED
    task.closed_at = to_utc(decision.closed_at)
    task.close_reason = str(decision.close_reason)
    task.events.append(
        TaskEvent(
            at=to_utc(decision.closed_at),
            kind=EVENT_CLOSED,
            call_linkedid=call_linkedid,
            detail=str(decision.close_reason),
        )
    )
    session.flush()


def list_open_tasks(session: Session) -> list[Task]:
    """Return open tasks in callback order: dropped callers first, older first."""
    from_dropped_call = case((Task.reason.in_(sorted(_DROPPED_CALL_REASONS)), 0), else_=1)
    query = (
        select(Task)
        .where(Task.status == TASK_OPEN)
        .order_by(from_dropped_call, Task.opened_at, Task.id)
    )
    return list(session.scalars(query))


def task_row(task: Task) -> dict[str, Any]:
    """Return the task as a JSON-ready dict (times as ISO 8601 UTC)."""
    return {
        "id": task.id,
        "phone": task.phone,
        "reason": task.reason,
        "kind": task.kind,
        "status": task.status,
        "opened_at": task.opened_at.isoformat(),
        "due_at": task.due_at.isoformat(),
        "closed_at": _maybe_iso(task.closed_at),
        "close_reason": task.close_reason,
        "dropped_calls": task.dropped_calls,
        "attempts": task.attempts,
        "last_attempt_at": _maybe_iso(task.last_attempt_at),
        "first_call_linkedid": task.first_call_linkedid,
        "patient_id": task.patient_id,
    }


def open_gap(session: Session, *, started_at: datetime, reason: str) -> int:
    """Record that the AMI link went down; return the gap's id."""
    gap = AmiGap(started_at=started_at, reason=reason, recovered_calls=0)
    session.add(gap)
    session.flush()
    return gap.id


def close_gap(
    session: Session, *, gap_id: int, ended_at: datetime, recovered_calls: int = 0
) -> None:
    """Record that the AMI link is back.

    :raises LookupError: no such gap.
    :raises ValueError: the gap is already closed, or would end before it started.
    """
    gap = session.get(AmiGap, gap_id)
    if gap is None:
        raise LookupError(f"no AMI gap with id {gap_id}")
    if gap.ended_at is not None:
        raise ValueError(f"AMI gap {gap_id} already closed at {gap.ended_at.isoformat()}")
    if ended_at < gap.started_at:
        raise ValueError(f"AMI gap {gap_id} cannot end before it started")
    gap.ended_at = ended_at
    gap.recovered_calls = recovered_calls
    session.flush()


def list_gaps(session: Session) -> list[AmiGap]:
    """Return all AMI gaps, oldest first."""
    return list(session.scalars(select(AmiGap).order_by(AmiGap.started_at, AmiGap.id)))


def _task_changes(session: Session, *, decision: TaskDecision) -> tuple[TaskChange, ...]:
    match decision:
        case OpenTask():
            task = find_open_task(session, phone=decision.phone)
            status = EVENT_OPENED
        case RecordRepeatDrop() | CloseTask():
            task = get_task(session, task_id=decision.task_id)
            status = EVENT_REPEAT_DROP if isinstance(decision, RecordRepeatDrop) else EVENT_CLOSED
        case RecordManualAttempt():
            task = get_task(session, task_id=decision.task_id)
            closed = task is not None and task.status != TASK_OPEN
            status = EVENT_CLOSED if closed else EVENT_ATTEMPT
        case NoChange():
            return ()
    if task is None:
        raise AssertionError(f"{decision!r} was written but its task is gone")
    return (TaskChange(task_id=task.id, phone=task.phone, reason=task.reason, status=status),)


def _build_call(call: CallRecord) -> Call:
    return Call(
        linkedid=call.linkedid,
        direction=str(call.direction),
        disposition=str(call.disposition),
        caller=call.caller,
        phone=normalize_phone(call.caller),
        caller_name=call.caller_name,
        did=call.did,
        queue=call.queue,
        agent=call.agent,
        agent_name=call.agent_name,
        last_agent=call.last_agent,
        wait_s=call.wait_s,
        talk_s=call.talk_s,
        queue_wait_s=call.queue_wait_s,
        started_at=to_utc(call.start_ts),
        ended_at=to_utc(call.end_ts),
        start_ts=call.start_ts,
        end_ts=call.end_ts,
        recording=call.recording,
        callback_task=call.callback_task,
        style=call.style,
        hangup_cause=call.hangup_cause,
        transfers=list(call.transfers),
        legs=[_build_leg(leg) for leg in call.legs],
    )


def _build_leg(leg: AgentLeg) -> CallLeg:
    return CallLeg(
        agent=leg.agent,
        agent_name=leg.agent_name,
        rang_at=_maybe_utc(leg.rang_at),
        answered_at=_maybe_utc(leg.answered_at),
        ended_at=_maybe_utc(leg.ended_at),
        outcome=leg.outcome,
    )


def _maybe_utc(ts: float | None) -> datetime | None:
    return None if ts is None else to_utc(ts)


def _maybe_iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def ping(session: Session) -> None:
    """Run the cheapest query there is; raise when the database cannot answer."""
    session.execute(select(1))


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What ``/metrics`` reads from the store on each scrape (shared by every process)."""

    open_tasks: int
    originates_by_outcome: dict[str, int]  # task attempts; "pending" while unresolved
    transcripts_by_status: dict[str, int]
    transcribed_audio_s: float


def store_figures(session: Session) -> StoreFigures:
    """Count open tasks, callback attempts by outcome and transcripts by status (one query
    each, on indexed or small columns)."""
    from callcenter.store.models import TaskAttempt
    from callcenter.store.models_speech import Transcript

    open_tasks = session.scalar(select(func.count()).select_from(Task).where(Task.status == "open"))
    attempts = session.execute(
        select(TaskAttempt.outcome, func.count()).group_by(TaskAttempt.outcome)
    ).all()
    transcripts = session.execute(
        select(
            Transcript.status, func.count(), func.coalesce(func.sum(Transcript.duration_s), 0)
        ).group_by(Transcript.status)
    ).all()
    return StoreFigures(
        open_tasks=int(open_tasks or 0),
        originates_by_outcome={(o or "pending"): int(n) for o, n in attempts},
        transcripts_by_status={s: int(n) for s, n, _ in transcripts},
        transcribed_audio_s=float(sum(float(d) for _, _, d in transcripts)),
    )
