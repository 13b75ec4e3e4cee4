"""Supervisor figures over plain rows: calls, drops and callbacks, administrators (pure).

Every function here takes rows already loaded (``store.reports`` loads them) and a ``Period``
in the clinic's time zone; nothing touches a database, so the rules are tested by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.errors import CallcenterError

#: Inbound dispositions counted as missed (the clinic did not pick up).
MISSED = frozenset({"no_answer", "busy", "queue_timeout"})
#: Inbound dispositions of a dropped caller (opens a callback task).
DROPPED = frozenset({"no_answer", "busy", "queue_timeout", "abandoned", "ivr_abandoned"})
#: Task close reasons that mean the patient was reached.
CONTACT_CLOSE_REASONS = frozenset({"got_through", "reached"})
#: Task reasons of a dropped caller's callback task.
DROPPED_TASK_REASONS = frozenset({"missed_call", "abandoned_call"})
#: Leg outcomes in which the administrator's phone rang and nobody there picked up.
MISSED_LEG_OUTCOMES = frozenset({"no_answer", "busy"})
#: The outcome tags a call can carry (``callcenter.speech.tagger.TAGS``; a test keeps them equal).
OUTCOME_TAGS = (
    "price_objection",
    "booked",
    "callback_requested",
    "no_time",
    "fear",
    "went_elsewhere",
    "dissatisfied",
    "wrong_number",
    "do_not_call",
    "moved_away",
    "insurance",
    "thinking",
)
#: The objection tags: a reason the patient gives for not booking (``ObjectionFigures``).
OBJECTION_TAGS = ("price_objection", "thinking", "no_time", "fear")
#: The tag of a call in which an appointment was agreed.
BOOKED_TAG = "booked"
#: The longest period a report covers.
MAX_PERIOD_DAYS = 366


class BadPeriod(CallcenterError):
    """A report period that cannot be shown: malformed, reversed, in the future, too long."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days ``first``..``last`` (inclusive) in the clinic's time zone."""

    first: date
    last: date
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """Return the first instant of the period as UTC."""
        return datetime.combine(self.first, time(), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """Return the instant after the period as UTC (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def parse_period(
    first: str | None,
    last: str | None,
    *,
    today: date,
    timezone: str,
    default_days: int = 7,
) -> Period:
    """Return the period from ISO dates (``YYYY-MM-DD``); default: the last ``default_days`` days.

    :raises BadPeriod: a malformed date, a reversed period, one starting after today, or one
        longer than ``MAX_PERIOD_DAYS``.

    >>> parse_period("2026-11-01", "2026-11-07", today=date(2026, 11, 23), timezone="UTC").days[-1]
    datetime.date(2026, 11, 7)
    >>> parse_period(None, None, today=date(2026, 11, 23), timezone="UTC").first
    datetime.date(2026, 11, 17)
    """
    end = _parse_date(last, "to") if last else today
    begin = _parse_date(first, "from") if first else end - timedelta(days=default_days - 1)
    if begin > end:
        raise BadPeriod(f"period starts after it ends: {begin.isoformat()} > {end.isoformat()}")
    if begin > today:
        raise BadPeriod(f"period starts in the future: {begin.isoformat()}")
    if (end - begin).days + 1 > MAX_PERIOD_DAYS:
        raise BadPeriod(f"period longer than {MAX_PERIOD_DAYS} days")
    return Period(first=begin, last=end, timezone=timezone)


def _parse_date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise BadPeriod(f"{name}: expected a date YYYY-MM-DD, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """Thresholds of the figures (seconds, days)."""

    short_abandon_s: float = 5.0  # abandoned sooner than this after joining the queue: "short"
    service_level_s: float = 20.0  # answered within this many seconds of queue wait
    win_back_days: int = 14  # a booking within this many days after the drop wins it back


@dataclass(frozen=True, slots=True)
class LegRow:
    agent: str
    outcome: str
    answered_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallRow:
    linkedid: str
    direction: str
    disposition: str
    started_at: datetime
    phone: str | None = None
    agent: str | None = None
    wait_s: float = 0.0
    talk_s: float = 0.0
    queue_wait_s: float | None = None
    callback_task: str | None = None
    legs: tuple[LegRow, ...] = ()
    tags: tuple[str, ...] = ()  # outcome tags, any source (tagger or supervisor)
    last_agent: str | None = None  # who had the caller last (after transfers)


@dataclass(frozen=True, slots=True)
class GapRow:
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    started_at: datetime
    outcome: str | None


@dataclass(frozen=True, slots=True)
class TaskRow:
    task_id: int
    phone: str
    reason: str
    status: str
    opened_at: datetime
    closed_at: datetime | None = None
    close_reason: str | None = None
    drop_linkedids: tuple[str, ...] = ()
    attempts: tuple[AttemptRow, ...] = ()
    first_call_linkedid: str | None = None  # the call that opened the task


@dataclass(frozen=True, slots=True)
class BookingRow:
    """The patient with this number booked at ``at`` (an outcome «записан» or a new visit).

    ``linkedid``: the call the booking was made in, when it was one (an operator's outcome, or
    a call tagged ``booked``, whose ``at`` is the call's start); None for a visit.
    """

    phone: str | None  # None: a call from a withheld number (only its own call counts)
    at: datetime
    linkedid: str | None = None


@dataclass(frozen=True, slots=True)
class CallFigures:
    """Inbound call figures of one bucket (the period, a day, an hour of the day)."""

    inbound: int = 0
    answered: int = 0
    missed: int = 0
    no_answer: int = 0
    busy: int = 0
    queue_timeout: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    abandoned_real: int = 0
    ivr_abandoned: int = 0
    answered_rate: float | None = None
    missed_rate: float | None = None
    abandoned_rate: float | None = None
    avg_queue_wait_s: float | None = None
    p90_queue_wait_s: float | None = None
    service_level: float | None = None


@dataclass(frozen=True, slots=True)
class DropFigures:
    """What became of the dropped callers of the period."""

    dropped_calls: int = 0
    with_task: int = 0
    tasks: int = 0
    attempted: int = 0
    median_to_first_attempt_s: float | None = None
    p90_to_first_attempt_s: float | None = None
    median_to_contact_s: float | None = None
    p90_to_contact_s: float | None = None
    reached: int = 0
    reached_rate: float | None = None
    won_back: int = 0
    won_back_rate: float | None = None
    still_open: int = 0
    unreachable: int = 0


@dataclass(frozen=True, slots=True)
class AgentFigures:
    agent: str
    offered: int = 0
    answered: int = 0
    missed: int = 0
    avg_talk_s: float | None = None
    callbacks: int = 0
    #: Objection calls this administrator handled (``objection_handler``), and of those the
    #: ones won back (booked on the call or later, see ``ObjectionFigures``).
    objections: int = 0
    objections_booked: int = 0


@dataclass(frozen=True, slots=True)
class TagFigures:
    """How many of the period's calls carry an outcome tag, and their share of tagged calls."""

    tag: str
    calls: int = 0
    share: float | None = None


@dataclass(frozen=True, slots=True)
class ObjectionFigures:
    """What happened after the period's calls with an objection tag (``tag``; "all": any).

    Each call counts once per tag it carries (two objections on one call: once under each
    tag, once under "all"); a tag the tagger and a supervisor both gave counts once.

    * ``calls``: the period's calls (any direction) carrying the tag.
    * ``booked_on_call``: the call itself booked: it is tagged ``booked``, or an operator
      recorded the outcome «записан» on it.
    * ``won_back_later``: not booked on the call, but its number booked afterwards: an
      operator's «записан» on another call, a visit booked, or a call tagged ``booked``, at a
      moment after the call's start and at most ``ReportOptions.win_back_days`` after it. A call
      from a withheld number can only be booked on the call.
    * ``won_back`` = ``booked_on_call`` + ``won_back_later``; ``won_back_rate`` of ``calls``.
    * ``with_task``: a follow-up task was opened from the call (a task whose first call it is:
      the tags' ``objection_followup`` or ``callback_requested``); ``task_reached``: of those,
      the ones whose task reached the patient (an answered attempt, or closed as reached, as
      for dropped callers).
    * ``still_open``: not won back, and its follow-up task is still open.
    * ``lost``: not won back and no open task (no task, or it closed without a booking).
      ``won_back + still_open + lost == calls``.
    """

    tag: str
    calls: int = 0
    booked_on_call: int = 0
    won_back_later: int = 0
    won_back: int = 0
    won_back_rate: float | None = None
    with_task: int = 0
    task_reached: int = 0
    still_open: int = 0
    lost: int = 0


@dataclass(frozen=True, slots=True)
class ObjectionCall:
    """One objection call and what became of it: what both figure paths (rows, SQL) count.

    ``task_open``/``task_reached`` are about the follow-up tasks opened from the call (None when
    there is none): open if any of them is open, reached if any reached the patient.
    """

    linkedid: str
    tags: frozenset[str]
    handler: str | None
    booked_on_call: bool
    won_back_later: bool
    task_open: bool | None = None
    task_reached: bool = False


@dataclass(frozen=True, slots=True)
class GapFigures:
    count: int = 0
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Figures:
    period: Period
    options: ReportOptions
    totals: CallFigures
    by_day: list[tuple[date, CallFigures]]
    by_hour: list[tuple[int, CallFigures]]
    drops: DropFigures
    agents: list[AgentFigures]
    gaps: GapFigures = field(default_factory=GapFigures)
    tags: list[TagFigures] = field(default_factory=list)
    #: Calls of the period with at least one tag (the denominator of ``TagFigures.share``).
    tagged_calls: int = 0
    #: Each objection tag (``OBJECTION_TAGS``, in that order) and what followed it.
    objections: list[ObjectionFigures] = field(default_factory=list)
    #: The calls with any objection tag (``tag`` "all").
    objections_total: ObjectionFigures = field(default_factory=lambda: ObjectionFigures("all"))


def percentile(values: Iterable[float], share: float) -> float | None:
    """Return the nearest-rank percentile (``share`` in 0..1), or None for no values.

    >>> percentile(range(1, 11), 0.9), percentile([5.0], 0.5), percentile([], 0.9)
    (9, 5.0, None)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@dataclass(slots=True)
class CallCounts:
    """The additive parts of a bucket's call figures (merged across buckets by addition)."""

    dispositions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    waits: int = 0  # calls with a queue wait
    wait_sum: float = 0.0
    short: int = 0  # abandoned sooner than ``short_abandon_s`` after joining the queue
    within: int = 0  # answered within ``service_level_s``

    def add(self, other: CallCounts) -> None:
        """Add another bucket's counts to these."""
        for disposition, n in other.dispositions.items():
            self.dispositions[disposition] += n
        self.waits += other.waits
        self.wait_sum += other.wait_sum
        self.short += other.short
        self.within += other.within


def count_calls(
    calls: Iterable[CallRow], *, options: ReportOptions
) -> tuple[CallCounts, list[float]]:
    """Return the inbound calls' counts and their queue waits (outbound calls are ignored)."""
    counts = CallCounts()
    waits: list[float] = []
    for call in calls:
        if call.direction != "inbound":
            continue
        counts.dispositions[call.disposition] += 1
        if call.queue_wait_s is not None:
            waits.append(call.queue_wait_s)
        if call.disposition == "abandoned" and (call.queue_wait_s or 0.0) < options.short_abandon_s:
            counts.short += 1
        if call.disposition == "answered":
            wait = call.queue_wait_s if call.queue_wait_s is not None else call.wait_s
            if wait <= options.service_level_s:
                counts.within += 1
    counts.waits = len(waits)
    # fsum: correctly rounded whatever the order, so sums of parts (the database's hourly
    # rollups) give the very same float.
    counts.wait_sum = math.fsum(waits)
    return counts, waits


def call_figures(counts: CallCounts, *, p90_queue_wait_s: float | None) -> CallFigures:
    """Return a bucket's figures from its counts and its queue waits' 90th percentile."""
    by = counts.dispositions
    inbound = sum(by.values())
    missed = sum(by.get(d, 0) for d in MISSED)
    abandoned = by.get("abandoned", 0)
    answered = by.get("answered", 0)
    # A short abandon (caller hung up at once) was never offered a chance: out of the service
    # level's denominator, as are callers lost before the queue.
    offered = inbound - by.get("ivr_abandoned", 0) - counts.short
    return CallFigures(
        inbound=inbound,
        answered=answered,
        missed=missed,
        no_answer=by.get("no_answer", 0),
        busy=by.get("busy", 0),
        queue_timeout=by.get("queue_timeout", 0),
        abandoned=abandoned,
        abandoned_short=counts.short,
        abandoned_real=abandoned - counts.short,
        ivr_abandoned=by.get("ivr_abandoned", 0),
        answered_rate=_rate(answered, inbound),
        missed_rate=_rate(missed, inbound),
        abandoned_rate=_rate(abandoned, inbound),
        avg_queue_wait_s=counts.wait_sum / counts.waits if counts.waits else None,
        p90_queue_wait_s=p90_queue_wait_s,
        service_level=_rate(counts.within, offered),
    )


def summarize_calls(calls: Iterable[CallRow], *, options: ReportOptions) -> CallFigures:
    """Return the inbound figures of the calls (outbound ones are ignored)."""
    counts, waits = count_calls(calls, options=options)
    return call_figures(counts, p90_queue_wait_s=percentile(waits, 0.9))


def summarize_gaps(gaps: Iterable[GapRow], *, period: Period, now: datetime) -> GapFigures:
    """Return how many AMI gaps overlap the period and their time inside it."""
    count = 0
    total = 0.0
    for gap in gaps:
        begin = max(gap.started_at, period.start)
        end = min(gap.ended_at or now, period.end)
        if gap.started_at < period.end and (gap.ended_at is None or gap.ended_at > period.start):
            count += 1
            total += max(0.0, (end - begin).total_seconds())
    return GapFigures(count=count, total_s=total)


def summarize_drops(
    calls: Sequence[CallRow],
    tasks: Iterable[TaskRow],
    bookings: Iterable[BookingRow],
    *,
    options: ReportOptions,
) -> DropFigures:
    """Return what became of the period's dropped callers and their callback tasks.

    ``tasks``: the dropped-caller tasks opened in the period; ``bookings``: any bookings of
    their numbers.
    """
    tasks = [task for task in tasks if task.reason in DROPPED_TASK_REASONS]
    tasked_calls = {linkedid for task in tasks for linkedid in task.drop_linkedids}
    dropped = [c for c in calls if c.direction == "inbound" and c.disposition in DROPPED]
    return summarize_tasks(
        tasks,
        bookings,
        dropped_calls=len(dropped),
        with_task=sum(1 for c in dropped if c.linkedid in tasked_calls),
        options=options,
    )


def summarize_tasks(
    tasks: Iterable[TaskRow],
    bookings: Iterable[BookingRow],
    *,
    dropped_calls: int,
    with_task: int,
    options: ReportOptions,
) -> DropFigures:
    """Return the drop figures of the dropped-caller tasks, given the period's drop counts."""
    booked: dict[str, list[datetime]] = defaultdict(list)
    for booking in bookings:
        if booking.phone is not None:
            booked[booking.phone].append(booking.at)
    to_attempt: list[float] = []
    to_contact: list[float] = []
    n_tasks = attempted = reached = won = still_open = unreachable = 0
    window = timedelta(days=options.win_back_days)
    for task in tasks:
        if task.reason not in DROPPED_TASK_REASONS:
            continue
        n_tasks += 1
        attempts = sorted(task.attempts, key=lambda a: a.started_at)
        if attempts:
            attempted += 1
            to_attempt.append((attempts[0].started_at - task.opened_at).total_seconds())
        contact = _first_contact(task, attempts)
        if contact is not None:
            reached += 1
            to_contact.append(max(0.0, (contact - task.opened_at).total_seconds()))
        if any(task.opened_at <= at <= task.opened_at + window for at in booked[task.phone]):
            won += 1
        if task.status == "open":
            still_open += 1
        elif task.close_reason == "unreachable":
            unreachable += 1
    return drop_figures(
        dropped_calls=dropped_calls,
        with_task=with_task,
        tasks=n_tasks,
        attempted=attempted,
        to_attempt=(percentile(to_attempt, 0.5), percentile(to_attempt, 0.9)),
        to_contact=(percentile(to_contact, 0.5), percentile(to_contact, 0.9)),
        reached=reached,
        won_back=won,
        still_open=still_open,
        unreachable=unreachable,
    )


def drop_figures(
    *,
    dropped_calls: int,
    with_task: int,
    tasks: int,
    attempted: int,
    to_attempt: tuple[float | None, float | None],
    to_contact: tuple[float | None, float | None],
    reached: int,
    won_back: int,
    still_open: int,
    unreachable: int,
) -> DropFigures:
    """Return the drop figures from their counts and (median, p90) delays, with the rates."""
    return DropFigures(
        dropped_calls=dropped_calls,
        with_task=with_task,
        tasks=tasks,
        attempted=attempted,
        median_to_first_attempt_s=to_attempt[0],
        p90_to_first_attempt_s=to_attempt[1],
        median_to_contact_s=to_contact[0],
        p90_to_contact_s=to_contact[1],
        reached=reached,
        reached_rate=_rate(reached, tasks),
        won_back=won_back,
        won_back_rate=_rate(won_back, tasks),
        still_open=still_open,
        unreachable=unreachable,
    )


def _first_contact(task: TaskRow, attempts: Sequence[AttemptRow]) -> datetime | None:
    moments = [a.started_at for a in attempts if a.outcome == "answered"]
    if task.close_reason in CONTACT_CLOSE_REASONS and task.closed_at is not None:
        moments.append(task.closed_at)
    return min(moments) if moments else None


def summarize_agents(calls: Iterable[CallRow]) -> list[AgentFigures]:
    """Return per-administrator figures: calls rung, answered, missed on their ring, callbacks."""
    offered: dict[str, set[str]] = defaultdict(set)
    answered: dict[str, set[str]] = defaultdict(set)
    missed: dict[str, int] = defaultdict(int)
    talk: dict[str, list[float]] = defaultdict(list)
    callbacks: dict[str, int] = defaultdict(int)
    for call in calls:
        if call.direction != "inbound":
            if call.callback_task is not None and call.agent:
                callbacks[call.agent] += 1
            continue
        for leg in call.legs:
            offered[leg.agent].add(call.linkedid)
            if leg.outcome in MISSED_LEG_OUTCOMES:
                missed[leg.agent] += 1
            if leg.answered_at is not None or leg.outcome == "answered":
                answered[leg.agent].add(call.linkedid)
                if leg.answered_at is not None and leg.ended_at is not None:
                    talk[leg.agent].append((leg.ended_at - leg.answered_at).total_seconds())
    agents = sorted(set(offered) | set(callbacks))
    return [
        AgentFigures(
            agent=agent,
            offered=len(offered[agent]),
            answered=len(answered[agent]),
            missed=missed[agent],
            avg_talk_s=math.fsum(talk[agent]) / len(talk[agent]) if talk[agent] else None,
            callbacks=callbacks[agent],
        )
        for agent in agents
    ]


def summarize_tags(calls: Iterable[CallRow]) -> tuple[list[TagFigures], int]:
    """Return each tag's calls and share of the tagged calls (by tag name), and the tagged calls."""
    counts: dict[str, int] = defaultdict(int)
    tagged = 0
    for call in calls:
        if call.tags:
            tagged += 1
            for tag in set(call.tags):
                counts[tag] += 1
    return tag_figures(counts, tagged_calls=tagged), tagged


def tag_figures(counts: dict[str, int], *, tagged_calls: int) -> list[TagFigures]:
    """Return the tag figures from each tag's call count, sorted by tag name."""
    return [
        TagFigures(tag=tag, calls=n, share=_rate(n, tagged_calls))
        for tag, n in sorted(counts.items())
    ]


def objection_handler(call: CallRow) -> str | None:
    """Return the administrator an objection call counts for: who had the caller last.

    After a transfer that is the one transferred to (``last_agent``); otherwise the one who
    answered (``agent``). None (not counted for anyone) when neither is known.
    """
    handler = call.last_agent if call.last_agent is not None else call.agent
    return handler or None


def objection_calls(
    calls: Iterable[CallRow],
    followups: Iterable[TaskRow],
    bookings: Iterable[BookingRow],
    *,
    options: ReportOptions,
) -> list[ObjectionCall]:
    """Return the calls with an objection tag and what became of each (``ObjectionFigures``).

    ``followups``: tasks opened from the period's calls (``TaskRow.first_call_linkedid``);
    ``bookings``: bookings of any number (outcomes «записан» with their call, visits, calls
    tagged ``booked``) from the period's start to ``win_back_days`` after its end.
    """
    booked_at: dict[str, list[datetime]] = defaultdict(list)
    booked_calls: set[str] = set()
    for booking in bookings:
        if booking.phone is not None:
            booked_at[booking.phone].append(booking.at)
        if booking.linkedid is not None:
            booked_calls.add(booking.linkedid)
    tasks: dict[str, list[TaskRow]] = defaultdict(list)
    for task in followups:
        if task.first_call_linkedid is not None:
            tasks[task.first_call_linkedid].append(task)
    window = timedelta(days=options.win_back_days)
    result = []
    for call in calls:
        tags = frozenset(call.tags) & frozenset(OBJECTION_TAGS)
        if not tags:
            continue
        on_call = BOOKED_TAG in call.tags or call.linkedid in booked_calls
        later = (
            not on_call
            and call.phone is not None
            and any(
                call.started_at < at <= call.started_at + window for at in booked_at[call.phone]
            )
        )
        own = tasks.get(call.linkedid, [])
        result.append(
            ObjectionCall(
                linkedid=call.linkedid,
                tags=tags,
                handler=objection_handler(call),
                booked_on_call=on_call,
                won_back_later=later,
                task_open=any(t.status == "open" for t in own) if own else None,
                task_reached=any(
                    _first_contact(t, sorted(t.attempts, key=lambda a: a.started_at)) is not None
                    for t in own
                ),
            )
        )
    return result


def summarize_objections(
    calls: Iterable[ObjectionCall],
) -> tuple[list[ObjectionFigures], ObjectionFigures, dict[str, tuple[int, int]]]:
    """Return each objection tag's figures, those of any objection, and per administrator
    ``(objection calls, of those won back)``."""
    counts: dict[str, dict[str, int]] = {tag: defaultdict(int) for tag in (*OBJECTION_TAGS, "all")}
    agents: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for call in calls:
        won = call.booked_on_call or call.won_back_later
        for tag in (*sorted(call.tags), "all"):
            c = counts[tag]
            c["calls"] += 1
            c["booked_on_call"] += call.booked_on_call
            c["won_back_later"] += call.won_back_later
            c["won_back"] += won
            c["with_task"] += call.task_open is not None
            c["task_reached"] += call.task_reached
            c["still_open"] += not won and call.task_open is True
            c["lost"] += not won and call.task_open is not True
        if call.handler is not None:
            agents[call.handler][0] += 1
            agents[call.handler][1] += won
    figures = {
        tag: ObjectionFigures(tag=tag, won_back_rate=_rate(c["won_back"], c["calls"]), **c)
        for tag, c in counts.items()
    }
    total = figures.pop("all")
    return (
        [figures[tag] for tag in OBJECTION_TAGS],
        total,
        {agent: (n, won) for agent, (n, won) in agents.items()},
    )


def with_objections(
    agents: Sequence[AgentFigures], per_agent: dict[str, tuple[int, int]]
) -> list[AgentFigures]:
    """Return the administrators' figures with their objection counts (new ones added, sorted)."""
    by_agent = {a.agent: a for a in agents}
    for agent in per_agent:
        by_agent.setdefault(agent, AgentFigures(agent=agent))
    return [
        replace(
            by_agent[agent],
            objections=per_agent.get(agent, (0, 0))[0],
            objections_booked=per_agent.get(agent, (0, 0))[1],
        )
        for agent in sorted(by_agent)
    ]


def compute_figures(
    *,
    period: Period,
    calls: Sequence[CallRow],
    gaps: Iterable[GapRow] = (),
    tasks: Iterable[TaskRow] = (),
    bookings: Iterable[BookingRow] = (),
    followups: Iterable[TaskRow] = (),
    booked_calls: Iterable[BookingRow] = (),
    options: ReportOptions | None = None,
    now: datetime | None = None,
) -> Figures:
    """Return every dashboard figure for the period's rows (calls already limited to it).

    ``followups`` and ``booked_calls`` (calls tagged ``booked``, as bookings) serve only the
    objection figures; these also count ``bookings``.
    """
    options = options or ReportOptions()
    bookings = list(bookings)
    zone = period.zone
    by_day: dict[date, list[CallRow]] = {day: [] for day in period.days}
    by_hour: dict[int, list[CallRow]] = {hour: [] for hour in range(24)}
    for call in calls:
        local = call.started_at.astimezone(zone)
        by_day.setdefault(local.date(), []).append(call)
        by_hour[local.hour].append(call)
    tags, tagged = summarize_tags(calls)
    objections, objections_total, per_agent = summarize_objections(
        objection_calls(calls, followups, [*bookings, *booked_calls], options=options)
    )
    return Figures(
        period=period,
        options=options,
        totals=summarize_calls(calls, options=options),
        by_day=[(day, summarize_calls(rows, options=options)) for day, rows in by_day.items()],
        by_hour=[(hour, summarize_calls(rows, options=options)) for hour, rows in by_hour.items()],
        drops=summarize_drops(calls, tasks, bookings, options=options),
        agents=with_objections(summarize_agents(calls), per_agent),
        gaps=summarize_gaps(gaps, period=period, now=now or datetime.now(UTC)),
        tags=tags,
        tagged_calls=tagged,
        objections=objections,
        objections_total=objections_total,
    )


def figures_payload(figures: Figures) -> dict[str, Any]:
    """Return the figures as a JSON-ready dict (dates as ISO strings)."""
    return {
        "period": {
            "from": figures.period.first.isoformat(),
            "to": figures.period.last.isoformat(),
            "timezone": figures.period.timezone,
        },
        "options": asdict(figures.options),
        "totals": asdict(figures.totals),
        "by_day": [{"day": day.isoformat(), **asdict(f)} for day, f in figures.by_day],
        "by_hour": [{"hour": hour, **asdict(f)} for hour, f in figures.by_hour],
        "drops": asdict(figures.drops),
        "agents": [asdict(a) for a in figures.agents],
        "gaps": asdict(figures.gaps),
        "tags": [asdict(t) for t in figures.tags],
        "tagged_calls": figures.tagged_calls,
        "objections": [asdict(o) for o in figures.objections],
        "objections_total": asdict(figures.objections_total),
    }


def figure_csv_rows(figures: Figures) -> Iterator[list[str]]:
    """Yield the figures as CSV rows: a header, then the period, each day and each hour."""
    names = [f.name for f in fields(CallFigures)]
    yield ["bucket", *names]
    buckets: list[tuple[str, CallFigures]] = [("period", figures.totals)]
    buckets += [(day.isoformat(), f) for day, f in figures.by_day]
    buckets += [(f"{hour:02d}:00", f) for hour, f in figures.by_hour]
    for label, figs in buckets:
        yield [label, *(_cell(getattr(figs, name)) for name in names)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)
