"""Apply the dropped-call rules to a stored call through the store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callcenter.calls.model import CallRecord
from callcenter.patients.phone import is_withheld, normalize_phone
from callcenter.store import queries
from callcenter.store.models import Task
from callcenter.tasks.rules import (
    CloseTask,
    NoChange,
    OpenTask,
    OpenTaskView,
    RecordManualAttempt,
    RecordRepeatDrop,
    TaskDecision,
    decide_task_change,
    parse_callback_task_id,
)

if TYPE_CHECKING:
    # Only the type: the queries this service runs live in callcenter.store.
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: Who "held" a hand-dialled attempt (no dialer lease is involved).
MANUAL_DIAL_WORKER = "desk-phone"

# Deciding twice is enough: the second time sees the task whose insert beat ours.
_MAX_DECISIONS = 2


def apply_call(session: Session, *, call: CallRecord) -> TaskDecision:
    """Decide what the call does to callback tasks and write it in the session's transaction.

    :raises RuntimeError: the open-task invariant kept failing (a bug, not bad input).
    """
    phone = normalize_phone(call.caller)
    if phone is None and not is_withheld(call.caller):
        log.warning("call %s: caller %r is not a phone number; no task", call.linkedid, call.caller)
    callback_id = parse_callback_task_id(call)
    _lock_numbers(session, phone=phone, callback_id=callback_id)
    for _ in range(_MAX_DECISIONS):
        open_task = _find_open_task(session, phone=phone, callback_id=callback_id)
        last_contact = (
            queries.last_contact_end_ts(session, phone=phone)
            if phone is not None and call.is_dropped
            else None
        )
        decision = decide_task_change(
            call=call, open_task=_view(open_task), last_contact_ended_at=last_contact
        )
        if _write(session, decision=decision, task=open_task, call=call):
            log.debug("call %s: %s", call.linkedid, decision)
            return decision
    raise RuntimeError(f"call {call.linkedid}: could not open or find the task for {phone}")


def _lock_numbers(session: Session, *, phone: str | None, callback_id: int | None) -> None:
    phones = {phone} if phone is not None else set()
    if callback_id is not None:
        task = queries.get_task(session, task_id=callback_id)
        if task is not None:
            phones.add(task.phone)
    # Always in the same order, so two sessions locking the same pair cannot deadlock.
    for each in sorted(phones):
        queries.lock_phone(session, phone=each)


def _find_open_task(session: Session, *, phone: str | None, callback_id: int | None) -> Task | None:
    if callback_id is not None:
        task = queries.get_task(session, task_id=callback_id)
        if task is not None and task.status == queries.TASK_OPEN:
            return task
    if phone is None:
        return None
    return queries.find_open_task(session, phone=phone)


def _view(task: Task | None) -> OpenTaskView | None:
    if task is None:
        return None
    last_drop = task.last_drop_started_ts
    return OpenTaskView(
        task_id=task.id,
        phone=task.phone,
        last_drop_started_at=task.opened_at.timestamp() if last_drop is None else last_drop,
        reason=task.reason,
    )


def _write(
    session: Session, *, decision: TaskDecision, task: Task | None, call: CallRecord
) -> bool:
    """Write the decision; return False when another session opened the task first."""
    match decision:
        case OpenTask():
            opened = queries.try_open_task(session, decision=decision, call_linkedid=call.linkedid)
            return opened is not None
        case RecordRepeatDrop() if task is not None:
            queries.record_repeat_drop(
                session, task=task, decision=decision, call_linkedid=call.linkedid
            )
            return True
        case CloseTask() if task is not None:
            queries.close_task(session, task=task, decision=decision, call_linkedid=call.linkedid)
            return True
        case RecordManualAttempt() if task is not None:
            _record_manual_attempt(session, task=task, decision=decision, call=call)
            return True
        case NoChange():
            return True
    raise AssertionError(f"decision {decision!r} names a task that was not loaded")


def _record_manual_attempt(
    session: Session, *, task: Task, decision: RecordManualAttempt, call: CallRecord
) -> None:
    """Record a hand-dialled unanswered call as an attempt, then reschedule or close the task
    by the clinic's rules (gaps, attempt limit), exactly as after the dialer's own attempt."""
    from callcenter.store import dialer as store_dialer
    from callcenter.tasks.schedule import AttemptOutcome, decide_after_attempt

    ended_at = queries.to_utc(decision.ended_at)
    outcome = AttemptOutcome(decision.outcome)
    schedule = store_dialer.load_clinic_schedule(session)
    store_dialer.finish_attempt(
        session,
        task_id=task.id,
        action_id=None,
        outcome=outcome,
        linkedid=call.linkedid,
        ended_at=ended_at,
        decision=decide_after_attempt(
            outcome=outcome,
            attempts_before=task.attempts,
            finished_at=ended_at,
            schedule=schedule,
        ),
        worker_id=MANUAL_DIAL_WORKER,
    )
    session.expire(task)
