"""Patient segments, as the clinic defines them (pure functions of visits and calls).

- ``sleeping`` («спящие»): the last completed visit was 6 to 12 months ago (the window is
  configurable), and no visit is booked ahead.
- ``dropped`` («сорвавшиеся»): a no-show, a cancellation, or a missed / abandoned call that is not
  yet won back. Won back means a later answered call (the patient called and got through, or we
  reached them) or a later booking or visit.
- ``dms`` («ДМС»): an active insurance policy, i.e. its end date is today or later.

A patient can be in several segments. Visits carry dates (the clinic's calendar); calls carry
UTC moments. A visit-based drop on day D is won back by an answered call on D or later (the
administrator calls the no-show the same day), a visit after D or a booking made on D or later;
a call-based drop at moment T by an answered call starting after T, a visit attended after T's
day, or a booking made after T (a visit booked before the missed call does not answer it).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class Segment(StrEnum):
    SLEEPING = "sleeping"
    DROPPED = "dropped"
    DMS = "dms"


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitView:
    """A visit as the rules see it."""

    visit_date: date
    status: str  # VisitStatus value
    doctor: str | None = None
    service: str | None = None
    booked_at: datetime | None = None  # when the appointment was made, when known


@dataclass(frozen=True, slots=True, kw_only=True)
class CallView:
    """A stored call as the rules see it."""

    linkedid: str
    direction: str  # "inbound" | "outbound"
    disposition: str
    started_at: datetime
    agent: str | None = None
    talk_s: float = 0.0
    start_ts: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SleepingWindow:
    """How long ago the last completed visit must be for a patient to count as sleeping."""

    min_months: int = 6
    max_months: int = 12


#: The clinic's usual window: 6 to 12 months.
DEFAULT_SLEEPING_WINDOW = SleepingWindow()

#: Calls in which the patient dropped off (missed or abandoned inbound calls).
DROPPED_CALL_DISPOSITIONS = frozenset(
    {"abandoned", "ivr_abandoned", "queue_timeout", "no_answer", "busy"}
)
#: Calls in which the clinic and the patient talked.
CONTACT_DISPOSITIONS = frozenset({"answered", "outbound_answered"})
_BOOKED = frozenset({VisitStatus.SCHEDULED, VisitStatus.COMPLETED})
_DROPPED_VISITS = frozenset({VisitStatus.NO_SHOW, VisitStatus.CANCELLED})


def months_before(day: date, months: int) -> date:
    """Return the same day ``months`` calendar months earlier, clamped to the month's end.

    >>> months_before(date(2026, 11, 23), 6)
    datetime.date(2026, 5, 23)
    >>> months_before(date(2026, 8, 31), 6)
    datetime.date(2026, 2, 28)
    >>> months_before(date(2026, 3, 15), 12)
    datetime.date(2025, 3, 15)
    """
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


def months_between(earlier: date, later: date) -> int:
    """Return how many whole calendar months passed from ``earlier`` to ``later``.

    >>> months_between(date(2026, 5, 23), date(2026, 11, 23))
    6
    >>> months_between(date(2026, 5, 24), date(2026, 11, 23))
    5
    >>> months_between(date(2026, 11, 23), date(2026, 11, 1))
    0
    """
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if later.day < earlier.day:
        months -= 1
    return max(months, 0)


def last_completed_visit(visits: Iterable[VisitView], *, today: date) -> VisitView | None:
    """Return the latest completed visit on or before today, if any."""
    best: VisitView | None = None
    for visit in visits:
        if visit.status != VisitStatus.COMPLETED or visit.visit_date > today:
            continue
        if best is None or visit.visit_date > best.visit_date:
            best = visit
    return best


def is_sleeping(
    visits: Sequence[VisitView], *, today: date, window: SleepingWindow = DEFAULT_SLEEPING_WINDOW
) -> bool:
    """Return True when the last completed visit was within the window and nothing is booked.

    A patient with an upcoming booking is coming back already, so is not sleeping.
    """
    last = last_completed_visit(visits, today=today)
    if last is None:
        return False
    newest_allowed = months_before(today, window.min_months)
    oldest_allowed = months_before(today, window.max_months)
    if not oldest_allowed <= last.visit_date <= newest_allowed:
        return False
    return not any(v.status == VisitStatus.SCHEDULED and v.visit_date >= today for v in visits)


def is_dropped(visits: Sequence[VisitView], calls: Sequence[CallView]) -> bool:
    """Return True when a no-show, cancellation or dropped call is not yet won back."""
    # Whatever wins back a drop also wins back every earlier drop of its kind, so only the
    # latest visit drop and the latest call drop need checking: one pass, not drops × events.
    latest_visit_drop = max(
        (v.visit_date for v in visits if v.status in _DROPPED_VISITS), default=None
    )
    latest_call_drop = max(
        (
            c.started_at
            for c in calls
            if c.direction == "inbound" and c.disposition in DROPPED_CALL_DISPOSITIONS
        ),
        default=None,
    )
    if latest_visit_drop is None and latest_call_drop is None:
        return False
    last_contact = max(
        (c.started_at for c in calls if c.disposition in CONTACT_DISPOSITIONS), default=None
    )
    booked = [v for v in visits if v.status in _BOOKED]
    last_booked_date = max((v.visit_date for v in booked), default=None)
    last_booking = max((v.booked_at for v in booked if v.booked_at is not None), default=None)
    last_attended = max(
        (v.visit_date for v in booked if v.status == VisitStatus.COMPLETED), default=None
    )
    if latest_visit_drop is not None:
        day = latest_visit_drop
        won_back = (
            (last_booked_date is not None and last_booked_date > day)
            or (last_booking is not None and last_booking.date() >= day)
            or (last_contact is not None and last_contact.date() >= day)
        )
        if not won_back:
            return True
    if latest_call_drop is not None:
        moment = latest_call_drop
        # A visit booked before the missed call does not answer it; one made or attended after does.
        won_back = (
            (last_contact is not None and last_contact > moment)
            or (last_booking is not None and last_booking > moment)
            or (last_attended is not None and last_attended > moment.date())
        )
        if not won_back:
            return True
    return False


def is_dms(policy_end: date | None, *, today: date) -> bool:
    """Return True when the ДМС policy is active: it ends today or later.

    >>> is_dms(date(2026, 11, 23), today=date(2026, 11, 23)), is_dms(None, today=date(2026, 1, 1))
    (True, False)
    """
    return policy_end is not None and policy_end >= today


def segments_for(
    *,
    visits: Sequence[VisitView],
    calls: Sequence[CallView],
    policy_end: date | None,
    today: date,
    sleeping_window: SleepingWindow = DEFAULT_SLEEPING_WINDOW,
) -> tuple[Segment, ...]:
    """Return every segment the patient is in, in the order sleeping, dropped, dms."""
    found: list[Segment] = []
    if is_sleeping(visits, today=today, window=sleeping_window):
        found.append(Segment.SLEEPING)
    if is_dropped(visits, calls):
        found.append(Segment.DROPPED)
    if is_dms(policy_end, today=today):
        found.append(Segment.DMS)
    return tuple(found)
