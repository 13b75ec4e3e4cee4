"""Segments: sleeping («спящие»), dropped («сорвавшиеся»), dms («ДМС»)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from callcenter.patients.segments import (
    CallView,
    Segment,
    SleepingWindow,
    VisitView,
    is_dms,
    is_dropped,
    is_sleeping,
    segments_for,
)

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def visit(day: date, status: str = "completed", booked_at: datetime | None = None) -> VisitView:
    return VisitView(visit_date=day, status=status, booked_at=booked_at)


def call(at: datetime, disposition: str, direction: str = "inbound") -> CallView:
    return CallView(
        linkedid=str(at.timestamp()), direction=direction, disposition=disposition, started_at=at
    )


# --- sleeping ------------------------------------------------------------------------------


def test_last_visit_eight_months_ago_is_sleeping() -> None:
    """Rule: sleeping = last completed visit 6–12 months ago."""
    assert is_sleeping([visit(date(2026, 3, 10))], today=TODAY)


def test_window_edges_are_inclusive() -> None:
    """Exactly 6 and exactly 12 months ago are both inside the window."""
    assert is_sleeping([visit(date(2026, 5, 23))], today=TODAY)
    assert is_sleeping([visit(date(2025, 11, 23))], today=TODAY)


def test_recent_or_very_old_visit_is_not_sleeping() -> None:
    """Rule: fewer than 6 or more than 12 months ago is outside the window."""
    assert not is_sleeping([visit(date(2026, 5, 24))], today=TODAY)
    assert not is_sleeping([visit(date(2025, 11, 22))], today=TODAY)


def test_only_the_last_completed_visit_counts() -> None:
    """An old visit in the window does not make a patient seen last month sleeping."""
    visits = [visit(date(2026, 3, 10)), visit(date(2026, 10, 30))]
    assert not is_sleeping(visits, today=TODAY)


def test_no_shows_and_cancellations_are_not_visits_for_sleeping() -> None:
    """Rule: the last *completed* visit; a later no-show does not wake the patient."""
    visits = [visit(date(2026, 3, 10)), visit(date(2026, 10, 30), "no_show")]
    assert is_sleeping(visits, today=TODAY)


def test_patient_with_a_booking_ahead_is_not_sleeping() -> None:
    """A patient already booked to come is coming back, not sleeping."""
    visits = [visit(date(2026, 3, 10)), visit(date(2026, 12, 1), "scheduled")]
    assert not is_sleeping(visits, today=TODAY)


def test_sleeping_window_is_configurable() -> None:
    """Rule: the window is configurable (here 3–6 months)."""
    window = SleepingWindow(min_months=3, max_months=6)
    assert is_sleeping([visit(date(2026, 7, 1))], today=TODAY, window=window)
    assert not is_sleeping([visit(date(2026, 3, 10))], today=TODAY, window=window)


def test_patient_who_never_came_is_not_sleeping() -> None:
    assert not is_sleeping([], today=TODAY)


# --- dropped -------------------------------------------------------------------------------


def test_no_show_is_dropped() -> None:
    """Rule: dropped = a no-show not yet won back."""
    assert is_dropped([visit(date(2026, 11, 20), "no_show")], [])


def test_cancellation_is_dropped() -> None:
    """Rule: dropped = a cancellation not yet won back."""
    assert is_dropped([visit(date(2026, 11, 25), "cancelled")], [])


def test_no_show_won_back_by_a_later_visit() -> None:
    """Rule: won back = a later booking/visit."""
    visits = [visit(date(2026, 11, 20), "no_show"), visit(date(2026, 11, 27), "scheduled")]
    assert not is_dropped(visits, [])


def test_no_show_won_back_by_a_later_answered_call() -> None:
    """Rule: won back = a later answered call (here the administrator reached the patient)."""
    visits = [visit(date(2026, 11, 20), "no_show")]
    reached = call(datetime(2026, 11, 20, 15, tzinfo=UTC), "outbound_answered", "outbound")
    assert not is_dropped(visits, [reached])


def test_answered_call_before_the_no_show_does_not_win_it_back() -> None:
    visits = [visit(date(2026, 11, 20), "no_show")]
    earlier = call(datetime(2026, 11, 19, 15, tzinfo=UTC), "answered")
    assert is_dropped(visits, [earlier])


def test_missed_call_is_dropped() -> None:
    """Rule: dropped = a missed / abandoned call not yet won back."""
    for disposition in ("queue_timeout", "no_answer", "busy", "abandoned", "ivr_abandoned"):
        assert is_dropped([], [call(NOW, disposition)]), disposition


def test_missed_call_won_back_by_a_later_answered_call() -> None:
    """Rule: won back = a later answered call."""
    calls = [call(NOW, "abandoned"), call(NOW + timedelta(minutes=5), "answered")]
    assert not is_dropped([], calls)


def test_answered_call_before_the_missed_one_does_not_win_it_back() -> None:
    calls = [call(NOW - timedelta(minutes=5), "answered"), call(NOW, "abandoned")]
    assert is_dropped([], calls)


def test_missed_call_won_back_by_a_later_booking() -> None:
    """Rule: won back = a later booking."""
    booked = visit(date(2026, 12, 2), "scheduled", booked_at=NOW + timedelta(hours=1))
    assert not is_dropped([booked], [call(NOW, "queue_timeout")])


def test_booking_made_before_the_missed_call_does_not_win_it_back() -> None:
    booked = visit(date(2026, 12, 2), "scheduled", booked_at=NOW - timedelta(days=3))
    assert is_dropped([booked], [call(NOW, "queue_timeout")])


def test_failed_outbound_call_is_not_a_drop() -> None:
    """Only the patient's own missed or abandoned calls count; our failed dial does not."""
    assert not is_dropped([], [call(NOW, "outbound_failed", "outbound")])


def test_completed_visits_alone_are_not_dropped() -> None:
    assert not is_dropped([visit(date(2026, 11, 1))], [call(NOW, "answered")])


# --- dms -----------------------------------------------------------------------------------


def test_policy_ending_today_or_later_is_dms() -> None:
    """Rule: dms = active insurance, policy end date today or later."""
    assert is_dms(TODAY, today=TODAY)
    assert is_dms(date(2027, 6, 30), today=TODAY)


def test_expired_or_missing_policy_is_not_dms() -> None:
    assert not is_dms(date(2026, 11, 22), today=TODAY)
    assert not is_dms(None, today=TODAY)


# --- together ------------------------------------------------------------------------------


def test_patient_can_be_in_several_segments() -> None:
    """Rule: a patient can be in several segments."""
    visits = [visit(date(2026, 3, 10)), visit(date(2026, 4, 1), "cancelled")]
    found = segments_for(visits=visits, calls=[], policy_end=date(2027, 1, 31), today=TODAY)
    assert found == (Segment.SLEEPING, Segment.DROPPED, Segment.DMS)


def test_active_regular_patient_is_in_no_segment() -> None:
    found = segments_for(
        visits=[visit(date(2026, 11, 1))],
        calls=[call(NOW, "answered")],
        policy_end=None,
        today=TODAY,
    )
    assert found == ()
