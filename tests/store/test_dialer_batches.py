"""The dialer's batched store work gives the same answers as the one-at-a-time functions.

Consent facts for many numbers at once equal ``consent_state_for_phone`` and
``called_us_within``; attempts start only under a live lease of their dialer; a batch of
outcomes closes or reschedules each task as the single ``finish_attempt`` does; the numbers'
locks taken in one statement are the same locks as ``queries.lock_phone``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from callcenter.store import dialer, queries
from callcenter.store.models import Task, TaskAttempt
from callcenter.store.models_dialer import TaskLease
from callcenter.store.models_patients import Patient, PatientPhone
from callcenter.store.patients import (
    add_do_not_call,
    called_us_within,
    consent_state_for_phone,
    record_consent,
)
from callcenter.tasks.schedule import (
    AttemptOutcome,
    CloseAfterAttempt,
    CloseReasonDialer,
    Reschedule,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def add_task(session_factory, phone: str) -> int:
    with session_factory.begin() as session:
        task = Task(
            phone=phone,
            reason="missed_call",
            kind="service",
            status="open",
            opened_at=NOW - timedelta(minutes=10),
            due_at=NOW - timedelta(minutes=1),
            attempts=0,
        )
        session.add(task)
        session.flush()
        return task.id


def add_patient(session, name: str, *phones: str) -> int:
    patient = Patient(full_name=name)
    for phone in phones:
        patient.phones.append(PatientPhone(phone=phone))
    session.add(patient)
    session.flush()
    return patient.id


def test_consent_facts_for_many_numbers_equal_the_single_lookups(session_factory, make_call):
    since = NOW - timedelta(days=30)
    with session_factory.begin() as session:
        pd = add_patient(session, "С согласием", "+79030000001")
        record_consent(
            session,
            patient_id=pd,
            kind="pd",
            action="given",
            at=NOW - timedelta(days=9),
            by="admin",
            channel="paper",
        )
        both = add_patient(session, "Маркетинг отозван", "+79030000002")
        for kind, action, days in (
            ("pd", "given", 9),
            ("marketing", "given", 9),
            ("marketing", "withdrawn", 1),
        ):
            record_consent(
                session,
                patient_id=both,
                kind=kind,
                action=action,
                at=NOW - timedelta(days=days),
                by="admin",
                channel="phone",
            )
        # A later record (after NOW) must not count yet.
        record_consent(
            session,
            patient_id=pd,
            kind="pd",
            action="withdrawn",
            at=NOW + timedelta(hours=1),
            by="admin",
            channel="phone",
        )
        two = add_patient(session, "Два номера", "+79030000003", "+79030000004")
        record_consent(
            session,
            patient_id=two,
            kind="pd",
            action="given",
            at=NOW - timedelta(days=5),
            by="admin",
            channel="paper",
        )
        add_do_not_call(session, phone="+79030000004", at=NOW - timedelta(days=1), by="admin")
        add_do_not_call(session, phone="+79030000005", at=NOW - timedelta(days=1), by="admin")
        queries.persist_call(
            session,
            call=make_call(caller="89030000006", start_ts=(NOW - timedelta(days=2)).timestamp()),
        )
        queries.persist_call(
            session,
            call=make_call(caller="89030000007", start_ts=(NOW - timedelta(days=40)).timestamp()),
        )
    phones = [f"+7903000000{n}" for n in range(1, 9)] + ["not a number"]
    with session_factory() as session:
        many = dialer.consent_facts_for_phones(session, phones=phones, at=NOW, since=since)
        for phone in phones:
            expected = (
                consent_state_for_phone(session, phone=phone, at=NOW),
                called_us_within(session, phone=phone, since=since),
            )
            assert (many[phone].state, many[phone].called_us) == expected, phone
    # The cases really differ (the comparison above is not all-None).
    assert many["+79030000001"].state.pd_consent is True
    assert many["+79030000002"].state.marketing_consent is False
    assert many["+79030000003"].state.do_not_call is True  # the person's other number
    assert many["+79030000005"].state.do_not_call is True  # no patient, on the list
    assert many["+79030000006"].called_us is True
    assert many["+79030000007"].called_us is False  # 40 days ago
    assert many["+79030000008"].state is None


def test_attempts_start_only_under_the_dialers_live_lease(session_factory):
    mine, expired, theirs = (add_task(session_factory, f"+7903111000{n}") for n in range(3))
    with session_factory.begin() as session:
        dialer.claim_due_tasks(session, worker_id="w1", now=NOW, lease_s=60, limit=2)
        (other,) = dialer.claim_due_tasks(session, worker_id="w2", now=NOW, lease_s=60, limit=5)
        assert other.task_id == theirs
        session.get(TaskLease, expired).lease_until = NOW - timedelta(seconds=1)
    starts = [
        dialer.AttemptStart(task_id=task_id, action_id=f"cb-{task_id}-x")
        for task_id in (mine, expired, theirs)
    ]
    with session_factory.begin() as session:
        started = dialer.start_attempts(session, starts=starts, worker_id="w1", now=NOW)
    assert started == {mine}
    with session_factory() as session:
        attempts = session.scalars(select(TaskAttempt)).all()
        assert [(a.task_id, a.action_id, a.outcome) for a in attempts] == [
            (mine, f"cb-{mine}-x", None)
        ]
        assert session.get(TaskLease, mine).action_id == f"cb-{mine}-x"


def test_a_batch_of_outcomes_reschedules_closes_and_keeps_closed_tasks(session_factory):
    ids = [add_task(session_factory, f"+7903222000{n}") for n in range(3)]
    with session_factory.begin() as session:
        dialer.claim_due_tasks(session, worker_id="w1", now=NOW, lease_s=60, limit=5)
        dialer.start_attempts(
            session,
            starts=[dialer.AttemptStart(task_id=i, action_id=f"a-{i}") for i in ids],
            worker_id="w1",
            now=NOW,
        )
        # The stored call closed the third one first.
        third = session.get(Task, ids[2])
        third.status, third.close_reason, third.closed_at = "closed", "reached", NOW
    later = NOW + timedelta(seconds=30)
    finishes = [
        dialer.AttemptFinish(
            task_id=ids[0],
            action_id=f"a-{ids[0]}",
            outcome=AttemptOutcome.BUSY,
            linkedid=None,
            ended_at=later,
            decision=Reschedule(due_at=later + timedelta(minutes=15), attempts=1),
        ),
        dialer.AttemptFinish(
            task_id=ids[1],
            action_id=f"a-{ids[1]}",
            outcome=AttemptOutcome.ANSWERED,
            linkedid="1795.1",
            ended_at=later,
            decision=CloseAfterAttempt(close_reason=CloseReasonDialer.REACHED, attempts=1),
        ),
        dialer.AttemptFinish(
            task_id=ids[2],
            action_id=f"a-{ids[2]}",
            outcome=AttemptOutcome.ANSWERED,
            linkedid="1795.2",
            ended_at=later,
            decision=CloseAfterAttempt(close_reason=CloseReasonDialer.REACHED, attempts=1),
        ),
    ]
    with session_factory.begin() as session:
        states = dialer.finish_attempts(session, finishes=finishes, worker_id="w1")
    assert states == ["rescheduled", "closed", "already_closed"]
    with session_factory() as session:
        tasks = [session.get(Task, i) for i in ids]
        assert [(t.status, t.attempts) for t in tasks] == [
            ("open", 1),
            ("closed", 1),
            ("closed", 1),
        ]
        assert tasks[0].due_at == later + timedelta(minutes=15)
        assert tasks[1].close_reason == "reached"
        outcomes = {
            a.task_id: (a.outcome, a.call_linkedid) for a in session.scalars(select(TaskAttempt))
        }
        assert outcomes == {
            ids[0]: ("busy", None),
            ids[1]: ("answered", "1795.1"),
            ids[2]: ("answered", "1795.2"),
        }
        assert session.scalars(select(TaskLease)).all() == []


def test_finish_attempts_of_a_task_that_does_not_exist_raises(session_factory):
    finish = dialer.AttemptFinish(
        task_id=424242,
        action_id=None,
        outcome=AttemptOutcome.BUSY,
        linkedid=None,
        ended_at=NOW,
        decision=Reschedule(due_at=NOW, attempts=1),
    )
    with session_factory() as session, pytest.raises(LookupError, match="424242"):
        dialer.finish_attempts(session, finishes=[finish], worker_id="w1")


@pytest.mark.postgres
def test_lock_phones_takes_the_same_locks_as_lock_phone(db_url, session_factory):
    if not db_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's; SQLite has one writer")
    probe = text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:key))")
    with session_factory.begin() as holder:
        dialer.lock_phones(holder, phones=["+79035550002", "+79035550001", "+79035550001"])
        with session_factory.begin() as other:
            for phone, free in (
                ("+79035550001", False),
                ("+79035550002", False),
                ("+79035550003", True),
            ):
                got = other.scalar(
                    probe, {"ns": dialer.ADVISORY_LOCK_NAMESPACE, "key": f"task-phone:{phone}"}
                )
                assert got is free, phone
    # Released with the transaction.
    with session_factory.begin() as other:
        got = other.scalar(
            probe, {"ns": dialer.ADVISORY_LOCK_NAMESPACE, "key": "task-phone:+79035550001"}
        )
        assert got is True
