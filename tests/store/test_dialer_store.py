"""Dialer store: clinic settings with history, exclusive claims, leases, attempts (both DBs)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from callcenter.store import dialer, queries
from callcenter.store.models import Task, TaskAttempt, TaskEvent
from callcenter.tasks.schedule import (
    AttemptOutcome,
    ClinicSchedule,
    CloseAfterAttempt,
    CloseReasonDialer,
    Reschedule,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 12:00 in Moscow


def add_task(
    session_factory, *, phone, reason="missed_call", opened_at=None, due_at=None, kind="service"
):
    opened_at = opened_at or NOW - timedelta(minutes=10)
    with session_factory.begin() as session:
        task = Task(
            phone=phone,
            reason=reason,
            kind=kind,
            status="open",
            opened_at=opened_at,
            due_at=due_at or opened_at,
            attempts=0,
        )
        session.add(task)
        session.flush()
        return task.id


def claim(session_factory, *, worker="w1", now=NOW, limit=10, lease_s=120.0, exclude=()):
    with session_factory.begin() as session:
        return dialer.claim_due_tasks(
            session,
            worker_id=worker,
            now=now,
            lease_s=lease_s,
            limit=limit,
            exclude_phones=exclude,
        )


def test_schedule_saved_with_history_newest_in_force(session_factory):
    """Clinic settings: load/save ClinicSchedule as JSON, with who/when kept for every version."""
    with session_factory.begin() as session:
        assert dialer.load_clinic_schedule(session) == ClinicSchedule()
        dialer.save_clinic_schedule(
            session, schedule=ClinicSchedule(max_attempts=5), changed_by="admin", at=NOW
        )
        dialer.save_clinic_schedule(
            session,
            schedule=ClinicSchedule(max_attempts=2, hours=((time(8), time(20)),) * 7),
            changed_by="chief",
            at=NOW + timedelta(hours=1),
            note="weekend shifts",
        )
    with session_factory() as session:
        current = dialer.load_clinic_schedule(session)
        assert current.max_attempts == 2 and current.hours[6] == (time(8), time(20))
        history = dialer.clinic_settings_history(session)
        assert [(h.changed_by, h.changed_at) for h in history] == [
            ("chief", NOW + timedelta(hours=1)),
            ("admin", NOW),
        ]
        assert history[0].note == "weekend shifts"


def test_claim_takes_due_tasks_dropped_first_then_oldest(session_factory):
    """Priority: dropped calls before follow-ups; older before newer; not-yet-due stay."""
    follow_up = add_task(session_factory, phone="+79000000001", reason="no_show")
    newer = add_task(session_factory, phone="+79000000002", opened_at=NOW - timedelta(minutes=1))
    older = add_task(session_factory, phone="+79000000003", reason="abandoned_call")
    add_task(session_factory, phone="+79000000004", due_at=NOW + timedelta(minutes=5))
    claimed = claim(session_factory)
    assert [c.task_id for c in claimed] == [older, newer, follow_up]


def test_claim_takes_service_follow_ups_before_an_older_marketing_backlog(session_factory):
    """Priority: dropped calls, then service follow-ups, then marketing; older first in each."""
    invitation = add_task(
        session_factory,
        phone="+79000000001",
        reason="sleeping",
        kind="marketing",
        opened_at=NOW - timedelta(days=20),
    )
    reminder = add_task(session_factory, phone="+79000000002", reason="reminder")
    missed = add_task(session_factory, phone="+79000000003", opened_at=NOW - timedelta(minutes=1))
    assert [c.task_id for c in claim(session_factory)] == [missed, reminder, invitation]


def test_a_drop_on_a_follow_up_makes_it_a_service_callback_due_now(session_factory, make_call):
    """Rule: one open task per number; the patient's own dropped call turns our open «Забота»
    invitation into a callback to a dropped caller (service: the caller's own request)."""
    from callcenter.calls.model import Disposition

    invitation = add_task(
        session_factory,
        phone="+79039556279",
        reason="sleeping",
        kind="marketing",
        due_at=NOW + timedelta(days=2),
    )
    call = make_call(
        caller="89039556279",
        disposition=Disposition.ABANDONED,
        start_ts=NOW.timestamp(),
        end_ts=NOW.timestamp() + 30,
    )
    with session_factory.begin() as session:
        queries.persist_call(session, call=call)
    with session_factory() as session:
        task = session.get(Task, invitation)
        assert (task.status, task.reason, task.kind) == ("open", "abandoned_call", "service")
        assert task.due_at == NOW + timedelta(seconds=30)
        assert task.dropped_calls == 1
        kinds = [e.kind for e in task.events]
        assert kinds == ["taken_over", "repeat_drop"]
        assert task.events[0].detail == "sleeping → abandoned_call"
    assert [c.task_id for c in claim(session_factory, now=NOW + timedelta(minutes=1))] == [
        invitation
    ]


def test_claimed_task_is_not_claimed_again_until_its_lease_expires(session_factory):
    """A lease keeps other dialers off; after it expires the task is due again."""
    task_id = add_task(session_factory, phone="+79000000001")
    assert [c.task_id for c in claim(session_factory, worker="w1")] == [task_id]
    assert claim(session_factory, worker="w2", now=NOW + timedelta(seconds=119)) == []
    again = claim(session_factory, worker="w2", now=NOW + timedelta(seconds=121))
    assert [c.task_id for c in again] == [task_id]
    with session_factory() as session:
        assert dialer.holds_lease(
            session, task_id=task_id, worker_id="w2", now=NOW + timedelta(seconds=122)
        )
        assert not dialer.holds_lease(session, task_id=task_id, worker_id="w1", now=NOW)


def test_reclaimed_task_reports_the_attempt_sent_under_the_old_lease(session_factory):
    """After a lease timeout the new holder learns a call may already have been placed."""
    task_id = add_task(session_factory, phone="+79000000001")
    claim(session_factory, worker="w1")
    with session_factory.begin() as session:
        dialer.start_attempt(session, task_id=task_id, action_id="cb-1-abc", started_at=NOW)
    (again,) = claim(session_factory, worker="w2", now=NOW + timedelta(minutes=5))
    assert [u.action_id for u in again.unfinished] == ["cb-1-abc"]


def test_excluded_phone_is_not_claimed(session_factory):
    """At most one live call per patient: a number on a live call is left for later."""
    add_task(session_factory, phone="+79000000001")
    other = add_task(session_factory, phone="+79000000002")
    claimed = claim(session_factory, exclude={"+79000000001"})
    assert [c.task_id for c in claimed] == [other]


def test_finish_attempt_reschedules_and_records_outcome(session_factory):
    """A failed attempt is recorded (outcome, action_id, linkedid) and the task rescheduled."""
    task_id = add_task(session_factory, phone="+79000000001")
    claim(session_factory)
    due = NOW + timedelta(minutes=15)
    with session_factory.begin() as session:
        dialer.start_attempt(session, task_id=task_id, action_id="cb-a", started_at=NOW)
        result = dialer.finish_attempt(
            session,
            task_id=task_id,
            action_id="cb-a",
            outcome=AttemptOutcome.NO_ANSWER,
            linkedid="1795369513.56",
            ended_at=NOW + timedelta(seconds=30),
            decision=Reschedule(due_at=due, attempts=1),
            worker_id="w1",
        )
    assert result == "rescheduled"
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.attempts, task.due_at) == ("open", 1, due)
        (attempt,) = session.scalars(select(TaskAttempt)).all()
        assert (attempt.outcome, attempt.action_id, attempt.call_linkedid) == (
            "no_answer",
            "cb-a",
            "1795369513.56",
        )
    # Released: due again at the new time, for anyone.
    assert claim(session_factory, worker="w2", now=due) != []


def test_finish_attempt_on_a_task_already_closed_keeps_it_closed(session_factory):
    """The stored answered call may close the task first; the dialer only adds the attempt."""
    task_id = add_task(session_factory, phone="+79000000001")
    with session_factory.begin() as session:
        task = session.get(Task, task_id)
        task.status, task.closed_at, task.close_reason = "closed", NOW, "reached"
        result = dialer.finish_attempt(
            session,
            task_id=task_id,
            action_id="cb-b",
            outcome=AttemptOutcome.ANSWERED,
            linkedid="1.2",
            ended_at=NOW,
            decision=CloseAfterAttempt(close_reason=CloseReasonDialer.REACHED, attempts=1),
            worker_id="w1",
        )
    assert result == "already_closed"
    with session_factory() as session:
        events = session.scalars(select(TaskEvent).where(TaskEvent.kind == "closed")).all()
        assert events == []  # closed once, by whoever came first


def test_refused_task_gets_status_refused_with_the_reason(session_factory):
    """A refused task records why: status "refused", the consent's reason as close_reason."""
    task_id = add_task(session_factory, phone="+79000000001")
    with session_factory.begin() as session:
        assert dialer.close_task_for(
            session,
            task_id=task_id,
            reason=CloseReasonDialer.REFUSED,
            detail="do_not_call",
            at=NOW,
            worker_id="w1",
        )
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason, task.closed_at) == ("refused", "do_not_call", NOW)
        assert [(e.kind, e.detail) for e in task.events] == [("refused", "do_not_call")]
        # No longer open: the number may get a new task, and the list leaves it out.
        assert queries.find_open_task(session, phone="+79000000001") is None
        assert task_id not in [t.id for t in queries.list_open_tasks(session)]


@pytest.mark.postgres
def test_two_postgres_sessions_claim_disjoint_tasks_skip_locked(db_url, session_factory):
    """SKIP LOCKED: while one dialer's claim is uncommitted, another takes the other rows."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer")
    ids = [add_task(session_factory, phone=f"+7900000000{n}") for n in range(4)]
    first = session_factory()
    second = session_factory()
    try:
        first.begin()
        a = dialer.claim_due_tasks(first, worker_id="w1", now=NOW, lease_s=60, limit=2)
        second.begin()
        b = dialer.claim_due_tasks(second, worker_id="w2", now=NOW, lease_s=60, limit=10)
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    got_a = {c.task_id for c in a}
    got_b = {c.task_id for c in b}
    assert len(got_a) == 2 and got_a.isdisjoint(got_b) and got_a | got_b == set(ids)


def test_without_saved_settings_the_configured_default_applies(session_factory):
    """Before anyone saves clinic settings, the default (CLINIC_TIMEZONE) is in force."""
    default = ClinicSchedule(tz="Asia/Yekaterinburg")
    with session_factory() as session:
        assert dialer.load_clinic_schedule(session, default=default) == default
