"""Hourly rollups of the dashboard's figures on PostgreSQL (tables of ``0013_report_hours``).

A period of whole UTC hours (every Russian zone: whole-hour offsets) is read from a few rows
an hour instead of from every call. Nothing is approximated: an hour keeps its calls' waits
themselves (sorted, packed), so the thresholds of the request and the percentiles are exact,
and the figures equal ``callcenter.reports.figures`` over the rows (tests compare them).

Freshness: row triggers on ``calls``, ``call_legs``, ``call_tags`` and ``call_outcomes`` add
the hour of each changed call to ``report_stale_hours``. ``refresh`` (run before every read,
and by the maintenance job) takes the period's stale marks, recomputes those hours and the
hours never computed, and commits. A mark is deleted in a statement that runs before the
hour is recomputed by later statements, each on a newer snapshot: a change that committed
before its mark was taken is always in the recomputed hour, and a change still uncommitted
then keeps its mark for the next refresh. Refreshes of one database take turns (an advisory
lock), so two never write the same hour.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import bindparam

from callcenter.reports.figures import (
    CONTACT_CLOSE_REASONS,
    DROPPED,
    DROPPED_TASK_REASONS,
    MISSED_LEG_OUTCOMES,
    OBJECTION_TAGS,
    AgentFigures,
    CallCounts,
    CallFigures,
    Period,
    ReportOptions,
    call_figures,
    percentile,
)
from callcenter.store.db import lock_key

HOUR = timedelta(hours=1)
#: Hours recomputed per transaction: a first read of a long period commits as it goes and
#: never holds stale marks (which writers' triggers wait on) for long.
CHUNK_HOURS = 7 * 24
_LOCK = "report_hours"


def covers(period: Period) -> bool:
    """Whether the period's local days and hours are whole UTC hours (the rollups' grain).

    True for every zone whose offsets are whole hours and change on the hour over the period.
    """
    from callcenter.store.reports import utc_offsets  # the one definition of the offsets

    if period.start.timestamp() % 3600 or period.end.timestamp() % 3600:
        return False
    return all(
        offset % 3600 == 0 and (until == math.inf or until % 3600 == 0)
        for until, offset in utc_offsets(period)
    )


def _hours(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start) / HOUR)
    return [start + i * HOUR for i in range(count)]


# --- Refresh ------------------------------------------------------------------------------

_HOUR_OF = "date_trunc('hour', {column}, 'UTC')"
_CALL_HOUR = _HOUR_OF.format(column="c.started_at")
# The hours to compute, as an index range (lo, hi) narrowed by the list itself.
_CALLS_IN = f"c.started_at >= :lo AND c.started_at < :hi AND {_CALL_HOUR} = ANY(:hours)"


def _packed(expression: str, *, order: bool, where: str) -> str:
    """SQL: the group's non-null values of ``expression`` as packed float64 (``''`` if none)."""
    by = f" ORDER BY {expression}" if order else ""
    return (
        f"coalesce(string_agg(float8send(({expression})::float8), ''::bytea{by}) "
        f"FILTER (WHERE ({expression}) IS NOT NULL AND {where}), ''::bytea)"
    )


_DROPPED = ", ".join(f"'{d}'" for d in sorted(DROPPED))
_DROP_REASONS = ", ".join(f"'{r}'" for r in sorted(DROPPED_TASK_REASONS))
_CONTACT_REASONS = ", ".join(f"'{r}'" for r in sorted(CONTACT_CLOSE_REASONS))
_EPOCH = "extract(epoch FROM {})::float8"
_INSERT_HOURS = f"""
INSERT INTO report_hours (hour, tagged, drop_tasks, computed_at)
SELECT h.hour, coalesce(t.tagged, 0), coalesce(d.pairs, ''::bytea), now()
FROM unnest(CAST(:hours AS timestamptz[])) AS h(hour)
LEFT JOIN (
    SELECT {_CALL_HOUR} AS hour, count(DISTINCT c.linkedid) AS tagged
    FROM calls c JOIN call_tags t ON t.linkedid = c.linkedid
    WHERE {_CALLS_IN}
    GROUP BY 1
) t ON t.hour = h.hour
LEFT JOIN (
    SELECT hour, string_agg(float8send(call_id::float8) || float8send(opened), ''::bytea)
        AS pairs
    FROM (
        SELECT DISTINCT {_CALL_HOUR} AS hour, c.id AS call_id, {_EPOCH.format("t.opened_at")}
            AS opened
        FROM calls c
        JOIN task_events e ON e.call_linkedid = c.linkedid
        JOIN tasks t ON t.id = e.task_id
        WHERE c.direction = 'inbound' AND c.disposition IN ({_DROPPED})
            AND e.kind IN ('opened', 'repeat_drop') AND t.reason IN ({_DROP_REASONS})
            AND {_CALLS_IN}
    ) links
    GROUP BY hour
) d ON d.hour = h.hour
"""

_TASK_HOUR = _HOUR_OF.format(column="t.opened_at")
_TASKS_IN = (
    f"t.opened_at >= :lo AND t.opened_at < :hi AND {_TASK_HOUR} = ANY(:hours) "
    f"AND t.reason IN ({_DROP_REASONS})"
)
_INSERT_TASKS = f"""
INSERT INTO report_hour_tasks (hour, tasks, to_attempt, to_contact, still_open, unreachable)
WITH attempts AS (
    SELECT a.task_id, min(a.started_at) AS first,
        min(a.started_at) FILTER (WHERE a.outcome = 'answered') AS answer
    FROM task_attempts a JOIN tasks t ON t.id = a.task_id
    WHERE {_TASKS_IN}
    GROUP BY a.task_id
), per_task AS (
    SELECT {_TASK_HOUR} AS hour, t.status, t.close_reason,
        {_EPOCH.format("a.first - t.opened_at")} AS to_attempt,
        -- LEAST skips NULLs: the earlier of the first answer and a closing by contact.
        least(a.answer, CASE WHEN t.close_reason IN ({_CONTACT_REASONS})
            AND t.closed_at IS NOT NULL THEN t.closed_at END) AS contact,
        t.opened_at
    FROM tasks t LEFT JOIN attempts a ON a.task_id = t.id
    WHERE {_TASKS_IN}
)
SELECT hour, count(*),
    {_packed("to_attempt", order=True, where="true")},
    {
    _packed(
        f"greatest(0.0, {_EPOCH.format('contact - opened_at')})",
        order=True,
        where="contact IS NOT NULL",
    )
},
    count(*) FILTER (WHERE status = 'open'),
    count(*) FILTER (WHERE status <> 'open' AND close_reason = 'unreachable')
FROM per_task
GROUP BY hour
"""

_WAIT = "c.queue_wait_s"
_SL_WAIT = "coalesce(c.queue_wait_s, c.wait_s)"
_INSERT_CALLS = f"""
INSERT INTO report_hour_calls (hour, disposition, calls, waits, sl_waits)
SELECT {_CALL_HOUR}, c.disposition, count(*),
    {_packed(_WAIT, order=True, where="true")},
    {_packed(_SL_WAIT, order=True, where="c.disposition = 'answered'")}
FROM calls c
WHERE c.direction = 'inbound' AND {_CALLS_IN}
GROUP BY 1, 2
"""

_MISSED = ", ".join(f"'{outcome}'" for outcome in sorted(MISSED_LEG_OUTCOMES))
_TALK = "extract(epoch FROM l.ended_at - l.answered_at)"
_INSERT_AGENTS = f"""
INSERT INTO report_hour_agents (hour, agent, offered, answered, missed, talks, callbacks)
WITH per_call AS (
    SELECT {_CALL_HOUR} AS hour, l.agent, l.call_id,
        bool_or(l.answered_at IS NOT NULL OR l.outcome = 'answered') AS answered,
        count(*) FILTER (WHERE l.outcome IN ({_MISSED})) AS missed,
        {_packed(_TALK, order=False, where="true")} AS talks
    FROM call_legs l JOIN calls c ON c.id = l.call_id
    WHERE c.direction = 'inbound' AND {_CALLS_IN}
    GROUP BY 1, 2, 3
), legs AS (
    SELECT hour, agent, count(*) AS offered, count(*) FILTER (WHERE answered) AS answered,
        sum(missed) AS missed, string_agg(talks, ''::bytea) AS talks
    FROM per_call GROUP BY 1, 2
), callbacks AS (
    SELECT {_CALL_HOUR} AS hour, c.agent, count(*) AS callbacks
    FROM calls c
    WHERE c.direction <> 'inbound' AND c.callback_task IS NOT NULL
        AND c.agent IS NOT NULL AND c.agent <> '' AND {_CALLS_IN}
    GROUP BY 1, 2
)
SELECT coalesce(l.hour, b.hour), coalesce(l.agent, b.agent), coalesce(l.offered, 0),
    coalesce(l.answered, 0), coalesce(l.missed, 0), coalesce(l.talks, ''::bytea),
    coalesce(b.callbacks, 0)
FROM legs l FULL JOIN callbacks b ON b.hour = l.hour AND b.agent = l.agent
"""

_INSERT_TAGS = f"""
INSERT INTO report_hour_tags (hour, tag, calls)
SELECT {_CALL_HOUR}, t.tag, count(DISTINCT c.linkedid)
FROM calls c JOIN call_tags t ON t.linkedid = c.linkedid
WHERE {_CALLS_IN}
GROUP BY 1, 2
"""

_OBJECTIONS = ", ".join(f"'{tag}'" for tag in OBJECTION_TAGS)
_INSERT_OBJECTIONS = f"""
INSERT INTO report_hour_objections
    (hour, linkedid, tag, phone, start_ts, last_agent, agent, booked)
SELECT DISTINCT {_CALL_HOUR}, c.linkedid, t.tag, c.phone, c.start_ts, c.last_agent, c.agent,
    EXISTS (SELECT 1 FROM call_tags b WHERE b.linkedid = c.linkedid AND b.tag = 'booked')
    OR EXISTS (
        SELECT 1 FROM call_outcomes o WHERE o.linkedid = c.linkedid AND o.outcome = 'booked'
    )
FROM calls c JOIN call_tags t ON t.linkedid = c.linkedid
WHERE t.tag IN ({_OBJECTIONS}) AND {_CALLS_IN}
"""

_HOURS_PARAM = bindparam("hours", type_=ARRAY(TIMESTAMP(timezone=True)))


def refresh(bind: Engine | Connection, *, start: datetime, end: datetime) -> int:
    """Recompute the stale and never-computed hours of ``[start, end)``; return how many.

    On an Engine each chunk of hours commits on its own; on a Connection (the caller's
    transaction) everything runs inside it.
    """
    done = 0
    for chunk in _chunks(_hours(start, end)):
        if isinstance(bind, Engine):
            with bind.begin() as connection:
                done += _refresh_chunk(connection, chunk)
        else:
            done += _refresh_chunk(bind, chunk)
    return done


def refresh_recent(
    session_factory: sessionmaker[Session], *, days: int, now: datetime | None = None
) -> int:
    """Refresh the hours of the last ``days`` days up to the current hour (PostgreSQL; 0 on
    any other database); return how many were recomputed."""
    engine = session_factory.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return 0
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) + HOUR
    return refresh(engine, start=end - timedelta(days=days), end=end)


def _chunks(hours: Sequence[datetime]) -> Iterable[Sequence[datetime]]:
    for at in range(0, len(hours), CHUNK_HOURS):
        yield hours[at : at + CHUNK_HOURS]


def _refresh_chunk(connection: Connection, hours: Sequence[datetime]) -> int:
    lo, hi = hours[0], hours[-1] + HOUR
    range_ = {"lo": lo, "hi": hi}
    lock_key(connection, key=_LOCK)
    stale = set(
        connection.execute(
            text("DELETE FROM report_stale_hours WHERE hour >= :lo AND hour < :hi RETURNING hour"),
            range_,
        ).scalars()
    )
    present = set(
        connection.execute(
            text("SELECT hour FROM report_hours WHERE hour >= :lo AND hour < :hi"), range_
        ).scalars()
    )
    todo = sorted(stale | (set(hours) - present))
    if not todo:
        return 0
    params = {"lo": todo[0], "hi": todo[-1] + HOUR, "hours": todo}
    connection.execute(
        text("DELETE FROM report_hours WHERE hour = ANY(:hours)").bindparams(_HOURS_PARAM),
        params,
    )
    for statement in (
        _INSERT_HOURS,
        _INSERT_TASKS,
        _INSERT_CALLS,
        _INSERT_AGENTS,
        _INSERT_TAGS,
        _INSERT_OBJECTIONS,
    ):
        connection.execute(text(statement).bindparams(_HOURS_PARAM), params)
    return len(todo)


# --- Read ---------------------------------------------------------------------------------


def unpack(packed: bytes) -> array[float]:
    """Return the float64 values packed by ``float8send`` (big-endian) in the database."""
    values = array("d")
    values.frombytes(packed)
    if sys.byteorder == "little":
        values.byteswap()
    return values


@dataclass(slots=True)
class _Bucket:
    """A day's, an hour of day's or the period's calls, as read from the hours."""

    counts: CallCounts = field(default_factory=CallCounts)
    waits: list[bytes] = field(default_factory=list)  # packed, as stored

    def figures(self) -> CallFigures:
        # Joined and unpacked at once, summed and sorted in C: a year is a million waits.
        values = unpack(b"".join(self.waits))
        self.counts.waits = len(values)
        self.counts.wait_sum = math.fsum(values)
        return call_figures(self.counts, p90_queue_wait_s=percentile(values, 0.9))


@dataclass(frozen=True, slots=True)
class CallBuckets:
    """The period's call figures: overall, by local day and by local hour of day."""

    totals: CallFigures
    by_day: list[tuple[date, CallFigures]]
    by_hour: list[tuple[int, CallFigures]]


def read_calls(connection: Connection, *, period: Period, options: ReportOptions) -> CallBuckets:
    """Return the period's call figures from the hours (refreshed by the caller)."""
    totals = _Bucket()
    days: dict[date, _Bucket] = {day: _Bucket() for day in period.days}
    hours: dict[int, _Bucket] = {hour: _Bucket() for hour in range(24)}
    zone = period.zone
    rows = connection.execute(
        text(
            "SELECT hour, disposition, calls, waits, sl_waits FROM report_hour_calls "
            "WHERE hour >= :start AND hour < :end"
        ),
        {"start": period.start, "end": period.end},
    )
    for hour, disposition, calls, packed_waits, packed_sl in rows:
        local = hour.astimezone(zone)
        waits = unpack(packed_waits)
        short = within = 0
        if disposition == "abandoned":
            # As ``figures.count_calls``: a call without a queue wait counts as 0 s.
            short = bisect_left(waits, options.short_abandon_s)
            if options.short_abandon_s > 0.0:
                short += calls - len(waits)
        elif disposition == "answered":
            within = bisect_right(unpack(packed_sl), options.service_level_s)
        for bucket in (
            totals,
            days.setdefault(local.date(), _Bucket()),
            hours[local.hour],
        ):
            bucket.counts.dispositions[disposition] += calls
            bucket.counts.short += short
            bucket.counts.within += within
            bucket.waits.append(packed_waits)
    return CallBuckets(
        totals=totals.figures(),
        by_day=[(day, bucket.figures()) for day, bucket in days.items()],
        by_hour=[(hour, bucket.figures()) for hour, bucket in hours.items()],
    )


def read_agents(connection: Connection, *, period: Period) -> list[AgentFigures]:
    """Return the per-administrator figures (see ``figures.summarize_agents``)."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    talks: dict[str, list[float]] = defaultdict(list)
    for agent, offered, answered, missed, packed, callbacks in connection.execute(
        text(
            "SELECT agent, offered, answered, missed, talks, callbacks FROM report_hour_agents "
            "WHERE hour >= :start AND hour < :end"
        ),
        {"start": period.start, "end": period.end},
    ):
        figures = sums[agent]
        figures[0] += offered
        figures[1] += answered
        figures[2] += missed
        figures[3] += callbacks
        talks[agent].extend(unpack(packed))
    return [
        AgentFigures(
            agent=agent,
            offered=offered,
            answered=answered,
            missed=missed,
            avg_talk_s=math.fsum(talks[agent]) / len(talks[agent]) if talks[agent] else None,
            callbacks=callbacks,
        )
        for agent, (offered, answered, missed, callbacks) in sorted(sums.items())
    ]


def read_tags(connection: Connection, *, period: Period) -> tuple[dict[str, int], int]:
    """Return each tag's calls in the period, and the calls with any tag."""
    bounds = {"start": period.start, "end": period.end}
    per_tag: dict[str, int] = defaultdict(int)
    for tag, calls in connection.execute(
        text(
            "SELECT tag, sum(calls) FROM report_hour_tags "
            "WHERE hour >= :start AND hour < :end GROUP BY tag"
        ),
        bounds,
    ):
        per_tag[tag] = int(calls)
    tagged = connection.execute(
        text("SELECT sum(tagged) FROM report_hours WHERE hour >= :start AND hour < :end"),
        bounds,
    ).scalar()
    return dict(per_tag), int(tagged or 0)


def read_objection_rows(connection: Connection, *, period: Period) -> list[Any]:
    """Return the period's objection calls' rows, as ``reports._objection_calls`` reads them:
    ``linkedid, phone, start_ts, last_agent, agent, tag, booked``."""
    return list(
        connection.execute(
            text(
                "SELECT linkedid, phone, start_ts, last_agent, agent, tag, booked "
                "FROM report_hour_objections WHERE hour >= :start AND hour < :end"
            ),
            {"start": period.start, "end": period.end},
        )
    )


@dataclass(frozen=True, slots=True)
class TaskFigures:
    """The period's dropped callers' tasks, as ``reports.drop_figures`` takes them."""

    with_task: int
    tasks: int
    to_attempt: list[float]
    to_contact: list[float]
    still_open: int
    unreachable: int


def read_tasks(connection: Connection, *, period: Period) -> TaskFigures:
    """Return the period's callback tasks of dropped callers (opened in the period) and how
    many of the period's dropped calls opened or joined one of them."""
    bounds = {"start": period.start, "end": period.end}
    start, end = period.start.timestamp(), period.end.timestamp()
    linked: set[float] = set()
    for (packed,) in connection.execute(
        text("SELECT drop_tasks FROM report_hours WHERE hour >= :start AND hour < :end"),
        bounds,
    ):
        pairs = unpack(packed)
        for at in range(0, len(pairs), 2):
            if start <= pairs[at + 1] < end:
                linked.add(pairs[at])
    tasks = still_open = unreachable = 0
    to_attempt: list[float] = []
    to_contact: list[float] = []
    for n, attempt, contact, n_open, n_unreachable in connection.execute(
        text(
            "SELECT tasks, to_attempt, to_contact, still_open, unreachable "
            "FROM report_hour_tasks WHERE hour >= :start AND hour < :end"
        ),
        bounds,
    ):
        tasks += n
        to_attempt.extend(unpack(attempt))
        to_contact.extend(unpack(contact))
        still_open += n_open
        unreachable += n_unreachable
    return TaskFigures(
        with_task=len(linked),
        tasks=tasks,
        to_attempt=to_attempt,
        to_contact=to_contact,
        still_open=still_open,
        unreachable=unreachable,
    )


def objection_linkedids(*, period: Period) -> Any:
    """Return SQL: the period's objection calls' linkedids (for ``IN``)."""
    return (
        text("SELECT linkedid FROM report_hour_objections WHERE hour >= :start AND hour < :end")
        .bindparams(start=period.start, end=period.end)
        .columns(linkedid=String)
    )


def stale_hours(connection: Connection) -> list[datetime]:
    """Return the hours marked stale, in order."""
    return [
        hour.astimezone(UTC)
        for hour in connection.execute(
            text("SELECT hour FROM report_stale_hours ORDER BY hour")
        ).scalars()
    ]
