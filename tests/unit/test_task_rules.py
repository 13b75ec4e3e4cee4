"""Dropped-call task rules, tested without a database."""

from __future__ import annotations

import pytest

from callcenter.calls.model import DROPPED_DISPOSITIONS, Direction, Disposition
from callcenter.tasks.rules import (
    REASON_BY_DISPOSITION,
    CloseReason,
    CloseTask,
    NoChange,
    OpenTask,
    OpenTaskView,
    RecordRepeatDrop,
    TaskKind,
    TaskReason,
    compute_due_at,
    decide_task_change,
)

PHONE = "+79039556279"


def open_task_view(*, task_id: int = 7, last_drop_started_at: float = 1000.0) -> OpenTaskView:
    return OpenTaskView(task_id=task_id, phone=PHONE, last_drop_started_at=last_drop_started_at)


def test_every_dropped_disposition_has_a_reason() -> None:
    """Rule: every abandoned, ivr_abandoned, queue_timeout, no_answer or busy call opens a task."""
    assert set(REASON_BY_DISPOSITION) == set(DROPPED_DISPOSITIONS)


@pytest.mark.parametrize(
    ("disposition", "reason"),
    [
        (Disposition.QUEUE_TIMEOUT, TaskReason.MISSED_CALL),
        (Disposition.NO_ANSWER, TaskReason.MISSED_CALL),
        (Disposition.BUSY, TaskReason.MISSED_CALL),
        (Disposition.ABANDONED, TaskReason.ABANDONED_CALL),
        (Disposition.IVR_ABANDONED, TaskReason.ABANDONED_CALL),
    ],
)
def test_dropped_call_opens_task_with_reason(make_call, disposition, reason) -> None:
    """Rule: abandoned and ivr_abandoned → abandoned_call; queue_timeout/no_answer/busy →
    missed_call, for the caller's normalized number."""
    call = make_call(caller="89039556279", disposition=disposition)
    decision = decide_task_change(call=call, open_task=None)
    assert decision == OpenTask(
        phone=PHONE,
        reason=reason,
        opened_at=call.end_ts,
        due_at=call.end_ts,
        drop_started_at=call.start_ts,
    )


def test_queue_timeout_opens_missed_call_task(make_call) -> None:
    """Rule: a queue_timeout inbound call opens a missed_call callback task."""
    decision = decide_task_change(call=make_call(), open_task=None)
    assert isinstance(decision, OpenTask)
    assert decision.reason is TaskReason.MISSED_CALL


def test_new_task_is_a_service_task_due_at_the_drop(make_call) -> None:
    """Rule: a callback to a dropped caller is a service call, due as soon as possible."""
    call = make_call()
    decision = decide_task_change(call=call, open_task=None)
    assert isinstance(decision, OpenTask)
    assert decision.kind is TaskKind.SERVICE
    assert decision.due_at == compute_due_at(dropped_at=call.end_ts) == call.end_ts


def test_repeat_drop_is_recorded_on_the_open_task(make_call) -> None:
    """Rule: one open task per number; a repeat missed call is recorded on the same task as
    another missed call, not as a callback attempt."""
    call = make_call(disposition=Disposition.ABANDONED, start_ts=2000.0)
    decision = decide_task_change(call=call, open_task=open_task_view())
    assert decision == RecordRepeatDrop(
        task_id=7,
        reason=TaskReason.ABANDONED_CALL,
        dropped_at=call.end_ts,
        drop_started_at=2000.0,
    )


@pytest.mark.parametrize("reason", ["sleeping", "reminder", "objection_followup"])
def test_a_drop_on_one_of_our_follow_ups_turns_it_into_a_callback(make_call, reason) -> None:
    """Rule: one open task per number; when the number has one of our follow-ups open (a
    reminder, «Забота», an objection follow-up) and the patient's own call drops, the task
    becomes a callback to a dropped caller: this drop's reason, a service call (calling back
    answers the caller's own request), due as soon as possible."""
    call = make_call(disposition=Disposition.QUEUE_TIMEOUT, start_ts=2000.0)
    view = OpenTaskView(task_id=7, phone=PHONE, last_drop_started_at=1000.0, reason=reason)
    decision = decide_task_change(call=call, open_task=view)
    assert decision == RecordRepeatDrop(
        task_id=7,
        reason=TaskReason.MISSED_CALL,
        dropped_at=call.end_ts,
        drop_started_at=2000.0,
        takes_over=True,
        due_at=compute_due_at(dropped_at=call.end_ts),
    )


@pytest.mark.parametrize("caller", ["anonymous", "<unknown>", "", None])
def test_withheld_caller_opens_no_task(make_call, caller) -> None:
    """Rule: withheld (anonymous) callers are counted, never turned into tasks."""
    decision = decide_task_change(call=make_call(caller=caller), open_task=None)
    assert isinstance(decision, NoChange)
    assert "withheld" in decision.why


@pytest.mark.parametrize("caller", ["abc", "123"])
def test_caller_that_is_not_a_number_opens_no_task(make_call, caller) -> None:
    """Bad input: a caller that is not a phone number opens no task."""
    decision = decide_task_change(call=make_call(caller=caller), open_task=None)
    assert isinstance(decision, NoChange)
    assert "not a phone number" in decision.why


def test_answered_inbound_after_drop_closes_task_as_got_through(make_call) -> None:
    """Rule: the task closes by itself when that number later gets through (answered inbound)."""
    call = make_call(
        caller="+79039556279", disposition=Disposition.ANSWERED, start_ts=5000.0, talk_s=30.0
    )
    decision = decide_task_change(call=call, open_task=open_task_view())
    assert decision == CloseTask(
        task_id=7, close_reason=CloseReason.GOT_THROUGH, closed_at=call.end_ts
    )


def test_outbound_answered_closes_task_by_number_as_reached(make_call) -> None:
    """Rule: the task closes when the number is reached by an answered outbound call; an
    outbound call's caller field is the patient's number."""
    call = make_call(
        caller="79039556279",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        start_ts=5000.0,
    )
    decision = decide_task_change(call=call, open_task=open_task_view())
    assert decision == CloseTask(task_id=7, close_reason=CloseReason.REACHED, closed_at=call.end_ts)


def test_outbound_answered_closes_its_callback_task_by_id(make_call) -> None:
    """Rule: an outbound call's callback_task is the task id it was placed for; answered, it
    closes that task."""
    call = make_call(
        caller="89161234567",  # the task id decides, not the number
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        callback_task="7",
        start_ts=5000.0,
    )
    decision = decide_task_change(call=call, open_task=open_task_view(task_id=7))
    assert isinstance(decision, CloseTask)
    assert decision.close_reason is CloseReason.REACHED


@pytest.mark.parametrize(
    ("direction", "disposition", "callback_task"),
    [
        (Direction.OUTBOUND, Disposition.OUTBOUND_FAILED, "7"),
        (Direction.INBOUND, Disposition.FAILED, None),
    ],
)
def test_failed_calls_change_nothing(make_call, direction, disposition, callback_task) -> None:
    """Rule: only an answered call closes a task; the dialer's own failed callback (it carries
    CALLBACK_TASK) is counted by the dialer, not here; a failed inbound call is nobody's drop.
    (A number dialled by hand is an attempt: tests/store/test_manual_attempts.py.)"""
    call = make_call(
        direction=direction, disposition=disposition, start_ts=5000.0, callback_task=callback_task
    )
    assert isinstance(decide_task_change(call=call, open_task=open_task_view()), NoChange)


def test_answered_call_without_open_task_changes_nothing(make_call) -> None:
    """Rule: a call that gets through with no open task leaves tasks alone."""
    call = make_call(disposition=Disposition.ANSWERED)
    assert isinstance(decide_task_change(call=call, open_task=None), NoChange)


def test_contact_that_ended_before_the_latest_drop_started_keeps_task_open(make_call) -> None:
    """Rule: the task closes when the number *later* gets through. Persisted out of order, a
    conversation that ended before the task's latest drop started does not close it."""
    call = make_call(disposition=Disposition.ANSWERED, start_ts=900.0, end_ts=990.0)
    decision = decide_task_change(call=call, open_task=open_task_view(last_drop_started_at=1000.0))
    assert isinstance(decision, NoChange)


def test_overlapping_answered_call_resolves_drop_in_burst_trace(make_call) -> None:
    """Rule: a dropped call whose number had an answered call overlapping or after its start
    leaves no open task. burst: +79777228464 is answered (start 1795369641.618, end
    1795369669.291) while the same person's 89777228464 (start 1795369643.277) times out at
    1795369669.324; the administrator was talking to the patient, so no callback is needed."""
    answered = make_call(
        caller="+79777228464",
        disposition=Disposition.ANSWERED,
        start_ts=1795369641.618,
        end_ts=1795369669.291,
    )
    dropped = make_call(
        caller="89777228464",
        disposition=Disposition.QUEUE_TIMEOUT,
        start_ts=1795369643.277,
        end_ts=1795369669.324,
    )
    # Persisted in end-time order: the answered call first, with no task to close ...
    assert isinstance(decide_task_change(call=answered, open_task=None), NoChange)
    # ... then the drop, which sees that stored contact and opens nothing.
    decision = decide_task_change(
        call=dropped, open_task=None, last_contact_ended_at=answered.end_ts
    )
    assert isinstance(decision, NoChange)
    # In the other order the drop opens a task and the answered call closes it: same outcome.
    view = OpenTaskView(task_id=1, phone="+79777228464", last_drop_started_at=dropped.start_ts)
    assert decide_task_change(call=answered, open_task=view) == CloseTask(
        task_id=1, close_reason=CloseReason.GOT_THROUGH, closed_at=answered.end_ts
    )


def test_drop_after_an_earlier_conversation_opens_task(make_call) -> None:
    """Rule: a conversation that ended before the drop started does not resolve it; the patient
    called again and needs a callback."""
    dropped = make_call(start_ts=2000.0)
    decision = decide_task_change(call=dropped, open_task=None, last_contact_ended_at=1999.0)
    assert isinstance(decision, OpenTask)
