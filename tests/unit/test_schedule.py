"""Callback-queue rules (callcenter.tasks.schedule): each test quotes the rule it checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import (
    AttemptOutcome,
    ClinicSchedule,
    CloseAfterAttempt,
    CloseReasonDialer,
    Reschedule,
    decide_after_attempt,
    first_due_at,
    kind_for_reason,
    may_call_at,
    next_call_slot,
    priority_key,
    schedule_from_json,
    schedule_to_json,
)

MSK = ZoneInfo("Europe/Moscow")
SCHEDULE = ClinicSchedule()  # Mon–Fri 09–21, Sat 10–18, Sun closed, Europe/Moscow


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)  # type: ignore[misc]


# 2026-11-23 is a Monday.
MONDAY = (2026, 11, 23)


def test_missed_call_in_working_hours_is_due_at_once():
    """Rule: a missed or abandoned call is called back as soon as possible inside working hours."""
    dropped = msk(*MONDAY, 11, 30)
    due = first_due_at(dropped_at=dropped, schedule=SCHEDULE)
    assert due == dropped.astimezone(UTC)
    assert due.tzinfo is UTC


def test_missed_call_at_night_is_due_at_opening_stored_in_utc():
    """Rule: no call outside working hours; due times computed in the clinic's zone, in UTC."""
    due = first_due_at(dropped_at=msk(*MONDAY, 23, 10), schedule=SCHEDULE)
    assert due == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 09:00 Moscow (UTC+3)
    assert due.tzinfo is UTC


def test_saturday_evening_drop_waits_for_monday():
    """Rule: working hours per weekday (Sunday closed)."""
    due = first_due_at(dropped_at=msk(2026, 11, 28, 18, 30), schedule=SCHEDULE)
    assert due.astimezone(MSK) == msk(2026, 11, 30, 9, 0)


def test_holiday_has_no_calls():
    """Rule: holidays have no working hours."""
    schedule = ClinicSchedule(holidays=frozenset({date(2026, 11, 24)}))
    due = first_due_at(dropped_at=msk(*MONDAY, 22, 0), schedule=schedule)
    assert due.astimezone(MSK) == msk(2026, 11, 25, 9, 0)


def test_call_that_cannot_complete_is_not_started_at_205959():
    """Rule: clock at 20:59:59 with hours to 21:00 → a call that cannot complete is not started
    (minimum slot: 60 s before closing)."""
    at = msk(*MONDAY, 20, 59, 59)
    assert not may_call_at(at, SCHEDULE)
    assert next_call_slot(at, SCHEDULE).astimezone(MSK) == msk(2026, 11, 24, 9, 0)
    # Exactly the minimum slot before closing still fits.
    assert may_call_at(msk(*MONDAY, 20, 59), SCHEDULE)


def test_naive_datetimes_are_refused():
    """Rule: times are always zone-aware (stored in UTC)."""
    with pytest.raises(ValueError, match="naive"):
        next_call_slot(datetime(2026, 11, 23, 12, 0), SCHEDULE)


@pytest.mark.parametrize(
    ("attempts_before", "finished", "expected_due"),
    [
        (0, msk(*MONDAY, 12, 0), msk(*MONDAY, 12, 15)),  # first gap: 15 min
        (1, msk(*MONDAY, 12, 15), msk(*MONDAY, 13, 15)),  # second gap: 1 h
    ],
)
def test_failed_attempt_is_retried_after_the_gaps(attempts_before, finished, expected_due):
    """Rule: retry after configurable gaps (default 15 min, 1 h, next working morning)."""
    decision = decide_after_attempt(
        outcome=AttemptOutcome.NO_ANSWER,
        attempts_before=attempts_before,
        finished_at=finished,
        schedule=SCHEDULE,
    )
    assert decision == Reschedule(due_at=expected_due.astimezone(UTC), attempts=attempts_before + 1)


def test_third_gap_is_next_working_morning():
    """Rule: the third gap is the next working morning (with max_attempts raised to reach it)."""
    schedule = ClinicSchedule(max_attempts=5)
    decision = decide_after_attempt(
        outcome=AttemptOutcome.BUSY,
        attempts_before=2,
        finished_at=msk(*MONDAY, 10, 0),
        schedule=schedule,
    )
    assert decision == Reschedule(due_at=msk(2026, 11, 24, 9, 0).astimezone(UTC), attempts=3)


def test_gap_ending_after_hours_moves_to_opening():
    """Rule: no call outside working hours, retries included."""
    decision = decide_after_attempt(
        outcome=AttemptOutcome.NO_ANSWER,
        attempts_before=1,
        finished_at=msk(*MONDAY, 20, 30),
        schedule=SCHEDULE,
    )
    assert isinstance(decision, Reschedule)
    assert decision.due_at.astimezone(MSK) == msk(2026, 11, 24, 9, 0)


def test_stop_after_max_attempts_closes_unreachable():
    """Rule: stop after a configurable number of attempts (default 3): close as unreachable."""
    decision = decide_after_attempt(
        outcome=AttemptOutcome.NO_ANSWER,
        attempts_before=2,
        finished_at=msk(*MONDAY, 13, 0),
        schedule=SCHEDULE,
    )
    assert decision == CloseAfterAttempt(close_reason=CloseReasonDialer.UNREACHABLE, attempts=3)
    one = ClinicSchedule(max_attempts=1)
    assert decide_after_attempt(
        outcome=AttemptOutcome.BUSY, attempts_before=0, finished_at=msk(*MONDAY, 13), schedule=one
    ) == CloseAfterAttempt(close_reason=CloseReasonDialer.UNREACHABLE, attempts=1)


def test_answered_attempt_closes_reached():
    """Rule: an answered callback closes the task (reached)."""
    decision = decide_after_attempt(
        outcome=AttemptOutcome.ANSWERED,
        attempts_before=0,
        finished_at=msk(*MONDAY, 13, 0),
        schedule=SCHEDULE,
    )
    assert decision == CloseAfterAttempt(close_reason=CloseReasonDialer.REACHED, attempts=1)


@pytest.mark.parametrize(
    "outcome",
    [AttemptOutcome.OPERATOR_NO_ANSWER, AttemptOutcome.REJECTED, AttemptOutcome.NOT_SENT],
)
def test_patient_never_rang_uses_no_attempt(outcome):
    """Rule: an attempt that never rang the patient uses up no attempt; retried a minute later."""
    decision = decide_after_attempt(
        outcome=outcome, attempts_before=2, finished_at=msk(*MONDAY, 13, 0), schedule=SCHEDULE
    )
    assert decision == Reschedule(due_at=msk(*MONDAY, 13, 1).astimezone(UTC), attempts=2)


def test_unknown_outcome_uses_an_attempt():
    """Rule: a sent call whose outcome never came may have rung: it counts (never ring more)."""
    decision = decide_after_attempt(
        outcome=AttemptOutcome.UNKNOWN,
        attempts_before=2,
        finished_at=msk(*MONDAY, 13, 0),
        schedule=SCHEDULE,
    )
    assert isinstance(decision, CloseAfterAttempt)


def test_dropped_calls_before_follow_ups_older_first():
    """Rule: dropped calls before follow-ups; older before newer."""
    t0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
    tasks = [
        ("sleeping", t0),
        ("missed_call", t0 + timedelta(hours=1)),
        ("abandoned_call", t0 + timedelta(minutes=5)),
        ("no_show", t0 - timedelta(days=1)),
    ]
    ordered = sorted(tasks, key=lambda t: priority_key(reason=t[0], opened_at=t[1]))
    assert [r for r, _ in ordered] == ["abandoned_call", "missed_call", "no_show", "sleeping"]


def test_service_follow_ups_before_marketing_calls_however_old():
    """Rule: dropped calls first; then service follow-ups (tomorrow's reminder must not wait
    behind a backlog of «Забота» invitations), then marketing calls; older first in each."""
    t0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
    tasks = [
        ("sleeping", TaskKind.MARKETING, t0 - timedelta(days=30)),
        ("reminder", TaskKind.SERVICE, t0),
        ("missed_call", TaskKind.SERVICE, t0 + timedelta(hours=2)),
        ("nps_followup", TaskKind.SERVICE, t0 - timedelta(days=1)),
        ("objection_followup", TaskKind.MARKETING, t0 - timedelta(days=2)),
    ]
    ordered = sorted(tasks, key=lambda t: priority_key(reason=t[0], kind=t[1], opened_at=t[2]))
    assert [r for r, _, _ in ordered] == [
        "missed_call",
        "nps_followup",
        "reminder",
        "sleeping",
        "objection_followup",
    ]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("missed_call", TaskKind.SERVICE),
        ("abandoned_call", TaskKind.SERVICE),
        ("reminder", TaskKind.SERVICE),
        ("care", TaskKind.SERVICE),
        ("nps_followup", TaskKind.SERVICE),
        ("no_show", TaskKind.SERVICE),
        ("sleeping", TaskKind.MARKETING),
        ("objection_followup", TaskKind.MARKETING),
        ("something_new", TaskKind.MARKETING),
    ],
)
def test_kind_per_reason(reason, kind):
    """Rule: dropped callers, reminders, care, NPS, no-show rebooking = service; sleeping-patient
    invitations and anything offering a discount = marketing (unknown: the stricter one)."""
    assert kind_for_reason(reason, SCHEDULE) is kind


def test_schedule_round_trips_through_json():
    """Clinic settings are stored as JSON: what is saved is what is loaded."""
    schedule = ClinicSchedule(
        tz="Asia/Yekaterinburg",
        hours=((time(8), time(20)),) * 5 + (None, None),
        holidays=frozenset({date(2027, 1, 1), date(2027, 1, 2)}),
        retry_gaps_s=(600.0, None),
        max_attempts=4,
        kinds={"missed_call": TaskKind.SERVICE, "sleeping": TaskKind.MARKETING},
    )
    assert schedule_from_json(schedule_to_json(schedule)) == schedule
    assert schedule_from_json("{}") == ClinicSchedule()


@pytest.mark.parametrize(
    "text",
    ['{"tz": "Mars/Olympus"}', '{"hours": [["09:00", "08:00"]]}', "[]", "{", '{"max_attempts": 0}'],
)
def test_bad_schedule_json_is_refused(text):
    """Bad clinic settings are refused with a ValueError, never half-applied."""
    with pytest.raises(ValueError):
        schedule_from_json(text)
