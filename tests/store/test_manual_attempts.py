"""An attempt is any of our outbound calls to the patient: a number an administrator dials by
hand from a desk phone counts like the dialer's own attempt (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callcenter.calls.model import Direction, Disposition
from callcenter.store import queries
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.rules import RecordManualAttempt

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 12:00 in Moscow: working hours
PHONE = "+79039556279"


def _open_task(session_factory, *, attempts: int = 0) -> int:
    with session_factory.begin() as session:
        task = Task(
            phone=PHONE,
            reason="missed_call",
            kind="service",
            status="open",
            opened_at=NOW - timedelta(hours=1),
            due_at=NOW - timedelta(hours=1),
            attempts=attempts,
        )
        session.add(task)
        session.flush()
        return task.id


def _dial_by_hand(session_factory, make_call, *, cause: int, callback_task: str | None = None):
    call = make_call(
        caller="89039556279",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_FAILED,
        queue=None,
        agent="102",
        hangup_cause=cause,
        start_ts=NOW.timestamp(),
        end_ts=NOW.timestamp() + 30,
        callback_task=callback_task,
    )
    with session_factory.begin() as session:
        queries.persist_call(session, call=call)
    return call


def test_an_unanswered_hand_dialled_call_is_an_attempt_and_reschedules(session_factory, make_call):
    """Rule: retry after the first gap (15 min) inside working hours; the attempt is recorded
    with its outcome and the call's linkedid."""
    task_id = _open_task(session_factory)
    call = _dial_by_hand(session_factory, make_call, cause=19)  # no answer
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.attempts) == ("open", 1)
        assert task.due_at == NOW + timedelta(seconds=30) + timedelta(minutes=15)
        (attempt,) = session.scalars(select(TaskAttempt))
        assert (attempt.outcome, attempt.call_linkedid) == ("no_answer", call.linkedid)


def test_the_last_allowed_attempt_by_hand_closes_the_task_as_unreachable(
    session_factory, make_call
):
    """Rule: stop after the attempt limit (default 3) and close the task as unreachable."""
    task_id = _open_task(session_factory, attempts=2)
    _dial_by_hand(session_factory, make_call, cause=17)  # busy
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason, task.attempts) == ("closed", "unreachable", 3)
        (attempt,) = session.scalars(select(TaskAttempt))
        assert attempt.outcome == "busy"


def test_the_dialers_own_callback_is_not_counted_twice(session_factory, make_call):
    """The dialer records its callbacks' attempts itself (they carry CALLBACK_TASK)."""
    task_id = _open_task(session_factory)
    _dial_by_hand(session_factory, make_call, cause=19, callback_task=str(task_id))
    with session_factory() as session:
        assert session.get(Task, task_id).attempts == 0
        assert list(session.scalars(select(TaskAttempt))) == []


def test_without_an_open_task_a_hand_dialled_call_changes_nothing(session_factory, make_call):
    _dial_by_hand(session_factory, make_call, cause=19)
    with session_factory() as session:
        assert list(session.scalars(select(Task))) == []


def test_the_rule_names_the_outcome_from_the_hangup_cause(make_call):
    from callcenter.tasks.rules import OpenTaskView, decide_task_change

    view = OpenTaskView(task_id=5, phone=PHONE, last_drop_started_at=0.0)
    for cause, outcome in ((17, "busy"), (19, "no_answer"), (34, "failed"), (None, "no_answer")):
        call = make_call(
            direction=Direction.OUTBOUND,
            disposition=Disposition.OUTBOUND_FAILED,
            hangup_cause=cause,
        )
        assert decide_task_change(call=call, open_task=view) == RecordManualAttempt(
            task_id=5, outcome=outcome, ended_at=call.end_ts
        )
