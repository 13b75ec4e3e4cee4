"""Follow-up calls the clinic places on its own initiative, from a patient's visits (pure).

The rules, from the issue "Callback queue" (section "Rules"). Dates are the clinic's calendar
(``ClinicSchedule.tz``); due times are moved into working hours with ``next_call_slot`` and
handed back in UTC.

* ``first_visit_followup`` (service): a patient who came once (exactly one completed visit)
  and has not booked again is called 3, 7 and 14 days after that visit. Each step is due on its
  day and stays relevant until the next step's day (the last one for ``last_step_grace_days``);
  a step whose window passed unused is skipped, never called late. The series stops as soon as a
  booking appears: a scheduled, completed or missed visit on or after the first visit's day.
* ``reminder`` (service): the day before a scheduled visit. When the clinic is closed that day
  the reminder moves back to the latest working day before it (up to ``reminder_search_days``
  back). A visit booked on the reminder's day or later needs no reminder (the patient just booked).
* ``care`` (service): the day after a completed *treatment* visit (a visit whose service is not
  a consultation, examination or diagnostic, see ``non_treatment_words``); relevant until
  ``care_until_days`` after the visit.
* ``nps_followup`` (service): «как вы себя чувствуете», 3 to 5 days after the latest completed
  visit. Not stacked: (1) a first-visit patient gets no NPS call for that visit, because the
  day-3 first-visit call asks the same question and offers a booking; (2) no follow-up of any
  reason but a reminder is opened for a patient on a clinic day on which another one was
  already opened for them (the store's rule), so the care call and the NPS call of one visit
  never share a day even when a clinic configures their windows to overlap.
* ``sleeping`` (marketing): «спящие», the last completed visit 6 to 12 months ago (the
  ``segments.SleepingWindow``) and nothing booked ahead, get one «Забота» call per sleeping
  period; the period is named by its last completed visit, so a patient who comes back and falls
  asleep again is called again, once. A visit booked ahead or attended later wakes them (a missed
  visit does not), as ``segments.is_sleeping`` says.
* ``no_show`` (service): a rebooking call after the latest missed visit, from that day for
  ``no_show_until_days``, unless the patient booked or came again on or after that day.

Relevance. A follow-up is opened only inside its window. When its window has passed while the
number had another open task, it is simply never opened (a reminder after the visit date is
pointless). A follow-up task that is still open when it stops being relevant is closed by the
sweep: ``booked`` (the series or the rebooking/«Забота» call was answered by a booking),
``visit_changed`` (a reminder's visit is no longer scheduled), ``expired`` (its window passed).
A follow-up is keyed by its anchor visit, so a visit moved to another day after its reminder was
opened is not reminded again.

When several follow-ups of one patient are due at once, the most urgent is opened first:
reminder, no-show, care, first-visit, NPS, sleeping (``URGENCY``).
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from callcenter.patients.segments import (
    DEFAULT_SLEEPING_WINDOW,
    SleepingWindow,
    VisitStatus,
    VisitView,
    is_sleeping,
    months_before,
)
from callcenter.tasks.schedule import ClinicSchedule, next_call_slot


class FollowupReason(StrEnum):
    FIRST_VISIT = "first_visit_followup"
    REMINDER = "reminder"
    CARE = "care"
    NPS = "nps_followup"
    SLEEPING = "sleeping"
    NO_SHOW = "no_show"


class FollowupCloseReason(StrEnum):
    BOOKED = "booked"  # a booking appeared: the series, rebooking or «Забота» call is not needed
    VISIT_CHANGED = "visit_changed"  # a reminder's visit is no longer scheduled
    EXPIRED = "expired"  # the follow-up's window passed


#: Most urgent first: when several follow-ups of one patient are due, this order picks one.
URGENCY: tuple[FollowupReason, ...] = (
    FollowupReason.REMINDER,
    FollowupReason.NO_SHOW,
    FollowupReason.CARE,
    FollowupReason.FIRST_VISIT,
    FollowupReason.NPS,
    FollowupReason.SLEEPING,
)

#: Services that are not a treatment (lower case, matched as substrings of the service name).
NON_TREATMENT_WORDS: tuple[str, ...] = (
    "консультац",
    "осмотр",
    "приём",
    "прием",
    "узи",
    "экг",
    "холтер",
    "анализ",
    "диагност",
)

# Statuses of a visit that show the patient booked it.
_BOOKING_STATUSES = frozenset({VisitStatus.SCHEDULED, VisitStatus.COMPLETED, VisitStatus.NO_SHOW})


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowupRules:
    """A clinic's follow-up settings; every field has the issue's default."""

    first_visit_days: tuple[int, ...] = (3, 7, 14)
    last_step_grace_days: int = 7  # the last first-visit step stays relevant this long
    reminder_days_before: int = 1
    reminder_search_days: int = 3  # how far back a reminder moves when the clinic is closed
    care_after_days: int = 1
    care_until_days: int = 2
    nps_days: tuple[int, int] = (3, 5)
    no_show_until_days: int = 7
    sleeping_window: SleepingWindow = DEFAULT_SLEEPING_WINDOW
    non_treatment_words: tuple[str, ...] = NON_TREATMENT_WORDS

    def __post_init__(self) -> None:
        days = self.first_visit_days
        if not days or any(d < 1 for d in days) or list(days) != sorted(set(days)):
            raise ValueError(f"first_visit_days must be increasing positive days, got {days!r}")
        if self.last_step_grace_days < 0:
            raise ValueError(
                f"last_step_grace_days must not be negative: {self.last_step_grace_days}"
            )
        if self.reminder_days_before < 1:
            raise ValueError(
                f"reminder_days_before must be at least 1: {self.reminder_days_before}"
            )
        if self.reminder_search_days < 0:
            raise ValueError(
                f"reminder_search_days must not be negative: {self.reminder_search_days}"
            )
        if not 0 <= self.care_after_days <= self.care_until_days:
            raise ValueError(
                f"care days must satisfy 0 <= after <= until: "
                f"{self.care_after_days}, {self.care_until_days}"
            )
        if not 0 <= self.nps_days[0] <= self.nps_days[1]:
            raise ValueError(
                f"nps_days must be (first, last) with 0 <= first <= last: {self.nps_days!r}"
            )
        if self.no_show_until_days < 0:
            raise ValueError(f"no_show_until_days must not be negative: {self.no_show_until_days}")
        window = self.sleeping_window
        if not 0 <= window.min_months <= window.max_months:
            raise ValueError(f"sleeping window must be 0 <= min <= max months: {window!r}")

    def lookback_start(self, today: date) -> date:
        """Return the earliest visit date any rule can anchor on today."""
        days_back = max(
            self.first_visit_days[-1] + self.last_step_grace_days,
            self.care_until_days,
            self.nps_days[1],
            self.no_show_until_days,
        )
        return min(
            today - timedelta(days=days_back), months_before(today, self.sleeping_window.max_months)
        )

    def first_visit_lookback(self, today: date) -> date:
        """Return the earliest first visit whose series can still be running today."""
        return today - timedelta(days=self.first_visit_days[-1] + self.last_step_grace_days)


DEFAULT_RULES = FollowupRules()


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitFacts:
    """A visit as the follow-up rules see it."""

    visit_id: int
    visit_date: date  # the clinic's calendar
    status: str  # VisitStatus value
    service: str | None = None
    booked_at: datetime | None = None  # UTC, when known


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientFacts:
    """One patient's visits the rules need.

    ``visits`` may be a recent slice (from ``FollowupRules.lookback_start``) as long as
    ``earlier_completed`` counts the completed visits before it.
    """

    patient_id: int
    visits: Sequence[VisitFacts]
    earlier_completed: int = 0


@dataclass(frozen=True, slots=True)
class FollowupKey:
    """Which follow-up: a reason, its anchor visit and the step of a series (0 = no series)."""

    reason: FollowupReason
    anchor_visit_id: int
    step: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Followup:
    """A follow-up that is due: open a task for it."""

    key: FollowupKey
    anchor_date: date
    from_day: date  # first clinic day it may be called
    until_day: date  # last clinic day it is relevant
    due_at: datetime  # UTC, inside working hours, on or before until_day

    @property
    def reason(self) -> FollowupReason:
        return self.key.reason


def is_treatment(service: str | None, rules: FollowupRules = DEFAULT_RULES) -> bool:
    """Return True when a visit's service is a treatment (not a consultation or diagnostic).

    A visit without a service name is not known to be a treatment: it gets the NPS call only.

    >>> is_treatment("Лечение кариеса"), is_treatment("Консультация терапевта"), is_treatment(None)
    (True, False, False)
    """
    if service is None or not service.strip():
        return False
    name = service.casefold()
    return not any(word in name for word in rules.non_treatment_words)


def local_day(at: datetime, schedule: ClinicSchedule) -> date:
    """Return the clinic's calendar day of an aware moment."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware datetime")
    return at.astimezone(schedule.zone).date()


def day_start(day: date, schedule: ClinicSchedule) -> datetime:
    """Return the clinic's local midnight of ``day`` (aware)."""
    return datetime.combine(day, time(0, 0), tzinfo=schedule.zone)


def is_working_day(day: date, schedule: ClinicSchedule) -> bool:
    """Return True when a call may start at some time on ``day`` (clinic calendar)."""
    try:
        slot = next_call_slot(day_start(day, schedule), schedule)
    except ValueError:
        return False
    return local_day(slot, schedule) == day


# -- the rules ----------------------------------------------------------------------------


def _completed(patient: PatientFacts) -> list[VisitFacts]:
    return [v for v in patient.visits if v.status == VisitStatus.COMPLETED]


def _booked_since(patient: PatientFacts, anchor: VisitFacts) -> bool:
    """A booking on or after the anchor's day, other than the anchor itself."""
    return any(
        v.visit_id != anchor.visit_id
        and v.status in _BOOKING_STATUSES
        and v.visit_date >= anchor.visit_date
        for v in patient.visits
    )


def _rebooked_since(patient: PatientFacts, anchor: VisitFacts) -> bool:
    """A scheduled or attended visit on or after a missed visit's day."""
    return any(
        v.visit_id != anchor.visit_id
        and v.status in (VisitStatus.SCHEDULED, VisitStatus.COMPLETED)
        and v.visit_date >= anchor.visit_date
        for v in patient.visits
    )


def _woken(patient: PatientFacts, anchor: VisitFacts, *, today: date) -> bool:
    """A sleeping patient is no longer asleep: a visit booked ahead, or one attended after the
    anchor's day (what ``segments.is_sleeping`` looks at; a missed visit does not wake them)."""
    return any(
        v.visit_id != anchor.visit_id
        and (
            (v.status == VisitStatus.SCHEDULED and v.visit_date >= today)
            or (v.status == VisitStatus.COMPLETED and v.visit_date > anchor.visit_date)
        )
        for v in patient.visits
    )


def _first_visit_anchor(patient: PatientFacts) -> VisitFacts | None:
    """The patient's only completed visit, when they came exactly once."""
    completed = _completed(patient)
    if patient.earlier_completed or len(completed) != 1:
        return None
    return completed[0]


def first_visit_window(step: int, anchor_date: date, rules: FollowupRules) -> tuple[date, date]:
    """Return (from_day, until_day) of a first-visit step (1-based).

    >>> first_visit_window(1, date(2026, 11, 1), DEFAULT_RULES)
    (datetime.date(2026, 11, 4), datetime.date(2026, 11, 7))
    >>> first_visit_window(3, date(2026, 11, 1), DEFAULT_RULES)
    (datetime.date(2026, 11, 15), datetime.date(2026, 11, 22))
    """
    days = rules.first_visit_days
    if not 1 <= step <= len(days):
        raise ValueError(f"first-visit step must be 1..{len(days)}, got {step}")
    start = anchor_date + timedelta(days=days[step - 1])
    if step < len(days):
        end = anchor_date + timedelta(days=days[step] - 1)
    else:
        end = start + timedelta(days=rules.last_step_grace_days)
    return start, end


def reminder_window(
    visit_date: date, rules: FollowupRules, schedule: ClinicSchedule
) -> tuple[date, date]:
    """Return (from_day, until_day) of a visit's reminder: the day before, or the latest working
    day before it when the clinic is closed then; relevant until the day before the visit."""
    until = visit_date - timedelta(days=1)
    start = visit_date - timedelta(days=rules.reminder_days_before)
    for back in range(rules.reminder_search_days + 1):
        day = start - timedelta(days=back)
        if is_working_day(day, schedule):
            return day, until
    return start, until


def window_for(
    key: FollowupKey, anchor_date: date, rules: FollowupRules, schedule: ClinicSchedule
) -> tuple[date, date]:
    """Return (from_day, until_day) of a follow-up anchored on a visit of ``anchor_date``."""
    match key.reason:
        case FollowupReason.FIRST_VISIT:
            return first_visit_window(key.step, anchor_date, rules)
        case FollowupReason.REMINDER:
            return reminder_window(anchor_date, rules, schedule)
        case FollowupReason.CARE:
            return (
                anchor_date + timedelta(days=rules.care_after_days),
                anchor_date + timedelta(days=rules.care_until_days),
            )
        case FollowupReason.NPS:
            return (
                anchor_date + timedelta(days=rules.nps_days[0]),
                anchor_date + timedelta(days=rules.nps_days[1]),
            )
        case FollowupReason.NO_SHOW:
            return anchor_date, anchor_date + timedelta(days=rules.no_show_until_days)
        case FollowupReason.SLEEPING:
            window = rules.sleeping_window
            # Sleeping from the day the last visit is min_months old to the day it is max_months
            # old: the inverse of months_before.
            return (
                _months_after(anchor_date, window.min_months),
                _months_after(anchor_date + timedelta(days=1), window.max_months)
                - timedelta(days=1),
            )
    raise ValueError(f"unknown follow-up reason {key.reason!r}")


def _months_after(day: date, months: int) -> date:
    """The first day ``d`` with ``months_before(d, months) >= day``.

    >>> _months_after(date(2026, 5, 23), 6), _months_after(date(2026, 2, 28), 6)
    (datetime.date(2026, 11, 23), datetime.date(2026, 8, 28))
    >>> _months_after(date(2025, 8, 31), 6)  # no 31 February: the first of March
    datetime.date(2026, 3, 1)
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    if day.day <= calendar.monthrange(year, month + 1)[1]:
        return date(year, month + 1, day.day)
    # Every day of that month maps to an earlier day (months_before clamps to the month's end).
    year, month = divmod(index + 1, 12)
    return date(year, month + 1, 1)


class FollowupClock:
    """What every patient's evaluation at one moment shares, computed once per sweep: the
    clinic day, the next call slot and the windows of each anchor date."""

    def __init__(
        self, *, now: datetime, schedule: ClinicSchedule, rules: FollowupRules = DEFAULT_RULES
    ) -> None:
        self.schedule = schedule
        self.rules = rules
        self.today = local_day(now, schedule)
        self.slot = next_call_slot(now, schedule)
        self.slot_day = local_day(self.slot, schedule)
        window = rules.sleeping_window
        self.sleeping_bounds = (
            months_before(self.today, window.max_months),
            months_before(self.today, window.min_months),
        )
        # Anchors older than this cannot have a care, NPS or no-show call due today; scheduled
        # visits later than reminder_horizon cannot have their reminder due today.
        self.recent_since = self.today - timedelta(
            days=max(rules.care_until_days, rules.nps_days[1], rules.no_show_until_days)
        )
        self.reminder_horizon = self.today + timedelta(
            days=rules.reminder_days_before + rules.reminder_search_days
        )
        # Every follow-up but «спящие» is anchored on a visit between these two days.
        self.active_since = min(self.recent_since, rules.first_visit_lookback(self.today))
        self._windows: dict[tuple[FollowupReason, int, date], tuple[date, date]] = {}

    def window(self, key: FollowupKey, anchor_date: date) -> tuple[date, date]:
        """``window_for``, remembered per (reason, step, anchor date)."""
        cache_key = (key.reason, key.step, anchor_date)
        found = self._windows.get(cache_key)
        if found is None:
            found = window_for(key, anchor_date, self.rules, self.schedule)
            self._windows[cache_key] = found
        return found


def _candidates(
    patient: PatientFacts, clock: FollowupClock
) -> list[tuple[FollowupKey, VisitFacts]]:
    """Every follow-up the patient's visits may call for today, before windows and records."""
    today, rules = clock.today, clock.rules
    found: list[tuple[FollowupKey, VisitFacts]] = []
    for visit in patient.visits:
        if (
            visit.status == VisitStatus.SCHEDULED
            and today < visit.visit_date <= clock.reminder_horizon
        ):
            found.append((FollowupKey(FollowupReason.REMINDER, visit.visit_id), visit))
    no_shows = [
        v for v in patient.visits if v.status == VisitStatus.NO_SHOW and v.visit_date <= today
    ]
    if no_shows:
        latest = max(no_shows, key=lambda v: (v.visit_date, v.visit_id))
        if latest.visit_date >= clock.recent_since and not _rebooked_since(patient, latest):
            found.append((FollowupKey(FollowupReason.NO_SHOW, latest.visit_id), latest))
    completed = [v for v in _completed(patient) if v.visit_date <= today]
    for visit in completed:
        if visit.visit_date >= clock.recent_since and is_treatment(visit.service, rules):
            found.append((FollowupKey(FollowupReason.CARE, visit.visit_id), visit))
    first = _first_visit_anchor(patient)
    series = first is not None and first.visit_date <= today and not _booked_since(patient, first)
    if first is not None and series:
        for step in range(1, len(rules.first_visit_days) + 1):
            found.append((FollowupKey(FollowupReason.FIRST_VISIT, first.visit_id, step), first))
    if completed:
        latest = max(completed, key=lambda v: (v.visit_date, v.visit_id))
        # A running first-visit series asks «как вы себя чувствуете» in its day-3 call.
        running = series and first is not None and first.visit_id == latest.visit_id
        if latest.visit_date >= clock.recent_since and not running:
            found.append((FollowupKey(FollowupReason.NPS, latest.visit_id), latest))
        oldest, newest = clock.sleeping_bounds
        if oldest <= latest.visit_date <= newest:
            views = [VisitView(visit_date=v.visit_date, status=v.status) for v in patient.visits]
            if is_sleeping(views, today=today, window=rules.sleeping_window):
                found.append((FollowupKey(FollowupReason.SLEEPING, latest.visit_id), latest))
    return found


def due_followups(
    patient: PatientFacts,
    *,
    now: datetime,
    schedule: ClinicSchedule,
    rules: FollowupRules = DEFAULT_RULES,
    done: Collection[FollowupKey] = (),
    clock: FollowupClock | None = None,
) -> list[Followup]:
    """Return the follow-ups of one patient that may be opened now, most urgent first.

    ``done`` holds the keys already opened or stopped for this patient: they are never opened
    again. A follow-up is due when today (clinic calendar) is inside its window and the next
    working-hours slot from ``now`` is too; otherwise it is not returned. A sweep passes one
    ``clock`` (made for the same ``now``, schedule and rules) for all its patients.
    """
    if clock is None:
        clock = FollowupClock(now=now, schedule=schedule, rules=rules)
    today = clock.today
    # Two visits booked for one day get one reminder (while the reminded one stays booked).
    reminded_days = {
        v.visit_date
        for v in patient.visits
        if v.status == VisitStatus.SCHEDULED
        and FollowupKey(FollowupReason.REMINDER, v.visit_id) in done
    }
    due: list[Followup] = []
    for key, anchor in _candidates(patient, clock):
        if key in done:
            continue
        if key.reason is FollowupReason.REMINDER and anchor.visit_date in reminded_days:
            continue
        start, until = clock.window(key, anchor.visit_date)
        if not start <= today <= until or clock.slot_day > until:
            continue
        if key.reason is FollowupReason.REMINDER and anchor.booked_at is not None:
            if local_day(anchor.booked_at, schedule) >= start:
                continue  # booked on the reminder's day or later: the patient knows
        # start <= today, so the next slot from now is also the first one inside the window.
        due.append(
            Followup(
                key=key,
                anchor_date=anchor.visit_date,
                from_day=start,
                until_day=until,
                due_at=clock.slot,
            )
        )
    due.sort(key=lambda f: (URGENCY.index(f.reason), f.due_at, f.anchor_date, f.key.step))
    return due


def close_reason_for(
    key: FollowupKey,
    patient: PatientFacts,
    *,
    anchor_date: date,
    today: date,
    schedule: ClinicSchedule,
    rules: FollowupRules = DEFAULT_RULES,
) -> FollowupCloseReason | None:
    """Return why an open follow-up task is no longer wanted, or None while it still is."""
    anchor = next((v for v in patient.visits if v.visit_id == key.anchor_visit_id), None)
    match key.reason:
        case FollowupReason.FIRST_VISIT:
            if anchor is not None and _booked_since(patient, anchor):
                return FollowupCloseReason.BOOKED
        case FollowupReason.NO_SHOW:
            if anchor is not None and _rebooked_since(patient, anchor):
                return FollowupCloseReason.BOOKED
        case FollowupReason.SLEEPING:
            if anchor is not None and _woken(patient, anchor, today=today):
                return FollowupCloseReason.BOOKED
        case FollowupReason.REMINDER:
            if anchor is None or anchor.status != VisitStatus.SCHEDULED:
                return FollowupCloseReason.VISIT_CHANGED
            anchor_date = anchor.visit_date  # a moved visit moves its reminder's window
        case _:
            pass
    _, until = window_for(key, anchor_date, rules, schedule)
    if today > until:
        return FollowupCloseReason.EXPIRED
    return None


def remaining_steps(key: FollowupKey, rules: FollowupRules = DEFAULT_RULES) -> list[int]:
    """Return the first-visit steps after ``key``'s (stopped when a booking appears).

    >>> remaining_steps(FollowupKey(FollowupReason.FIRST_VISIT, 7, 1))
    [2, 3]
    """
    if key.reason is not FollowupReason.FIRST_VISIT:
        return []
    return list(range(key.step + 1, len(rules.first_visit_days) + 1))
