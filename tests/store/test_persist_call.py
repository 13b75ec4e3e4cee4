"""Persisting finished calls: rows, idempotency, task rules applied in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.calls.model import AgentLeg, Direction, Disposition
from callcenter.store import queries
from callcenter.store.models import Call, CallLeg, Task, TaskEvent
from callcenter.tasks.rules import CloseTask, NoChange, OpenTask, RecordRepeatDrop

PHONE = "+79039556279"


def persist_all(session: Session, *calls) -> list[queries.PersistResult]:
    results = [queries.persist_call(session, call=call) for call in calls]
    session.commit()
    return results


def all_tasks(session: Session) -> list[Task]:
    return list(session.scalars(select(Task).order_by(Task.id)))


def event_kinds(task: Task) -> list[str]:
    return [event.kind for event in task.events]


def test_call_is_stored_with_all_fields_and_legs(session, make_call) -> None:
    """Every CallRecord field is kept, with the normalized phone and UTC times."""
    call = make_call(
        caller="89039556279",
        caller_name="Павлова Ирина",
        did="74951234500",
        disposition=Disposition.ANSWERED,
        agent="101",
        agent_name="Иванова Анна",
        last_agent="102",
        transfers=("blind",),
        recording="q-1.wav",
        hangup_cause=16,
        start_ts=1795369641.395,
        end_ts=1795369659.063,
        legs=(
            AgentLeg(
                agent="101",
                agent_name="Иванова Анна",
                rang_at=1795369645.0,
                answered_at=1795369647.7,
                ended_at=1795369659.0,
                outcome="answered",
            ),
            AgentLeg(
                agent="102",
                agent_name=None,
                rang_at=1795369645.0,
                answered_at=None,
                ended_at=1795369647.7,
                outcome="cancelled",
            ),
        ),
    )
    persist_all(session, call)

    row = queries.get_call(session, linkedid=call.linkedid)
    assert row is not None
    assert (row.caller, row.phone, row.caller_name, row.did) == (
        "89039556279",
        PHONE,
        "Павлова Ирина",
        "74951234500",
    )
    assert (row.direction, row.disposition, row.agent, row.last_agent) == (
        "inbound",
        "answered",
        "101",
        "102",
    )
    assert row.transfers == ["blind"]
    assert row.started_at == datetime(2026, 11, 22, 17, 47, 21, 395000, tzinfo=UTC)
    assert row.ended_at.tzinfo is UTC
    assert (row.start_ts, row.end_ts) == (call.start_ts, call.end_ts)
    assert [(leg.agent, leg.outcome) for leg in row.legs] == [
        ("101", "answered"),
        ("102", "cancelled"),
    ]
    assert row.legs[1].answered_at is None


def test_replaying_the_same_call_stores_nothing_twice(session, make_call) -> None:
    """persist_call is idempotent by linkedid: the second time writes nothing."""
    call = make_call()
    first, second = persist_all(session, call, call)
    assert first.stored and isinstance(first.decision, OpenTask)
    assert second == queries.PersistResult(stored=False, call_id=None, decision=None)
    assert session.scalar(select(func.count()).select_from(Call)) == 1
    (task,) = all_tasks(session)
    assert task.dropped_calls == 1
    assert event_kinds(task) == ["opened"]


def test_replaying_a_trace_twice_does_not_reapply_task_rules(session, make_call) -> None:
    """Replaying drop → answered → drop again leaves the same calls, tasks and events."""
    trace = [
        make_call(start_ts=1000.0),
        make_call(disposition=Disposition.ANSWERED, start_ts=2000.0),
        make_call(disposition=Disposition.ABANDONED, start_ts=3000.0),
    ]
    persist_all(session, *trace)
    before = [(t.id, t.status, event_kinds(t)) for t in all_tasks(session)]
    replayed = persist_all(session, *trace)
    assert not any(result.stored for result in replayed)
    session.expire_all()
    assert [(t.id, t.status, event_kinds(t)) for t in all_tasks(session)] == before
    assert session.scalar(select(func.count()).select_from(Call)) == 3
    assert session.scalar(select(func.count()).select_from(CallLeg)) == 0


def test_queue_timeout_opens_missed_call_task(session, make_call) -> None:
    """Rule: a queue_timeout inbound call opens a missed_call service task for the caller's
    normalized number, due at the drop time."""
    call = make_call(caller="9039556279", disposition=Disposition.QUEUE_TIMEOUT)
    (result,) = persist_all(session, call)
    (task,) = queries.list_open_tasks(session)
    assert (task.phone, task.reason, task.kind, task.status) == (
        PHONE,
        "missed_call",
        "service",
        "open",
    )
    assert task.opened_at == task.due_at == queries.to_utc(call.end_ts)
    assert (task.first_call_linkedid, task.dropped_calls, task.attempts) == (call.linkedid, 1, 0)
    assert result.task_changes == (
        queries.TaskChange(task_id=task.id, phone=PHONE, reason="missed_call", status="opened"),
    )


def test_abandoned_call_opens_abandoned_call_task(session, make_call) -> None:
    """Rule: an abandoned inbound call opens an abandoned_call task."""
    persist_all(session, make_call(disposition=Disposition.ABANDONED))
    (task,) = queries.list_open_tasks(session)
    assert task.reason == "abandoned_call"


def test_repeat_drop_is_recorded_on_the_same_task(session, make_call) -> None:
    """Rule: one open task per number; a repeat missed call is recorded on the same task as
    another missed call; it is not a callback attempt."""
    first = make_call(caller="89039556279", start_ts=1000.0)
    repeat = make_call(caller="+79039556279", disposition=Disposition.BUSY, start_ts=2000.0)
    _, result = persist_all(session, first, repeat)

    (task,) = all_tasks(session)
    assert isinstance(result.decision, RecordRepeatDrop)
    assert result.task_changes[0].status == "repeat_drop"
    assert (task.status, task.reason, task.dropped_calls, task.attempts) == (
        "open",
        "missed_call",
        2,
        0,
    )
    assert [(e.kind, e.call_linkedid, e.detail) for e in task.events] == [
        ("opened", first.linkedid, "missed_call"),
        ("repeat_drop", repeat.linkedid, "missed_call"),
    ]


def test_answered_call_later_closes_task_as_got_through(session, make_call) -> None:
    """Rule: the task closes by itself when that number later gets through (answered inbound)."""
    drop = make_call(start_ts=1000.0)
    answered = make_call(caller="79039556279", disposition=Disposition.ANSWERED, start_ts=5000.0)
    _, result = persist_all(session, drop, answered)

    (task,) = all_tasks(session)
    assert isinstance(result.decision, CloseTask)
    assert (task.status, task.close_reason, task.closed_at) == (
        "closed",
        "got_through",
        queries.to_utc(answered.end_ts),
    )
    assert event_kinds(task) == ["opened", "closed"]
    assert task.events[-1].call_linkedid == answered.linkedid
    assert queries.list_open_tasks(session) == []


def test_outbound_answered_closes_task_by_number(session, make_call) -> None:
    """Rule: the task closes when the number is reached by an answered outbound call (its
    caller field is the patient's number)."""
    outbound = make_call(
        caller="89039556279",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        style="operator_first",
        start_ts=5000.0,
    )
    persist_all(session, make_call(start_ts=1000.0), outbound)
    (task,) = all_tasks(session)
    assert (task.status, task.close_reason) == ("closed", "reached")


def test_outbound_answered_closes_task_by_callback_task_id(session, make_call) -> None:
    """Rule: an outbound call's callback_task is the task id it was placed for; answered, it
    closes that task even when the number it dialled is written differently or not at all."""
    persist_all(session, make_call(start_ts=1000.0))
    (task,) = all_tasks(session)
    outbound = make_call(
        caller="<unknown>",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        callback_task=str(task.id),
        start_ts=5000.0,
    )
    (result,) = persist_all(session, outbound)
    assert isinstance(result.decision, CloseTask)
    session.refresh(task)
    assert (task.status, task.close_reason) == ("closed", "reached")


def test_failed_callback_leaves_task_open(session, make_call) -> None:
    """Rule: only an answered outbound call closes the task; attempts are counted by later
    callback-queue work, not here."""
    persist_all(session, make_call(start_ts=1000.0))
    (task,) = all_tasks(session)
    failed = make_call(
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_FAILED,
        callback_task=str(task.id),
        start_ts=5000.0,
    )
    (result,) = persist_all(session, failed)
    assert isinstance(result.decision, NoChange)
    session.refresh(task)
    assert (task.status, task.attempts) == ("open", 0)


def test_anonymous_caller_is_stored_and_counted_without_task(session, make_call) -> None:
    """Rule: withheld (anonymous) callers are counted, never turned into tasks."""
    (result,) = persist_all(session, make_call(caller="anonymous"))
    assert isinstance(result.decision, NoChange)
    assert result.task_changes == ()
    assert all_tasks(session) == []
    assert queries.count_calls_by_disposition(session) == {"queue_timeout": 1}
    row = session.scalar(select(Call))
    assert row is not None and (row.caller, row.phone) == ("anonymous", None)


def test_caller_that_is_not_a_number_is_stored_with_null_phone_and_no_task(
    session, make_call
) -> None:
    """Bad input: a caller that is not a phone number ("abc", "<unknown>") is stored with
    phone NULL and opens no task."""
    persist_all(session, make_call(caller="abc"), make_call(caller="<unknown>"))
    rows = session.scalars(select(Call).order_by(Call.id)).all()
    assert [(row.caller, row.phone) for row in rows] == [("abc", None), ("<unknown>", None)]
    assert all_tasks(session) == []


def test_drop_after_a_closed_task_opens_a_new_task(session, make_call) -> None:
    """Rule: one *open* task per number; once closed, the next drop opens a fresh task."""
    persist_all(
        session,
        make_call(start_ts=1000.0),
        make_call(disposition=Disposition.ANSWERED, start_ts=2000.0),
        make_call(start_ts=3000.0),
    )
    assert [(t.status, t.dropped_calls) for t in all_tasks(session)] == [
        ("closed", 1),
        ("open", 1),
    ]


def test_answered_call_overlapping_a_drop_leaves_no_task_in_end_time_order(
    session, make_call
) -> None:
    """Rule: a dropped call whose number had an answered call overlapping or after its start
    leaves no open task. burst: +79777228464 is answered (start 1795369641.618, end
    1795369669.291) while 89777228464 (start 1795369643.277) times out at 1795369669.324."""
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
    _, result = persist_all(session, answered, dropped)
    assert isinstance(result.decision, NoChange)
    assert all_tasks(session) == []


def test_contact_persisted_out_of_order_does_not_close_a_later_drop(session, make_call) -> None:
    """Rule: the task closes when the number *later* gets through: a conversation that ended
    before the task's latest drop started, persisted late, leaves the task open."""
    early_answered = make_call(disposition=Disposition.ANSWERED, start_ts=1000.0, end_ts=1100.0)
    persist_all(session, make_call(start_ts=500.0), make_call(start_ts=2000.0), early_answered)
    (task,) = all_tasks(session)
    assert (task.status, task.dropped_calls) == ("open", 2)


def test_list_open_tasks_puts_dropped_callers_first_then_oldest(session, make_call) -> None:
    """The callback queue: tasks from dropped calls before other reasons, older first."""
    persist_all(
        session,
        make_call(caller="89039556279", start_ts=3000.0),
        make_call(caller="89161234567", start_ts=1000.0, disposition=Disposition.ABANDONED),
    )
    earliest = datetime(2026, 1, 1, tzinfo=UTC)
    session.add(
        Task(
            phone="+79265550101",
            reason="no_show",
            kind="service",
            status="open",
            opened_at=earliest,
            due_at=earliest,
        )
    )
    session.commit()
    assert [t.phone for t in queries.list_open_tasks(session)] == [
        "+79161234567",
        "+79039556279",
        "+79265550101",
    ]


def test_count_calls_by_disposition(session, make_call) -> None:
    """Stored calls are counted per disposition, withheld callers included."""
    persist_all(
        session,
        make_call(caller="anonymous"),
        make_call(caller="89161234567"),
        make_call(disposition=Disposition.ANSWERED),
    )
    assert queries.count_calls_by_disposition(session) == {"queue_timeout": 2, "answered": 1}


def test_task_row_is_json_ready(session, make_call) -> None:
    """task_row gives plain values with ISO 8601 UTC times."""
    call = make_call(start_ts=1795369641.0)
    persist_all(session, call)
    (task,) = all_tasks(session)
    row = queries.task_row(task)
    assert row["phone"] == PHONE
    assert row["opened_at"] == "2026-11-22T17:47:47+00:00"
    assert row["closed_at"] is None
    assert session.scalar(select(func.count()).select_from(TaskEvent)) == 1
