"""Operators' callback list: list, take, snooze, close, click-to-call (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.store import callbacks, dialer
from callcenter.store.callbacks import BadTaskRequest, TaskUnavailable
from callcenter.store.models import Task, TaskAttempt, TaskEvent
from callcenter.store.models_patients import Patient, PatientPhone

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 12:00 in Moscow


def add_task(session_factory, *, phone, reason="missed_call", opened_at=None, due_at=None):
    opened_at = opened_at or NOW - timedelta(minutes=10)
    with session_factory.begin() as session:
        task = Task(
            phone=phone,
            reason=reason,
            kind="service",
            status="open",
            opened_at=opened_at,
            due_at=due_at or opened_at,
            attempts=0,
        )
        session.add(task)
        session.flush()
        return task.id


def listed(session_factory, extension, **kwargs):
    with session_factory() as session:
        return callbacks.list_operator_callbacks(session, extension=extension, now=NOW, **kwargs)


def test_list_orders_dropped_calls_first_then_older_and_respects_the_horizon(session_factory):
    """Due now or within the horizon; dropped callers first, older first; later ones left out."""
    old_follow_up = add_task(
        session_factory, phone="+79030000001", reason="no_show", opened_at=NOW - timedelta(days=2)
    )
    new_drop = add_task(session_factory, phone="+79030000002", opened_at=NOW - timedelta(minutes=1))
    old_drop = add_task(
        session_factory,
        phone="+79030000003",
        reason="abandoned_call",
        opened_at=NOW - timedelta(hours=1),
    )
    in_two_hours = add_task(
        session_factory, phone="+79030000004", reason="no_show", due_at=NOW + timedelta(hours=2)
    )
    add_task(session_factory, phone="+79030000005", due_at=NOW + timedelta(days=3))
    items = listed(session_factory, "101")
    assert [i.task_id for i in items] == [old_drop, new_drop, old_follow_up, in_two_hours]
    assert [i.status for i in items] == ["due", "due", "due", "scheduled"]
    short = listed(session_factory, "101", horizon=timedelta(hours=1), limit=2)
    assert [i.task_id for i in short] == [old_drop, new_drop]


def test_list_shows_patient_name_attempts_and_last_outcome(session_factory):
    task_id = add_task(session_factory, phone="+79031112233")
    with session_factory.begin() as session:
        patient = Patient(full_name="Иванова Мария Петровна")
        patient.phones.append(PatientPhone(phone="+79031112233"))
        session.add(patient)
        task = session.get(Task, task_id)
        task.attempts = 1
        session.add(TaskAttempt(task_id=task_id, started_at=NOW, ended_at=NOW, outcome="no_answer"))
        session.add(TaskAttempt(task_id=task_id, started_at=NOW, ended_at=NOW, outcome="busy"))
    (item,) = listed(session_factory, "101")
    assert item.patient_name == "Иванова Мария Петровна"
    assert item.patient_id is not None
    assert (item.attempts, item.last_outcome, item.kind, item.reason) == (
        1,
        "busy",
        "service",
        "missed_call",
    )


def test_a_task_taken_by_101_is_not_in_102s_list(session_factory):
    """A task taken by one operator disappears from the others' lists."""
    taken = add_task(session_factory, phone="+79030000011")
    other = add_task(session_factory, phone="+79030000012")
    with session_factory.begin() as session:
        item = callbacks.take_task(session, taken, extension="101", by="anna", now=NOW)
    assert (item.assigned_extension, item.status, item.due_at) == ("101", "due", NOW)
    assert [i.task_id for i in listed(session_factory, "102")] == [other]
    assert {i.task_id for i in listed(session_factory, "101")} == {taken, other}
    with session_factory() as session, pytest.raises(TaskUnavailable, match="taken by 101"):
        callbacks.take_task(session, taken, extension="102", by="boris", now=NOW)
    with session_factory() as session:
        events = session.scalars(select(TaskEvent).where(TaskEvent.task_id == taken)).all()
        assert [(e.kind, e.detail) for e in events] == [("taken", "101 (anna)")]


def test_take_makes_a_later_task_due_now(session_factory):
    later = add_task(session_factory, phone="+79030000021", due_at=NOW + timedelta(hours=3))
    with session_factory.begin() as session:
        callbacks.take_task(session, later, extension="101", by="anna", now=NOW)
    with session_factory() as session:
        assert session.get(Task, later).due_at == NOW


def test_take_of_a_closed_task_raises_task_unavailable(session_factory):
    task_id = add_task(session_factory, phone="+79030000031")
    with session_factory.begin() as session:
        callbacks.close_task_by_operator(
            session, task_id, reason="wrong_number", by="anna", now=NOW
        )
    with session_factory() as session, pytest.raises(TaskUnavailable, match="closed"):
        callbacks.take_task(session, task_id, extension="101", by="anna", now=NOW)
    with session_factory() as session, pytest.raises(TaskUnavailable, match="does not exist"):
        callbacks.take_task(session, 999_999, extension="101", by="anna", now=NOW)


def test_a_task_being_dialled_cannot_be_taken_snoozed_or_closed(session_factory):
    """A dialer's live lease means a call is being placed: operators wait for its outcome."""
    task_id = add_task(session_factory, phone="+79030000041")
    with session_factory.begin() as session:
        (claimed,) = dialer.claim_due_tasks(
            session, worker_id="w1", now=NOW, lease_s=120.0, limit=1
        )
    (item,) = listed(session_factory, "101")
    assert item.status == "dialling"
    with session_factory() as session:
        with pytest.raises(TaskUnavailable, match="being dialled"):
            callbacks.take_task(session, task_id, extension="101", by="anna", now=NOW)
        with pytest.raises(TaskUnavailable, match="being dialled"):
            callbacks.snooze_task(
                session, task_id, until=NOW + timedelta(hours=1), by="anna", now=NOW
            )
        with pytest.raises(TaskUnavailable, match="being dialled"):
            callbacks.close_task_by_operator(session, task_id, reason="other", by="a", now=NOW)
    # After the lease ends the task is the operators' again.
    later = NOW + timedelta(seconds=121)
    with session_factory.begin() as session:
        callbacks.take_task(session, task_id, extension="101", by="anna", now=later)


def test_snooze_moves_the_due_time_and_into_the_past_is_refused(session_factory):
    task_id = add_task(session_factory, phone="+79030000051")
    until = NOW + timedelta(hours=4)
    with session_factory.begin() as session:
        item = callbacks.snooze_task(session, task_id, until=until, by="anna", now=NOW)
    assert (item.due_at, item.status) == (until, "scheduled")
    with session_factory() as session:
        with pytest.raises(BadTaskRequest, match="past"):
            callbacks.snooze_task(
                session, task_id, until=NOW - timedelta(minutes=1), by="anna", now=NOW
            )
        with pytest.raises(BadTaskRequest, match="past"):
            callbacks.snooze_task(session, task_id, until=NOW, by="anna", now=NOW)
        with pytest.raises(BadTaskRequest, match="naive"):
            callbacks.snooze_task(
                session, task_id, until=datetime(2026, 11, 24, 9, 0), by="anna", now=NOW
            )
    with session_factory() as session:
        assert session.get(Task, task_id).due_at == until


def test_close_by_operator_with_a_known_reason_and_unknown_reason_refused(session_factory):
    task_id = add_task(session_factory, phone="+79030000061")
    with session_factory() as session, pytest.raises(BadTaskRequest, match="unknown close reason"):
        callbacks.close_task_by_operator(session, task_id, reason="bored", by="anna", now=NOW)
    with session_factory() as session:
        assert session.get(Task, task_id).status == "open"
    with session_factory.begin() as session:
        callbacks.close_task_by_operator(
            session, task_id, reason="reached_elsewhere", by="anna", now=NOW
        )
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason, task.closed_at) == (
            "closed",
            "reached_elsewhere",
            NOW,
        )
        assert task.events[-1].detail == "reached_elsewhere (anna)"
    assert listed(session_factory, "101") == []
    with session_factory() as session, pytest.raises(TaskUnavailable):
        callbacks.close_task_by_operator(session, task_id, reason="other", by="anna", now=NOW)


def test_click_to_call_for_a_number_with_no_task_opens_one_and_takes_it(session_factory):
    with session_factory.begin() as session:
        item = callbacks.request_call(
            session, phone="8 (903) 555-00-71", extension="101", by="anna", now=NOW
        )
    assert (item.phone, item.reason, item.kind, item.assigned_extension, item.status) == (
        "+79035550071",
        "click_to_call",
        "service",
        "101",
        "due",
    )
    with session_factory() as session:
        task = session.get(Task, item.task_id)
        assert [e.kind for e in task.events] == ["opened", "taken"]
        assert task.opened_at == task.due_at == NOW


def test_click_to_call_reuses_the_numbers_open_task(session_factory):
    task_id = add_task(session_factory, phone="+79035550072", due_at=NOW + timedelta(hours=2))
    with session_factory.begin() as session:
        item = callbacks.request_call(
            session, phone="89035550072", extension="102", by="b", now=NOW
        )
    assert (item.task_id, item.assigned_extension, item.due_at) == (task_id, "102", NOW)
    with session_factory() as session:
        assert len(session.scalars(select(Task)).all()) == 1
    with session_factory() as session, pytest.raises(TaskUnavailable, match="taken by 102"):
        callbacks.request_call(session, phone="+79035550072", extension="101", by="a", now=NOW)


@pytest.mark.parametrize("phone", ["", "anonymous", "abc", "123", "+7903,1"])
def test_click_to_call_to_an_undialable_number_is_refused(session_factory, phone):
    with (
        session_factory() as session,
        pytest.raises(BadTaskRequest, match="not a number that can be dialled"),
    ):
        callbacks.request_call(session, phone=phone, extension="101", by="anna", now=NOW)
    with session_factory() as session:
        assert session.scalars(select(Task)).all() == []


@pytest.mark.parametrize("extension", ["", "1", "10a", "101; DROP"])
def test_a_malformed_extension_is_refused(session_factory, extension):
    task_id = add_task(session_factory, phone="+79030000081")
    with session_factory() as session:
        with pytest.raises(BadTaskRequest, match="not an extension"):
            callbacks.take_task(session, task_id, extension=extension, by="anna", now=NOW)
        with pytest.raises(BadTaskRequest, match="not an extension"):
            callbacks.list_operator_callbacks(session, extension=extension, now=NOW)


def test_list_refuses_bad_horizon_and_limit(session_factory):
    with session_factory() as session:
        with pytest.raises(BadTaskRequest, match="horizon"):
            callbacks.list_operator_callbacks(
                session, extension="101", now=NOW, horizon=timedelta(hours=-1)
            )
        with pytest.raises(BadTaskRequest, match="limit"):
            callbacks.list_operator_callbacks(session, extension="101", now=NOW, limit=0)


def test_the_sweep_offers_a_taken_task_to_its_operator_only(session_factory):
    """The claim hands the assigned extension to the dialer (which rings only that one)."""
    task_id = add_task(session_factory, phone="+79030000091")
    with session_factory.begin() as session:
        callbacks.take_task(session, task_id, extension="105", by="anna", now=NOW)
    with session_factory.begin() as session:
        (claimed,) = dialer.claim_due_tasks(session, worker_id="w1", now=NOW, lease_s=60, limit=5)
    assert (claimed.task_id, claimed.assigned_extension) == (task_id, "105")
