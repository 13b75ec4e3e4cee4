"""When a callback task is due, which kind it is, and what an attempt's outcome does (pure).

The rules, from the issue "Callback queue":

* A missed or abandoned call is called back as soon as possible *inside working hours*.
* A failed attempt is retried after configurable gaps (default 15 min, 1 h, then the next
  working morning); after ``max_attempts`` attempts (default 3) the task closes as
  ``unreachable``. (Closing when the patient gets through is ``tasks.rules``.)
* Working hours are per weekday, with holidays, in the clinic's time zone (default
  Europe/Moscow, ``zoneinfo``). No call starts outside them. Due times are computed in that zone
  and handed back as UTC datetimes, which is how the store keeps them.
* A call that cannot complete is not started: a call may start only while at least
  ``min_slot_s`` (default 60 s: the 30 s originate timeout plus 30 s to say why we call) remain
  before closing. At 20:59:59 with hours to 21:00 the next slot is the next working morning.
* Priority: callbacks to dropped callers before follow-ups; older before newer.
* Kinds per reason: callbacks to dropped callers, reminders, care, NPS and no-show rebooking are
  ``service``; sleeping-patient invitations and anything offering a discount (objection
  follow-ups offer one) are ``marketing``. An unknown reason is ``marketing``: the stricter
  consent check applies when we do not know better.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.tasks.rules import TaskKind, TaskReason

#: Reasons of tasks opened for a dropped caller: they come first in the callback queue.
DROPPED_CALL_REASONS = frozenset({str(TaskReason.MISSED_CALL), str(TaskReason.ABANDONED_CALL)})

#: The default kind of each task reason (see the module docstring).
DEFAULT_KINDS: Mapping[str, TaskKind] = MappingProxyType(
    {
        "missed_call": TaskKind.SERVICE,
        "abandoned_call": TaskKind.SERVICE,
        "reminder": TaskKind.SERVICE,
        "care": TaskKind.SERVICE,
        "nps_followup": TaskKind.SERVICE,
        "no_show": TaskKind.SERVICE,
        "first_visit_followup": TaskKind.SERVICE,  # a first-time patient's follow-up series
        "click_to_call": TaskKind.SERVICE,  # an operator calls the patient from the card
        "sleeping": TaskKind.MARKETING,
        "objection_followup": TaskKind.MARKETING,  # offers a discount
        "discount_offer": TaskKind.MARKETING,
    }
)

_WEEKDAY_HOURS = (time(9, 0), time(21, 0))
_SATURDAY_HOURS = (time(10, 0), time(18, 0))
# Monday = 0 … Sunday = 6 (date.weekday()); None = closed all day.
DEFAULT_HOURS: tuple[tuple[time, time] | None, ...] = (
    _WEEKDAY_HOURS,
    _WEEKDAY_HOURS,
    _WEEKDAY_HOURS,
    _WEEKDAY_HOURS,
    _WEEKDAY_HOURS,
    _SATURDAY_HOURS,
    None,
)

#: ``None`` in ``retry_gaps_s`` means "the next working morning".
NEXT_MORNING = None

# How far ahead a free slot is searched before the schedule is declared to have none.
_MAX_DAYS_AHEAD = 400


class CloseReasonDialer(StrEnum):
    """Why the dialer closed a task (``tasks.rules.CloseReason`` has the call-driven ones)."""

    REACHED = "reached"
    UNREACHABLE = "unreachable"  # max attempts used up
    REFUSED = "refused"  # consent does not allow the call
    UNDIALABLE = "undialable"  # the number cannot be dialled


class AttemptOutcome(StrEnum):
    """How one dialer attempt ended."""

    ANSWERED = "answered"  # the patient and an operator talked
    NO_ANSWER = "no_answer"  # the patient's phone rang out (OriginateResponse Reason 3)
    BUSY = "busy"  # the patient's line was busy (Reason 5)
    PATIENT_NO_ANSWER = "patient_no_answer"  # operator-first: operator answered, patient did not
    OPERATOR_NO_ANSWER = "operator_no_answer"  # the operator did not answer
    FAILED = "failed"  # Asterisk could not place the call (congestion, bad channel)
    REJECTED = "rejected"  # the Originate was refused (Response: Error)
    NOT_SENT = "not_sent"  # the AMI link was down: nothing was sent
    UNKNOWN = "unknown"  # sent, but no outcome came (timeout, link lost): may have rung


#: Outcomes after which the patient's phone certainly did not ring: they use up no attempt.
NOT_AN_ATTEMPT = frozenset(
    {AttemptOutcome.OPERATOR_NO_ANSWER, AttemptOutcome.REJECTED, AttemptOutcome.NOT_SENT}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClinicSchedule:
    """A clinic's calling rules; every field has the issue's default."""

    tz: str = "Europe/Moscow"
    # (opens, closes) per weekday, Monday first; None = closed that day.
    hours: tuple[tuple[time, time] | None, ...] = DEFAULT_HOURS
    holidays: frozenset[date] = frozenset()
    # Gap before attempt n+1 after attempt n failed; None = the next working morning. The last
    # gap repeats if max_attempts outlasts the list.
    retry_gaps_s: tuple[float | None, ...] = (15 * 60.0, 60 * 60.0, NEXT_MORNING)
    max_attempts: int = 3
    # The least time before closing in which a call may still start (originate timeout + talk).
    min_slot_s: float = 60.0
    # Gap after an attempt that did not reach the patient's phone (operator busy, rejected).
    not_an_attempt_gap_s: float = 60.0
    kinds: Mapping[str, TaskKind] = field(default_factory=lambda: DEFAULT_KINDS)

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise ValueError(f"hours needs 7 weekdays (Monday first), got {len(self.hours)}")
        for day in self.hours:
            if day is not None and not day[0] < day[1]:
                raise ValueError(f"working hours must open before they close: {day!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not self.retry_gaps_s:
            raise ValueError("retry_gaps_s must not be empty")
        if any(g is not None and g < 0 for g in self.retry_gaps_s):
            raise ValueError(f"retry gaps must not be negative: {self.retry_gaps_s!r}")
        if self.min_slot_s < 0:
            raise ValueError(f"min_slot_s must not be negative, got {self.min_slot_s}")
        ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's time zone."""
        return ZoneInfo(self.tz)


# -- working hours ------------------------------------------------------------------------


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware datetime")


def _window(day: date, schedule: ClinicSchedule) -> tuple[datetime, datetime] | None:
    """Return when calls may start on ``day`` (local dates), or None when closed."""
    if day in schedule.holidays:
        return None
    hours = schedule.hours[day.weekday()]
    if hours is None:
        return None
    zone = schedule.zone
    opens = datetime.combine(day, hours[0], tzinfo=zone)
    last_start = datetime.combine(day, hours[1], tzinfo=zone) - timedelta(
        seconds=schedule.min_slot_s
    )
    if last_start < opens:
        return None
    return opens, last_start


def may_call_at(at: datetime, schedule: ClinicSchedule) -> bool:
    """Return True when a call may start at ``at`` (working hours, room for the call)."""
    _check_aware(at)
    local = at.astimezone(schedule.zone)
    window = _window(local.date(), schedule)
    return window is not None and window[0] <= local <= window[1]


def next_call_slot(after: datetime, schedule: ClinicSchedule) -> datetime:
    """Return the earliest UTC time at or after ``after`` when a call may start.

    :raises ValueError: when the schedule has no working time in the next 400 days.
    """
    _check_aware(after)
    local = after.astimezone(schedule.zone)
    day = local.date()
    for _ in range(_MAX_DAYS_AHEAD):
        window = _window(day, schedule)
        if window is not None:
            opens, last_start = window
            if local <= last_start:
                return max(local, opens).astimezone(UTC)
        day += timedelta(days=1)
    raise ValueError("the clinic schedule has no working hours in the next 400 days")


def next_working_morning(after: datetime, schedule: ClinicSchedule) -> datetime:
    """Return the opening time of the first working day after the local day of ``after``."""
    _check_aware(after)
    day = after.astimezone(schedule.zone).date() + timedelta(days=1)
    for _ in range(_MAX_DAYS_AHEAD):
        window = _window(day, schedule)
        if window is not None:
            return window[0].astimezone(UTC)
        day += timedelta(days=1)
    raise ValueError("the clinic schedule has no working hours in the next 400 days")


def first_due_at(*, dropped_at: datetime, schedule: ClinicSchedule) -> datetime:
    """Return when a new callback task is due: the first call slot after the drop."""
    return next_call_slot(dropped_at, schedule)


# -- attempts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reschedule:
    """Try again at ``due_at`` (UTC)."""

    due_at: datetime
    attempts: int  # attempts used up so far


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseAfterAttempt:
    """Close the task."""

    close_reason: CloseReasonDialer
    attempts: int


AttemptDecision = Reschedule | CloseAfterAttempt


def counts_as_attempt(outcome: AttemptOutcome) -> bool:
    """Return True when the outcome uses up one of the task's attempts.

    >>> counts_as_attempt(AttemptOutcome.BUSY), counts_as_attempt(AttemptOutcome.REJECTED)
    (True, False)
    """
    return outcome not in NOT_AN_ATTEMPT


def decide_after_attempt(
    *,
    outcome: AttemptOutcome,
    attempts_before: int,
    finished_at: datetime,
    schedule: ClinicSchedule,
) -> AttemptDecision:
    """Decide what an attempt's outcome does to its task.

    ``attempts_before`` counts the attempts used up before this one. An answered call closes the
    task (``reached``); an outcome in ``NOT_AN_ATTEMPT`` retries after ``not_an_attempt_gap_s``
    without using an attempt; any other outcome uses one, then retries after the gap for that
    attempt or closes the task as ``unreachable`` when none are left.
    """
    _check_aware(finished_at)
    if outcome is AttemptOutcome.ANSWERED:
        return CloseAfterAttempt(
            close_reason=CloseReasonDialer.REACHED, attempts=attempts_before + 1
        )
    if not counts_as_attempt(outcome):
        due = finished_at + timedelta(seconds=schedule.not_an_attempt_gap_s)
        return Reschedule(due_at=next_call_slot(due, schedule), attempts=attempts_before)
    attempts = attempts_before + 1
    if attempts >= schedule.max_attempts:
        return CloseAfterAttempt(close_reason=CloseReasonDialer.UNREACHABLE, attempts=attempts)
    gaps = schedule.retry_gaps_s
    gap = gaps[min(attempts - 1, len(gaps) - 1)]
    if gap is NEXT_MORNING:
        due = next_working_morning(finished_at, schedule)
    else:
        due = next_call_slot(finished_at + timedelta(seconds=gap), schedule)
    return Reschedule(due_at=due, attempts=attempts)


# -- priority and kinds ------------------------------------------------------------------


def priority_key(
    *, reason: str, opened_at: datetime, kind: str = TaskKind.MARKETING
) -> tuple[int, datetime]:
    """Return the sort key of a due task: dropped callers first, then service follow-ups
    (reminders, care, NPS, no-shows), then marketing calls; the oldest first within each.

    >>> t = datetime(2026, 11, 23, tzinfo=UTC)
    >>> priority_key(reason="missed_call", opened_at=t) < priority_key(reason="sleeping",
    ...                                                                 opened_at=t)
    True
    >>> priority_key(reason="reminder", opened_at=t, kind="service") < priority_key(
    ...     reason="sleeping", opened_at=t - timedelta(days=30), kind="marketing")
    True
    """
    if reason in DROPPED_CALL_REASONS:
        return (0, opened_at)
    return (1 if kind == TaskKind.SERVICE else 2, opened_at)


def kind_for_reason(reason: str, schedule: ClinicSchedule) -> TaskKind:
    """Return whether a task of this reason is a service or a marketing call.

    >>> kind_for_reason("no_show", ClinicSchedule()), kind_for_reason("sleeping",
    ...                                                                ClinicSchedule())
    (<TaskKind.SERVICE: 'service'>, <TaskKind.MARKETING: 'marketing'>)
    """
    return schedule.kinds.get(reason, TaskKind.MARKETING)


# -- JSON (clinic settings are stored as JSON with their history) ---------------------------


def schedule_to_json(schedule: ClinicSchedule) -> str:
    """Serialize the schedule (times as ``HH:MM``, dates ISO, kinds by name)."""
    data: dict[str, Any] = {
        "tz": schedule.tz,
        "hours": [
            None if day is None else [day[0].isoformat("minutes"), day[1].isoformat("minutes")]
            for day in schedule.hours
        ],
        "holidays": sorted(d.isoformat() for d in schedule.holidays),
        "retry_gaps_s": list(schedule.retry_gaps_s),
        "max_attempts": schedule.max_attempts,
        "min_slot_s": schedule.min_slot_s,
        "not_an_attempt_gap_s": schedule.not_an_attempt_gap_s,
        "kinds": {reason: str(kind) for reason, kind in sorted(schedule.kinds.items())},
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def schedule_from_json(text: str) -> ClinicSchedule:
    """Read a schedule written by ``schedule_to_json``; missing fields take the defaults.

    :raises ValueError: for malformed JSON or values the schedule refuses.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("clinic schedule JSON must be an object")
        defaults = ClinicSchedule()
        hours = defaults.hours
        if "hours" in data:
            hours = tuple(
                None if day is None else (time.fromisoformat(day[0]), time.fromisoformat(day[1]))
                for day in data["hours"]
            )
        kinds: Mapping[str, TaskKind] = defaults.kinds
        if "kinds" in data:
            kinds = MappingProxyType({str(r): TaskKind(k) for r, k in data["kinds"].items()})
        return ClinicSchedule(
            tz=str(data.get("tz", defaults.tz)),
            hours=hours,
            holidays=frozenset(date.fromisoformat(d) for d in data.get("holidays", [])),
            retry_gaps_s=tuple(
                None if g is None else float(g)
                for g in data.get("retry_gaps_s", defaults.retry_gaps_s)
            ),
            max_attempts=int(data.get("max_attempts", defaults.max_attempts)),
            min_slot_s=float(data.get("min_slot_s", defaults.min_slot_s)),
            not_an_attempt_gap_s=float(
                data.get("not_an_attempt_gap_s", defaults.not_an_attempt_gap_s)
            ),
            kinds=kinds,
        )
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad clinic schedule JSON: {exc}") from exc
