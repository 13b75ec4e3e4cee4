"""The follow-up sweep against the store, on SQLite and PostgreSQL (each test quotes its rule)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.store.followups import SKIP_LIMIT, SKIP_OPEN_TASK, SweepReport, sweep_followups
from callcenter.store.models import Task, TaskEvent
from callcenter.store.models_dialer import TaskLease
from callcenter.store.models_followups import FollowupRecord
from callcenter.store.models_patients import ConsentRecord, Patient, PatientPhone, Visit
from callcenter.store.patients import add_do_not_call
from callcenter.store.queries import persist_call
from callcenter.tasks.followups import FollowupRules
from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import DEFAULT_KINDS, ClinicSchedule, may_call_at

MSK = ZoneInfo("Europe/Moscow")
SCHEDULE = ClinicSchedule()  # Mon–Fri 09–21, Sat 10–18, Sun closed, Europe/Moscow
MONDAY = date(2026, 11, 23)


def msk(day: date, hour: int, minute: int = 0) -> datetime:
    """A clinic-local moment, as the aware UTC datetime the sweep takes."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=MSK).astimezone(UTC)


NOW = msk(MONDAY, 10)


def add_patient(
    session: Session,
    phone: str,
    *,
    visits: Sequence[tuple[Any, ...]] = (),
    pd: bool = True,
    marketing: bool = False,
) -> int:
    patient = Patient(full_name="Иванова Мария")
    patient.phones = [PatientPhone(phone=phone)]
    session.add(patient)
    session.flush()
    for visit in visits:
        service = visit[2] if len(visit) > 2 else "Консультация терапевта"
        session.add(
            Visit(patient_id=patient.id, visit_date=visit[0], status=visit[1], service=service)
        )
    given = datetime(2025, 1, 10, tzinfo=UTC)
    if pd:
        session.add(ConsentRecord(patient_id=patient.id, kind="pd", action="given", at=given))
    if marketing:
        session.add(
            ConsentRecord(patient_id=patient.id, kind="marketing", action="given", at=given)
        )
    session.flush()
    return patient.id


def add_visit(session: Session, patient_id: int, day: date, status: str) -> int:
    visit = Visit(patient_id=patient_id, visit_date=day, status=status, service="Пломбирование")
    session.add(visit)
    session.flush()
    return visit.id


def open_tasks(session: Session) -> list[Task]:
    session.expire_all()
    return list(session.scalars(select(Task).where(Task.status == "open").order_by(Task.id)))


def close_task(session: Session, task_id: int, *, at: datetime, reason: str = "reached") -> None:
    task = session.get(Task, task_id)
    assert task is not None
    task.status, task.closed_at, task.close_reason = "closed", at, reason
    session.flush()


def sweep(session: Session, now: datetime = NOW, **kwargs: Any) -> SweepReport:
    return sweep_followups(session, now=now, schedule=SCHEDULE, **kwargs)


def test_first_visit_series_stops_when_a_booking_appears(session: Session) -> None:
    """Rule: a patient who came once and has not booked is called 3, 7 and 14 days after the
    visit; the series stops as soon as a booking appears (the open follow-up closes "booked")."""
    first_visit = MONDAY - timedelta(days=3)  # Friday
    pid = add_patient(session, "+79161230001", visits=[(first_visit, "completed")])

    report = sweep(session)
    assert [(o.reason, o.step, o.kind) for o in report.opened] == [
        ("first_visit_followup", 1, "service")
    ]
    task = open_tasks(session)[0]
    assert (task.phone, task.reason, task.kind, task.patient_id) == (
        "+79161230001",
        "first_visit_followup",
        "service",
        pid,
    )
    assert task.due_at == NOW  # 10:00 on a Monday: inside working hours, due at once

    add_visit(session, pid, MONDAY + timedelta(days=10), "scheduled")  # the patient booked
    report = sweep(session, msk(MONDAY, 15))
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(task.id, "booked")]
    assert report.stopped_steps == 2
    assert open_tasks(session) == []
    events = session.scalars(select(TaskEvent.detail).where(TaskEvent.task_id == task.id)).all()
    assert events[-1] == "booked"

    # Days 7 and 14 come: the rest of the series does not happen.
    for day in (7, 14):
        later = sweep(session, msk(first_visit + timedelta(days=day), 11))
        assert [o for o in later.opened if o.reason == "first_visit_followup"] == []


def test_booking_cancelled_later_does_not_restart_a_stopped_series(session: Session) -> None:
    """Rule: the series stops as soon as a booking appears — for good: the steps after it are
    recorded as stopped, so a booking cancelled afterwards does not bring them back."""
    first_visit = MONDAY - timedelta(days=3)
    pid = add_patient(session, "+79161230002", visits=[(first_visit, "completed")])
    sweep(session)
    booking = add_visit(session, pid, MONDAY + timedelta(days=2), "scheduled")
    sweep(session, msk(MONDAY, 12))
    visit = session.get(Visit, booking)
    assert visit is not None
    visit.status = "cancelled"
    session.flush()
    report = sweep(session, msk(first_visit + timedelta(days=7), 11))
    assert [o.reason for o in report.opened] == []


def test_an_unanswered_step_expires_when_the_next_one_is_due(session: Session) -> None:
    """Rule: each step stays relevant until the next step's day; a step still open then is
    closed as expired and the next step is opened."""
    first_visit = MONDAY - timedelta(days=3)
    add_patient(session, "+79161230003", visits=[(first_visit, "completed")])
    first = sweep(session).opened[0]
    day7 = msk(first_visit + timedelta(days=7), 11)  # Friday 27 November
    report = sweep(session, day7)
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(first.task_id, "expired")]
    assert [(o.reason, o.step) for o in report.opened] == [("first_visit_followup", 2)]


def test_sweep_twice_opens_nothing_new(session: Session) -> None:
    """Rule: the sweep is idempotent — running it again opens nothing new, and a follow-up whose
    task was closed is never opened again."""
    add_patient(session, "+79161230010", visits=[(MONDAY - timedelta(days=3), "completed")])
    add_patient(session, "+79161230011", visits=[(MONDAY + timedelta(days=1), "scheduled")])
    add_patient(session, "+79161230012", visits=[(MONDAY, "no_show")])
    add_patient(
        session,
        "+79161230013",
        visits=[(MONDAY - timedelta(days=240), "completed")],
        marketing=True,
    )
    first = sweep(session)
    assert sorted(o.reason for o in first.opened) == [
        "first_visit_followup",
        "no_show",
        "reminder",
        "sleeping",
    ]
    assert sweep(session, msk(MONDAY, 10, 10)).opened == ()
    for task in open_tasks(session):
        close_task(session, task.id, at=msk(MONDAY, 10, 20))
    assert sweep(session, msk(MONDAY, 10, 30)).opened == ()
    assert session.scalar(select(func.count()).select_from(Task)) == 4
    assert session.scalar(select(func.count()).select_from(FollowupRecord)) == 4


def test_no_marketing_task_without_marketing_consent(session: Session) -> None:
    """Rule: marketing calls need the marketing consent besides the personal-data one; the
    do-not-call list wins over any consent."""
    asleep = [(MONDAY - timedelta(days=240), "completed")]  # 8 months ago: «спящий»
    add_patient(session, "+79161230020", visits=asleep, marketing=False)
    add_patient(session, "+79161230021", visits=asleep, marketing=True)
    add_patient(session, "+79161230022", visits=asleep, marketing=True)
    add_do_not_call(session, phone="+79161230022", at=NOW - timedelta(days=1), by="test")
    withdrawn = add_patient(session, "+79161230023", visits=asleep, marketing=True)
    session.add(
        ConsentRecord(
            patient_id=withdrawn, kind="marketing", action="withdrawn", at=NOW - timedelta(days=2)
        )
    )
    session.flush()

    report = sweep(session)
    assert [(o.phone, o.reason, o.kind) for o in report.opened] == [
        ("+79161230021", "sleeping", "marketing")
    ]
    # Without any marketing consent on file the patient is not even a candidate (the store
    # selects sleeping patients with the consent records their call needs); the listed one and
    # the one who withdrew the marketing consent are refused by the consent rule.
    assert report.skipped_by_why == {"do_not_call": 1, "no_marketing_consent": 1}
    assert [t.phone for t in open_tasks(session)] == ["+79161230021"]


def test_service_follow_up_needs_personal_data_consent(session: Session) -> None:
    """Rule: service follow-ups need the personal-data consent (they are not the caller's own
    request)."""
    add_patient(session, "+79161230025", visits=[(MONDAY, "no_show")], pd=False)
    report = sweep(session)
    assert report.opened == ()
    assert report.skipped_by_why == {"no_pd_consent": 1}


def test_phone_with_open_missed_call_task_gets_no_follow_up_now(session: Session) -> None:
    """Rule: one open task per phone — a number with an open task gets no follow-up now; it is
    considered again on the next sweep while still relevant."""
    phone = "+79161230030"
    add_patient(session, phone, visits=[(MONDAY - timedelta(days=3), "completed")])
    missed = Task(
        phone=phone,
        reason="missed_call",
        kind="service",
        status="open",
        opened_at=NOW - timedelta(hours=1),
        due_at=NOW - timedelta(hours=1),
    )
    session.add(missed)
    session.flush()

    report = sweep(session)
    assert report.opened == ()
    assert report.skipped_by_why == {SKIP_OPEN_TASK: 1}
    assert [t.id for t in open_tasks(session)] == [missed.id]

    close_task(session, missed.id, at=msk(MONDAY, 11))
    later = sweep(session, msk(MONDAY, 12))
    assert [(o.phone, o.reason) for o in later.opened] == [(phone, "first_visit_followup")]


def test_reminder_for_tomorrows_visit_is_due_today_inside_working_hours(session: Session) -> None:
    """Rule: an appointment reminder the day before a scheduled visit, due inside working hours
    (a sweep at 07:00 makes it due at 09:00 the same day)."""
    add_patient(session, "+79161230040", visits=[(MONDAY + timedelta(days=1), "scheduled")])
    early = msk(MONDAY, 7)
    report = sweep(session, early)
    assert [o.reason for o in report.opened] == ["reminder"]
    task = open_tasks(session)[0]
    assert task.due_at == msk(MONDAY, 9)
    assert may_call_at(task.due_at, SCHEDULE)
    assert task.due_at.astimezone(MSK).date() == MONDAY


def test_reminder_too_late_to_call_is_not_opened_and_an_open_one_expires(session: Session) -> None:
    """Rule: a reminder is relevant only before the visit day — at 21:30 the evening before there
    is no working time left, so none is opened; one still open on the visit day closes
    "expired"."""
    add_patient(session, "+79161230041", visits=[(MONDAY + timedelta(days=1), "scheduled")])
    assert sweep(session, msk(MONDAY, 21, 30)).opened == ()

    add_patient(session, "+79161230042", visits=[(MONDAY + timedelta(days=2), "scheduled")])
    opened = sweep(session, msk(MONDAY + timedelta(days=1), 10)).opened
    assert [(o.phone, o.reason) for o in opened] == [("+79161230042", "reminder")]
    report = sweep(session, msk(MONDAY + timedelta(days=2), 8))
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(opened[0].task_id, "expired")]


def test_reminder_of_a_cancelled_visit_closes(session: Session) -> None:
    """Rule: a reminder whose visit is no longer scheduled is not wanted (visit_changed)."""
    pid = add_patient(session, "+79161230043")
    visit_id = add_visit(session, pid, MONDAY + timedelta(days=1), "scheduled")
    opened = sweep(session).opened
    visit = session.get(Visit, visit_id)
    assert visit is not None
    visit.status = "cancelled"
    session.flush()
    report = sweep(session, msk(MONDAY, 11))
    assert [(c.task_id, c.close_reason) for c in report.closed] == [
        (opened[0].task_id, "visit_changed")
    ]


def test_care_and_nps_of_one_visit_never_share_a_day(session: Session) -> None:
    """Rule: do not stack the NPS call with the care call of the same visit on the same day —
    no follow-up is opened for a patient on a clinic day on which one was already opened."""
    rules = FollowupRules(nps_days=(1, 5))  # a clinic whose care and NPS windows overlap
    treated = MONDAY - timedelta(days=1)
    add_patient(
        session,
        "+79161230050",
        visits=[
            (treated - timedelta(days=400), "completed", "Консультация терапевта"),
            (treated, "completed", "Лечение кариеса"),
        ],
    )
    report = sweep(session, rules=rules)
    assert [o.reason for o in report.opened] == ["care"]
    close_task(session, report.opened[0].task_id or 0, at=msk(MONDAY, 10, 5))
    assert sweep(session, msk(MONDAY, 15), rules=rules).opened == ()
    next_day = sweep(session, msk(MONDAY + timedelta(days=1), 10), rules=rules)
    assert [o.reason for o in next_day.opened] == ["nps_followup"]


def test_no_show_rebooking_closes_when_the_patient_books(session: Session) -> None:
    """Rule: no-shows get a rebooking call; once they book again it is not needed ("booked")."""
    pid = add_patient(session, "+79161230060", visits=[(MONDAY, "no_show")])
    opened = sweep(session).opened
    assert [(o.reason, o.kind) for o in opened] == [("no_show", "service")]
    add_visit(session, pid, MONDAY + timedelta(days=3), "scheduled")
    report = sweep(session, msk(MONDAY, 16))
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(opened[0].task_id, "booked")]


def test_task_held_by_a_dialer_is_not_closed_under_it(session: Session) -> None:
    """Rule: a task a dialer holds right now (live lease) is left to the dialer; the next sweep
    closes it when it is still open and no longer wanted."""
    pid = add_patient(session, "+79161230070", visits=[(MONDAY, "no_show")])
    task_id = sweep(session).opened[0].task_id
    assert task_id is not None
    add_visit(session, pid, MONDAY + timedelta(days=3), "scheduled")
    session.add(
        TaskLease(
            task_id=task_id, claimed_by="d1", claimed_at=NOW, lease_until=NOW + timedelta(hours=1)
        )
    )
    session.flush()
    assert sweep(session, NOW + timedelta(minutes=10)).closed == ()
    assert [c.task_id for c in sweep(session, NOW + timedelta(hours=2)).closed] == [task_id]


def test_dry_run_writes_nothing(session: Session) -> None:
    """A dry run reports what it would open and writes nothing."""
    add_patient(session, "+79161230080", visits=[(MONDAY, "no_show")])
    report = sweep(session, dry_run=True)
    assert [(o.reason, o.task_id) for o in report.opened] == [("no_show", None)]
    assert report.to_json()["opened"][0]["reason"] == "no_show"
    assert open_tasks(session) == []
    assert session.scalar(select(func.count()).select_from(FollowupRecord)) == 0


def test_limit_leaves_the_rest_to_the_next_sweep(session: Session) -> None:
    """With a limit, the most urgent follow-ups open first and the rest wait for the next sweep."""
    add_patient(session, "+79161230090", visits=[(MONDAY, "no_show")])
    add_patient(session, "+79161230091", visits=[(MONDAY + timedelta(days=1), "scheduled")])
    report = sweep(session, limit=1)
    assert [o.reason for o in report.opened] == ["reminder"]
    assert report.skipped_by_why == {SKIP_LIMIT: 1}
    assert [o.reason for o in sweep(session, msk(MONDAY, 10, 10)).opened] == ["no_show"]


def test_bad_input_is_refused(session: Session) -> None:
    """A naive ``now`` or a negative limit is a clear error, not a guess."""
    with pytest.raises(ValueError, match="naive"):
        sweep_followups(session, now=datetime(2026, 11, 23, 10), schedule=SCHEDULE)
    with pytest.raises(ValueError, match="limit"):
        sweep(session, limit=-1)


def test_follow_up_task_carrying_the_patients_own_dropped_call_is_not_closed(
    session: Session, make_call: Any
) -> None:
    """Rule: one open task per number — a dropped call from the patient is recorded on the open
    follow-up task, which is then a callback the patient is waiting for: the sweep never
    closes it as booked or expired."""
    pid = add_patient(session, "+79161230100", visits=[(MONDAY, "no_show")])
    task_id = sweep(session).opened[0].task_id
    dropped = make_call(caller="89161230100", start_ts=msk(MONDAY, 11).timestamp())
    persist_call(session, call=dropped)
    task = session.get(Task, task_id)
    assert task is not None and task.dropped_calls == 1
    add_visit(session, pid, MONDAY + timedelta(days=3), "scheduled")
    assert sweep(session, msk(MONDAY, 12)).closed == ()
    assert sweep(session, msk(MONDAY + timedelta(days=10), 12)).closed == ()
    assert [t.id for t in open_tasks(session)] == [task_id]


def test_sleeping_patient_with_a_missed_visit_keeps_the_care_call(session: Session) -> None:
    """Rule: «спящие» are those whose last completed visit was 6–12 months ago with nothing
    booked ahead; a missed visit since then does not wake them, so their «Забота» call stays
    open (and is closed "booked" once they book ahead)."""
    pid = add_patient(
        session,
        "+79161230110",
        visits=[
            (MONDAY - timedelta(days=240), "completed"),
            (MONDAY - timedelta(days=60), "no_show"),
        ],
        marketing=True,
    )
    opened = sweep(session).opened
    assert [o.reason for o in opened] == ["sleeping"]
    assert sweep(session, msk(MONDAY, 11)).closed == ()
    add_visit(session, pid, MONDAY + timedelta(days=20), "scheduled")
    report = sweep(session, msk(MONDAY, 12))
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(opened[0].task_id, "booked")]


def test_a_reminder_is_not_held_back_by_another_follow_up_the_same_day(session: Session) -> None:
    """Rule: one follow-up call a day per patient, except the appointment reminder, which can
    only be made the day before the visit."""
    treated = MONDAY - timedelta(days=1)
    pid = add_patient(
        session,
        "+79161230120",
        visits=[
            (treated - timedelta(days=300), "completed", "Консультация терапевта"),
            (treated, "completed", "Лечение кариеса"),
        ],
    )
    care = sweep(session).opened
    assert [o.reason for o in care] == ["care"]
    close_task(session, care[0].task_id or 0, at=msk(MONDAY, 10, 30))
    add_visit(session, pid, MONDAY + timedelta(days=1), "scheduled")  # booked earlier
    assert [o.reason for o in sweep(session, msk(MONDAY, 11)).opened] == ["reminder"]


def test_a_kind_changed_by_supervisors_decides_the_consent_needed(session: Session) -> None:
    """Rule: supervisors can change the kind per reason — a «Забота» call made a service call
    needs only the personal-data consent, and the task carries the changed kind."""
    kinds = {**DEFAULT_KINDS, "sleeping": TaskKind.SERVICE}
    schedule = ClinicSchedule(kinds=kinds)
    add_patient(session, "+79161230130", visits=[(MONDAY - timedelta(days=240), "completed")])
    assert sweep(session).opened == ()  # marketing by default: no marketing consent on file
    report = sweep_followups(session, now=msk(MONDAY, 11), schedule=schedule)
    assert [(o.reason, o.kind) for o in report.opened] == [("sleeping", "service")]
    assert [t.kind for t in open_tasks(session)] == ["service"]


def test_a_reminder_replaces_a_waiting_follow_up_of_ours(session: Session) -> None:
    """Rule: a reminder cannot wait — when the number's only open task is another follow-up of
    ours (no dialer holding it, no dropped call on it), that one is closed "superseded" and may
    be opened again on a later day of its window; a dropped caller's task is never replaced."""
    friday = MONDAY - timedelta(days=3)
    pid = add_patient(
        session,
        "+79161230140",
        visits=[(friday - timedelta(days=300), "completed"), (friday, "completed")],
    )
    nps = sweep(session).opened
    assert [o.reason for o in nps] == ["nps_followup"]
    add_visit(session, pid, MONDAY + timedelta(days=1), "scheduled")
    report = sweep(session, msk(MONDAY, 11))
    assert [o.reason for o in report.opened] == ["reminder"]
    assert [(c.task_id, c.close_reason) for c in report.closed] == [(nps[0].task_id, "superseded")]
    # The visit day: the reminder has expired, the NPS call (day 4 of 3–5) is made after all.
    tuesday = sweep(session, msk(MONDAY + timedelta(days=1), 10))
    assert [c.close_reason for c in tuesday.closed] == ["expired"]
    assert [o.reason for o in tuesday.opened] == ["nps_followup"]


def test_a_reminder_does_not_replace_a_dropped_callers_task(session: Session) -> None:
    """Rule: dropped calls before follow-ups — a number with an open missed-call task gets no
    reminder now, the callback is not replaced."""
    phone = "+79161230150"
    add_patient(session, phone, visits=[(MONDAY + timedelta(days=1), "scheduled")])
    missed = Task(
        phone=phone,
        reason="missed_call",
        kind="service",
        status="open",
        opened_at=NOW - timedelta(hours=1),
        due_at=NOW - timedelta(hours=1),
    )
    session.add(missed)
    session.flush()
    report = sweep(session)
    assert report.opened == () and report.closed == ()
    assert report.skipped_by_why == {SKIP_OPEN_TASK: 1}
