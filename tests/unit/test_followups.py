"""Follow-up rules (callcenter.tasks.followups): each test quotes the rule it checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.patients.segments import SleepingWindow, VisitView, is_sleeping
from callcenter.tasks.followups import (
    URGENCY,
    FollowupCloseReason,
    FollowupKey,
    FollowupReason,
    FollowupRules,
    PatientFacts,
    VisitFacts,
    close_reason_for,
    due_followups,
    first_visit_window,
    is_treatment,
    remaining_steps,
    window_for,
)
from callcenter.tasks.schedule import ClinicSchedule, kind_for_reason, may_call_at

MSK = ZoneInfo("Europe/Moscow")
SCHEDULE = ClinicSchedule()  # Mon–Fri 09–21, Sat 10–18, Sun closed, Europe/Moscow
RULES = FollowupRules()
MONDAY = date(2026, 11, 23)
FR = FollowupReason


def at(day: date, hour: int = 11, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=MSK).astimezone(UTC)


def visit(
    visit_id: int,
    day: date,
    status: str,
    service: str | None = "Консультация терапевта",
    booked_at: datetime | None = None,
) -> VisitFacts:
    return VisitFacts(
        visit_id=visit_id, visit_date=day, status=status, service=service, booked_at=booked_at
    )


def patient(*visits: VisitFacts, earlier_completed: int = 0) -> PatientFacts:
    return PatientFacts(patient_id=1, visits=visits, earlier_completed=earlier_completed)


def due(
    facts: PatientFacts,
    now: datetime,
    *,
    rules: FollowupRules = RULES,
    done: Sequence[FollowupKey] = (),
) -> list[tuple[str, int, int]]:
    return [
        (str(f.reason), f.key.anchor_visit_id, f.key.step)
        for f in due_followups(facts, now=now, schedule=SCHEDULE, rules=rules, done=done)
    ]


# -- first-visit follow-up ----------------------------------------------------------------


def test_first_visit_patient_is_called_3_7_and_14_days_after_the_visit() -> None:
    """Rule: a patient who came once (exactly one completed visit) and has not booked is called
    3, 7 and 14 days after the visit."""
    first = date(2026, 11, 2)  # a Monday, so days 3, 7, 14 are working days
    facts = patient(visit(7, first, "completed"))
    steps = {}
    for offset in range(0, 25):
        found = [
            s for r, _, s in due(facts, at(first + timedelta(days=offset))) if r == FR.FIRST_VISIT
        ]
        if found:
            steps[offset] = found
    # Each step is due from its day until the day before the next one (the last one a week).
    assert {d: s for d, s in steps.items() if d in (3, 7, 14)} == {3: [1], 7: [2], 14: [3]}
    assert min(steps) == 3
    assert all(s == [1] for d, s in steps.items() if 3 <= d < 7)
    assert all(s == [3] for d, s in steps.items() if 14 <= d <= 21)
    assert max(steps) == 21


def test_first_visit_step_windows() -> None:
    """Rule: each step stays relevant until the next step's day; the last one for
    last_step_grace_days."""
    anchor = date(2026, 11, 2)
    assert first_visit_window(2, anchor, RULES) == (date(2026, 11, 9), date(2026, 11, 15))
    with pytest.raises(ValueError, match="step"):
        first_visit_window(4, anchor, RULES)


def test_a_patient_who_came_twice_gets_no_first_visit_series() -> None:
    """Rule: the first-visit follow-up is for a patient who came once — exactly one completed
    visit, counting those before the recent slice the store loads."""
    day3 = MONDAY
    first = day3 - timedelta(days=3)
    twice = patient(visit(1, first - timedelta(days=30), "completed"), visit(2, first, "completed"))
    assert FR.FIRST_VISIT not in {r for r, _, _ in due(twice, at(day3))}
    old_history = patient(visit(2, first, "completed"), earlier_completed=1)
    assert FR.FIRST_VISIT not in {r for r, _, _ in due(old_history, at(day3))}


def test_first_visit_series_stops_when_a_booking_appears() -> None:
    """Rule: the series stops as soon as a booking appears (a scheduled visit after it); an
    open step closes "booked" and the later steps are never due."""
    first = MONDAY - timedelta(days=3)
    booked = patient(
        visit(1, first, "completed"), visit(2, MONDAY + timedelta(days=9), "scheduled")
    )
    assert FR.FIRST_VISIT not in {r for r, _, _ in due(booked, at(MONDAY))}
    key = FollowupKey(FR.FIRST_VISIT, 1, 1)
    reason = close_reason_for(key, booked, anchor_date=first, today=MONDAY, schedule=SCHEDULE)
    assert reason is FollowupCloseReason.BOOKED
    assert remaining_steps(key) == [2, 3]


def test_a_cancelled_booking_is_not_a_booking() -> None:
    """Rule: only a scheduled, completed or missed visit shows the patient booked; a cancelled
    one does not stop the series."""
    first = MONDAY - timedelta(days=3)
    facts = patient(visit(1, first, "completed"), visit(2, MONDAY + timedelta(days=2), "cancelled"))
    assert (FR.FIRST_VISIT.value, 1, 1) in due(facts, at(MONDAY))


# -- reminder -----------------------------------------------------------------------------


def test_reminder_the_day_before_a_scheduled_visit() -> None:
    """Rule: an appointment reminder the day before a scheduled visit, inside working hours."""
    tuesday = MONDAY + timedelta(days=1)
    facts = patient(visit(5, tuesday, "scheduled"))
    assert due(facts, at(MONDAY - timedelta(days=1))) == []  # Sunday: too early (and closed)
    assert due(facts, at(MONDAY, 7)) == [("reminder", 5, 0)]
    found = due_followups(facts, now=at(MONDAY, 7), schedule=SCHEDULE)[0]
    assert found.due_at == at(MONDAY, 9)  # moved into working hours, the same day
    assert may_call_at(found.due_at, SCHEDULE)
    assert due(facts, at(MONDAY, 21, 30)) == []  # no working time left before the visit
    assert due(facts, at(tuesday, 8)) == []  # the visit day: too late


def test_reminder_moves_to_saturday_when_the_clinic_is_closed_on_sunday() -> None:
    """Rule: when the clinic is closed the day before, the reminder moves back to the latest
    working day before the visit (a Monday visit is reminded on Saturday)."""
    saturday = MONDAY - timedelta(days=2)
    key = FollowupKey(FR.REMINDER, 5)
    assert window_for(key, MONDAY, RULES, SCHEDULE) == (saturday, MONDAY - timedelta(days=1))
    facts = patient(visit(5, MONDAY, "scheduled"))
    assert due(facts, at(saturday, 12)) == [("reminder", 5, 0)]


def test_no_reminder_for_a_visit_booked_on_the_reminder_day() -> None:
    """Rule: a visit booked on the reminder's day or later needs no reminder (the patient just
    booked)."""
    tuesday = MONDAY + timedelta(days=1)
    just_booked = patient(visit(5, tuesday, "scheduled", booked_at=at(MONDAY, 10)))
    assert due(just_booked, at(MONDAY, 12)) == []
    booked_earlier = patient(
        visit(5, tuesday, "scheduled", booked_at=at(MONDAY - timedelta(days=5)))
    )
    assert due(booked_earlier, at(MONDAY, 12)) == [("reminder", 5, 0)]


def test_reminder_of_a_cancelled_or_past_visit_is_not_wanted() -> None:
    """Rule: an open reminder closes "visit_changed" when its visit is no longer scheduled and
    "expired" once the visit day has come."""
    key = FollowupKey(FR.REMINDER, 5)
    tuesday = MONDAY + timedelta(days=1)
    cancelled = patient(visit(5, tuesday, "cancelled"))
    assert (
        close_reason_for(key, cancelled, anchor_date=tuesday, today=MONDAY, schedule=SCHEDULE)
        is FollowupCloseReason.VISIT_CHANGED
    )
    kept = patient(visit(5, tuesday, "scheduled"))
    assert close_reason_for(key, kept, anchor_date=tuesday, today=MONDAY, schedule=SCHEDULE) is None
    assert (
        close_reason_for(key, kept, anchor_date=tuesday, today=tuesday, schedule=SCHEDULE)
        is FollowupCloseReason.EXPIRED
    )


# -- care and NPS -------------------------------------------------------------------------


def test_care_call_the_day_after_a_treatment_visit() -> None:
    """Rule: care call the day after a completed treatment visit (not after a consultation)."""
    treated = MONDAY - timedelta(days=1)
    returning = visit(1, treated - timedelta(days=100), "completed")
    facts = patient(returning, visit(2, treated, "completed", "Лечение кариеса"))
    assert ("care", 2, 0) in due(facts, at(MONDAY))
    consult = patient(returning, visit(2, treated, "completed", "Консультация терапевта"))
    assert "care" not in {r for r, _, _ in due(consult, at(MONDAY))}
    # Still worth making the day after; not three days later.
    assert ("care", 2, 0) in due(facts, at(MONDAY + timedelta(days=1)))
    assert "care" not in {r for r, _, _ in due(facts, at(MONDAY + timedelta(days=2)))}


def test_is_treatment() -> None:
    """Rule: a treatment is a service that is not a consultation, examination or diagnostic."""
    assert is_treatment("Имплантация") and is_treatment("Массаж спины")
    assert not is_treatment("УЗИ брюшной полости") and not is_treatment("ЭКГ")
    assert not is_treatment("  ")


def test_nps_call_3_to_5_days_after_the_latest_visit() -> None:
    """Rule: NPS / «как вы себя чувствуете» call 3–5 days after a completed visit."""
    last = date(2026, 11, 16)  # a Monday
    facts = patient(visit(1, last - timedelta(days=200), "completed"), visit(2, last, "completed"))
    days = [
        d
        for d in range(0, 10)
        if ("nps_followup", 2, 0) in due(facts, at(last + timedelta(days=d)))
    ]
    assert days == [3, 4, 5]


def test_nps_is_not_stacked_on_a_running_first_visit_series() -> None:
    """Rule (choice): a first-visit patient gets no NPS call for that visit while the series
    runs — the day-3 follow-up asks how the patient feels; after a booking stops the series, the
    NPS call is made."""
    first = MONDAY - timedelta(days=3)
    alone = patient(visit(1, first, "completed"))
    assert due(alone, at(MONDAY)) == [("first_visit_followup", 1, 1)]
    booked = patient(
        visit(1, first, "completed"), visit(2, MONDAY + timedelta(days=5), "scheduled")
    )
    assert ("nps_followup", 1, 0) in due(booked, at(MONDAY))


def test_care_windows_do_not_overlap_nps_by_default() -> None:
    """Rule: do not stack the NPS call with the care call of the same visit on the same day — by
    default the care window (days 1–2) ends before the NPS window (days 3–5) begins."""
    key_care, key_nps = FollowupKey(FR.CARE, 1), FollowupKey(FR.NPS, 1)
    care = window_for(key_care, MONDAY, RULES, SCHEDULE)
    nps = window_for(key_nps, MONDAY, RULES, SCHEDULE)
    assert care[1] < nps[0]


# -- sleeping and no-shows ----------------------------------------------------------------


def test_sleeping_patients_get_one_care_call_per_sleeping_period() -> None:
    """Rule: «спящие» (last completed visit 6–12 months ago, nothing booked ahead) get a «Забота»
    call — marketing — at most once per sleeping period (named by its last visit)."""
    last = MONDAY - timedelta(days=240)
    facts = patient(visit(9, last, "completed"))
    assert due(facts, at(MONDAY)) == [("sleeping", 9, 0)]
    assert kind_for_reason("sleeping", SCHEDULE) == "marketing"
    assert due(facts, at(MONDAY), done=[FollowupKey(FR.SLEEPING, 9)]) == []
    ahead = patient(
        visit(9, last, "completed"), visit(10, MONDAY + timedelta(days=30), "scheduled")
    )
    assert "sleeping" not in {r for r, _, _ in due(ahead, at(MONDAY))}  # coming back already
    recent = patient(visit(9, MONDAY - timedelta(days=100), "completed"))
    assert "sleeping" not in {r for r, _, _ in due(recent, at(MONDAY))}


def test_sleeping_window_agrees_with_the_segments_module() -> None:
    """Rule: the sleeping window comes from the segments module: the follow-up's window is
    exactly the days on which segments.is_sleeping says so."""
    window = SleepingWindow(min_months=6, max_months=12)
    rules = FollowupRules(sleeping_window=window)
    for anchor in (date(2026, 2, 28), date(2025, 8, 31), date(2026, 1, 15)):
        key = FollowupKey(FR.SLEEPING, 1)
        start, until = window_for(key, anchor, rules, SCHEDULE)
        views = [VisitView(visit_date=anchor, status="completed")]
        for offset in range(150, 420):
            today = anchor + timedelta(days=offset)
            assert (start <= today <= until) == is_sleeping(views, today=today, window=window), (
                today
            )


def test_no_show_gets_a_rebooking_call_until_rebooked() -> None:
    """Rule: no-shows get a rebooking call (service); once the patient books again it is not
    wanted ("booked")."""
    missed = patient(visit(3, MONDAY, "no_show"))
    assert due(missed, at(MONDAY, 15)) == [("no_show", 3, 0)]
    assert kind_for_reason("no_show", SCHEDULE) == "service"
    rebooked = patient(
        visit(3, MONDAY, "no_show"), visit(4, MONDAY + timedelta(days=4), "scheduled")
    )
    assert "no_show" not in {r for r, _, _ in due(rebooked, at(MONDAY, 15))}
    key = FollowupKey(FR.NO_SHOW, 3)
    assert (
        close_reason_for(key, rebooked, anchor_date=MONDAY, today=MONDAY, schedule=SCHEDULE)
        is FollowupCloseReason.BOOKED
    )
    late = MONDAY + timedelta(days=RULES.no_show_until_days + 1)
    assert due(missed, at(late)) == []


# -- order, kinds, records, bad input -----------------------------------------------------


def test_most_urgent_follow_up_first() -> None:
    """Rule: when several follow-ups of one patient are due, the most urgent comes first:
    reminder, no-show, care, first-visit, NPS, sleeping."""
    assert URGENCY[0] is FR.REMINDER and URGENCY[-1] is FR.SLEEPING
    treated = visit(2, MONDAY - timedelta(days=2), "completed", "Лечение кариеса")
    history = visit(1, MONDAY - timedelta(days=200), "completed")
    missed = visit(3, MONDAY - timedelta(days=1), "no_show")
    assert [r for r, _, _ in due(patient(history, treated, missed), at(MONDAY))] == [
        "no_show",
        "care",
    ]
    tomorrow = visit(4, MONDAY + timedelta(days=1), "scheduled")
    assert [r for r, _, _ in due(patient(history, treated, tomorrow), at(MONDAY))] == [
        "reminder",
        "care",
    ]


def test_every_follow_up_reason_has_its_issue_kind() -> None:
    """Rule: reminders, care and NPS calls, no-show rebooking and the first-visit follow-up are
    service; sleeping-patient invitations are marketing."""
    kinds = {reason.value: kind_for_reason(reason.value, SCHEDULE).value for reason in FR}
    assert kinds == {
        "first_visit_followup": "service",
        "reminder": "service",
        "care": "service",
        "nps_followup": "service",
        "sleeping": "marketing",
        "no_show": "service",
    }


def test_a_follow_up_already_done_is_never_due_again() -> None:
    """Rule: each follow-up is opened at most once (the records passed as ``done``)."""
    facts = patient(visit(3, MONDAY, "no_show"))
    assert due(facts, at(MONDAY), done=[FollowupKey(FR.NO_SHOW, 3)]) == []


def test_due_time_is_inside_working_hours_and_in_utc() -> None:
    """Rule: times in the clinic's zone, stored in UTC, due times moved into working hours."""
    saturday_evening = at(MONDAY - timedelta(days=2), 19)
    facts = patient(visit(3, MONDAY - timedelta(days=2), "no_show"))
    found = due_followups(facts, now=saturday_evening, schedule=SCHEDULE)
    assert found[0].due_at == at(MONDAY, 9)
    assert found[0].due_at.tzinfo == UTC


def test_bad_input_is_refused() -> None:
    """Bad input is a clear error: naive times, impossible rule settings."""
    facts = patient(visit(3, MONDAY, "no_show"))
    with pytest.raises(ValueError, match="naive"):
        due_followups(facts, now=datetime(2026, 11, 23, 10), schedule=SCHEDULE)
    with pytest.raises(ValueError, match="first_visit_days"):
        FollowupRules(first_visit_days=(7, 3))
    with pytest.raises(ValueError, match="nps_days"):
        FollowupRules(nps_days=(5, 3))
    with pytest.raises(ValueError, match="care days"):
        FollowupRules(care_after_days=3, care_until_days=1)
    with pytest.raises(ValueError, match="sleeping window"):
        FollowupRules(sleeping_window=SleepingWindow(min_months=12, max_months=6))


def test_a_follow_up_the_rules_open_is_never_closed_by_them_at_once() -> None:
    """Rule: the sweep closes an open follow-up only when it is no longer wanted — so whatever
    the rules open, on the same facts and day, they do not close (checked over 3,000 demo
    patients on several days)."""
    from callcenter.patients.demo_data import generate_demo_patients

    seed_now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    demo = generate_demo_patients(now=seed_now, count=3000)
    checked = 0
    for number, person in enumerate(demo):
        facts = PatientFacts(
            patient_id=number,
            visits=tuple(
                visit(i, v.visit_date, v.status, v.service, v.booked_at)
                for i, v in enumerate(person.visits)
            ),
        )
        for offset in (0, 1, 3, 10):
            now = seed_now + timedelta(days=offset)
            today = now.astimezone(MSK).date()
            for f in due_followups(facts, now=now, schedule=SCHEDULE):
                reason = close_reason_for(
                    f.key, facts, anchor_date=f.anchor_date, today=today, schedule=SCHEDULE
                )
                assert reason is None, (person.visits, f)
                checked += 1
    assert checked > 500  # every reason shows up in a sample this size


def test_two_visits_on_one_day_get_one_reminder() -> None:
    """Rule: an appointment reminder the day before a scheduled visit — one call reminds the
    patient of every visit booked for that day."""
    tuesday = MONDAY + timedelta(days=1)
    facts = patient(visit(5, tuesday, "scheduled"), visit(6, tuesday, "scheduled"))
    assert due(facts, at(MONDAY)) == [("reminder", 5, 0), ("reminder", 6, 0)]
    assert due(facts, at(MONDAY), done=[FollowupKey(FR.REMINDER, 5)]) == []
    cancelled = patient(visit(5, tuesday, "cancelled"), visit(6, tuesday, "scheduled"))
    assert due(cancelled, at(MONDAY), done=[FollowupKey(FR.REMINDER, 5)]) == [("reminder", 6, 0)]
