"""Reads for the supervisor reports: rows for ``callcenter.reports.figures``, the call list.

The caller owns the session. Rows are streamed from the database in batches
(``yield_per``), so a year of calls never sits in memory as ORM objects.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Float,
    Integer,
    Interval,
    String,
    and_,
    bindparam,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from callcenter.errors import CallcenterError
from callcenter.patients.phone import normalize_phone
from callcenter.reports.figures import (
    BOOKED_TAG,
    CONTACT_CLOSE_REASONS,
    DROPPED,
    DROPPED_TASK_REASONS,
    MISSED_LEG_OUTCOMES,
    OBJECTION_TAGS,
    AgentFigures,
    AttemptRow,
    BookingRow,
    CallCounts,
    CallRow,
    DropFigures,
    Figures,
    GapRow,
    LegRow,
    ObjectionCall,
    Period,
    ReportOptions,
    TaskRow,
    call_figures,
    compute_figures,
    drop_figures,
    percentile,
    summarize_gaps,
    summarize_objections,
    tag_figures,
    with_objections,
)
from callcenter.store import report_hours, snapshot_reads
from callcenter.store.models import AmiGap, Call, CallLeg, Task, TaskAttempt, TaskEvent
from callcenter.store.models_patients import PatientPhone, Visit
from callcenter.store.models_speech import CallTag
from callcenter.store.models_web import CallOutcome

_BATCH = 5_000


class BadCursor(CallcenterError):
    """A call-list page cursor that this server did not hand out."""


def load_call_rows(session: Session, *, period: Period) -> list[CallRow]:
    """Return the period's calls (by start time) with their administrator legs."""
    legs: dict[int, list[LegRow]] = defaultdict(list)
    leg_query = (
        select(
            CallLeg.call_id, CallLeg.agent, CallLeg.outcome, CallLeg.answered_at, CallLeg.ended_at
        )
        .join(Call, Call.id == CallLeg.call_id)
        .where(Call.started_at >= period.start, Call.started_at < period.end)
        .order_by(CallLeg.id)
    )
    for call_id, agent, outcome, answered_at, ended_at in session.execute(
        leg_query.execution_options(yield_per=_BATCH)
    ):
        legs[call_id].append(
            LegRow(agent=agent, outcome=outcome, answered_at=answered_at, ended_at=ended_at)
        )
    tags: dict[str, list[str]] = defaultdict(list)
    tag_query = (
        select(CallTag.linkedid, CallTag.tag)
        .join(Call, Call.linkedid == CallTag.linkedid)
        .where(Call.started_at >= period.start, Call.started_at < period.end)
    )
    for linkedid, tag in session.execute(tag_query):
        tags[linkedid].append(tag)
    call_query = select(
        Call.id,
        Call.linkedid,
        Call.direction,
        Call.disposition,
        Call.start_ts,
        Call.phone,
        Call.agent,
        Call.wait_s,
        Call.talk_s,
        Call.queue_wait_s,
        Call.callback_task,
        Call.last_agent,
    ).where(Call.started_at >= period.start, Call.started_at < period.end)
    return [
        CallRow(
            linkedid=linkedid,
            direction=direction,
            disposition=disposition,
            # The AMI float, not the DateTime column: no per-row string parsing on SQLite.
            started_at=datetime.fromtimestamp(start_ts, UTC),
            phone=phone,
            agent=agent,
            wait_s=wait_s,
            talk_s=talk_s,
            queue_wait_s=queue_wait_s,
            callback_task=callback_task,
            legs=tuple(legs.get(call_id, ())),
            tags=tuple(tags.get(linkedid, ())),
            last_agent=last_agent,
        )
        for (
            call_id,
            linkedid,
            direction,
            disposition,
            start_ts,
            phone,
            agent,
            wait_s,
            talk_s,
            queue_wait_s,
            callback_task,
            last_agent,
        ) in session.execute(call_query.execution_options(yield_per=_BATCH))
    ]


def load_gap_rows(session: Session, *, period: Period) -> list[GapRow]:
    """Return the AMI gaps overlapping the period."""
    query = select(AmiGap.started_at, AmiGap.ended_at).where(
        AmiGap.started_at < period.end,
        or_(AmiGap.ended_at.is_(None), AmiGap.ended_at > period.start),
    )
    return [GapRow(started_at=s, ended_at=e) for s, e in session.execute(query)]


def _attempts_by_task(session: Session, tasks: ColumnElement[bool]) -> dict[int, list[AttemptRow]]:
    """Return the attempts of the tasks ``tasks`` selects, by task id."""
    attempts: dict[int, list[AttemptRow]] = defaultdict(list)
    for task_id, started_at, outcome in session.execute(
        select(TaskAttempt.task_id, TaskAttempt.started_at, TaskAttempt.outcome)
        .join(Task, Task.id == TaskAttempt.task_id)
        .where(tasks)
    ):
        attempts[task_id].append(AttemptRow(started_at=started_at, outcome=outcome))
    return attempts


def load_task_rows(session: Session, *, period: Period) -> list[TaskRow]:
    """Return the dropped-caller tasks opened in the period, with their drops and attempts."""
    in_period = and_(
        Task.opened_at >= period.start,
        Task.opened_at < period.end,
        Task.reason.in_(sorted(DROPPED_TASK_REASONS)),
    )
    drops: dict[int, list[str]] = defaultdict(list)
    for task_id, linkedid in session.execute(
        select(TaskEvent.task_id, TaskEvent.call_linkedid)
        .join(Task, Task.id == TaskEvent.task_id)
        .where(in_period, TaskEvent.kind.in_(("opened", "repeat_drop")))
    ):
        if linkedid is not None:
            drops[task_id].append(linkedid)
    attempts = _attempts_by_task(session, in_period)
    query = select(
        Task.id,
        Task.phone,
        Task.reason,
        Task.status,
        Task.opened_at,
        Task.closed_at,
        Task.close_reason,
    ).where(in_period)
    return [
        TaskRow(
            task_id=task_id,
            phone=phone,
            reason=reason,
            status=status,
            opened_at=opened_at,
            closed_at=closed_at,
            close_reason=close_reason,
            drop_linkedids=tuple(drops.get(task_id, ())),
            attempts=tuple(attempts.get(task_id, ())),
        )
        for task_id, phone, reason, status, opened_at, closed_at, close_reason in session.execute(
            query
        )
    ]


def load_booking_rows(
    session: Session, *, period: Period, options: ReportOptions
) -> list[BookingRow]:
    """Return bookings that can win back a drop of the period: outcomes «записан», new visits."""
    until = period.end + timedelta(days=options.win_back_days)
    rows = [
        BookingRow(phone=phone, at=at, linkedid=linkedid)
        for phone, at, linkedid in session.execute(
            select(Call.phone, CallOutcome.at, CallOutcome.linkedid)
            .join(Call, Call.linkedid == CallOutcome.linkedid)
            .where(
                CallOutcome.outcome == "booked",
                CallOutcome.at >= period.start,
                CallOutcome.at < until,
                Call.phone.is_not(None),
            )
        )
        if phone is not None
    ]
    rows += [
        BookingRow(phone=phone, at=at)
        for phone, at in session.execute(
            select(PatientPhone.phone, Visit.booked_at)
            .join(Visit, Visit.patient_id == PatientPhone.patient_id)
            .where(Visit.booked_at >= period.start, Visit.booked_at < until)
        )
        if at is not None
    ]
    return rows


def _objection_call_ids(period: Period) -> Any:
    """Return SQL selecting the linkedids of the period's calls with an objection tag."""
    # From the period's calls (the started_at index) to their tags, never from every
    # objection tag ever given.
    return select(Call.linkedid).where(
        _in_period(period),
        select(CallTag.id)
        .where(CallTag.linkedid == Call.linkedid, CallTag.tag.in_(OBJECTION_TAGS))
        .exists(),
    )


def load_followup_rows(session: Session, *, period: Period) -> list[TaskRow]:
    """Return the tasks opened from the period's objection calls, with their attempts.

    A task opened from a call is opened after the call began: the period's start bounds them.
    """
    from_objection = and_(
        Task.opened_at >= period.start, Task.first_call_linkedid.in_(_objection_call_ids(period))
    )
    attempts = _attempts_by_task(session, from_objection)
    query = select(
        Task.id,
        Task.phone,
        Task.reason,
        Task.status,
        Task.opened_at,
        Task.closed_at,
        Task.close_reason,
        Task.first_call_linkedid,
    ).where(from_objection)
    return [
        TaskRow(
            task_id=task_id,
            phone=phone,
            reason=reason,
            status=status,
            opened_at=opened_at,
            closed_at=closed_at,
            close_reason=close_reason,
            attempts=tuple(attempts.get(task_id, ())),
            first_call_linkedid=first,
        )
        for task_id, phone, reason, status, opened_at, closed_at, close_reason, first in (
            session.execute(query)
        )
    ]


def load_booked_call_rows(
    session: Session, *, period: Period, options: ReportOptions
) -> list[BookingRow]:
    """Return the bookings only the objection figures count: calls tagged ``booked`` from the
    period's start to ``win_back_days`` after its end (``at``: the call's start), and every
    outcome «записан» on the period's calls, whenever recorded (for "booked on the call"; with
    no number, so the phone's later bookings stay those of ``load_booking_rows``)."""
    until = period.end + timedelta(days=options.win_back_days)
    rows = [
        BookingRow(phone=phone, at=datetime.fromtimestamp(start_ts, UTC), linkedid=linkedid)
        for phone, start_ts, linkedid in session.execute(
            select(Call.phone, Call.start_ts, Call.linkedid)
            .join(CallTag, CallTag.linkedid == Call.linkedid)
            .where(
                CallTag.tag == BOOKED_TAG, Call.started_at >= period.start, Call.started_at < until
            )
            .distinct()
        )
    ]
    rows += [
        BookingRow(phone=None, at=at, linkedid=linkedid)
        for at, linkedid in session.execute(
            select(CallOutcome.at, CallOutcome.linkedid)
            .join(Call, Call.linkedid == CallOutcome.linkedid)
            .where(CallOutcome.outcome == "booked", _in_period(period))
        )
    ]
    return rows


def load_figures_from_rows(
    session: Session,
    *,
    period: Period,
    options: ReportOptions | None = None,
    now: datetime | None = None,
) -> Figures:
    """Load the period's rows and compute every figure in Python (the reference for SQL)."""
    options = options or ReportOptions()
    return compute_figures(
        period=period,
        calls=load_call_rows(session, period=period),
        gaps=load_gap_rows(session, period=period),
        tasks=load_task_rows(session, period=period),
        bookings=load_booking_rows(session, period=period, options=options),
        followups=load_followup_rows(session, period=period),
        booked_calls=load_booked_call_rows(session, period=period, options=options),
        options=options,
        now=now,
    )


# --- The dashboard in SQL ----------------------------------------------------------------------
#
# The database groups the period's calls by local day, hour and disposition, takes the
# percentiles (``percentile_disc`` on PostgreSQL; on SQLite the waits alone are read and ranked)
# and aggregates legs, tasks and tags, so few small rows reach Python (on SQLite also the
# waits: three numbers a call). The
# pure functions of ``callcenter.reports.figures`` then derive the rates, so every figure is
# the one ``load_figures_from_rows`` computes over the rows (tests compare the two).


def load_figures(
    session: Session,
    *,
    period: Period,
    options: ReportOptions | None = None,
    now: datetime | None = None,
) -> Figures:
    """Return every dashboard figure of the period, aggregated by the database."""
    options = options or ReportOptions()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # These aggregates run for a fraction of a second to a few seconds: compiling them
        # (JIT, on by default above a cost threshold) costs more than it saves. This
        # transaction only.
        session.execute(text("SET LOCAL jit = off"))
        if report_hours.covers(period):
            return _figures_from_hours(session, period=period, options=options, now=now)
    local = _LocalClock(period, postgres=postgres)
    cells, p90 = _call_counts(session, period=period, local=local, options=options)
    if p90 is None:
        p90 = _queue_wait_p90(session, period=period, local=local, postgres=postgres)
    epoch = date(1970, 1, 1)
    totals = CallCounts()
    by_day: dict[date, CallCounts] = {day: CallCounts() for day in period.days}
    by_hour: dict[int, CallCounts] = {hour: CallCounts() for hour in range(24)}
    for (day_no, hour), counts in cells.items():
        totals.add(counts)
        by_day.setdefault(epoch + timedelta(days=day_no), CallCounts()).add(counts)
        by_hour[hour].add(counts)
    dropped = sum(totals.dispositions.get(d, 0) for d in DROPPED)
    objection_rows: list[Any] | None = None
    if postgres:
        tags, tagged, objection_rows = _tags_and_objection_rows(session, period=period)
    else:
        tags, tagged = _tag_counts(session, period=period, postgres=postgres)
    objections, objections_total, per_agent = summarize_objections(
        _objection_calls(
            session, period=period, options=options, postgres=postgres, rows=objection_rows
        )
    )
    return Figures(
        period=period,
        options=options,
        totals=call_figures(totals, p90_queue_wait_s=p90.get(("all", 0))),
        by_day=[
            (day, call_figures(c, p90_queue_wait_s=p90.get(("day", (day - epoch).days))))
            for day, c in by_day.items()
        ],
        by_hour=[
            (hour, call_figures(c, p90_queue_wait_s=p90.get(("hour", hour))))
            for hour, c in by_hour.items()
        ],
        drops=_drop_figures(
            session, period=period, options=options, dropped=dropped, postgres=postgres
        ),
        agents=with_objections(
            _agent_figures(session, period=period, postgres=postgres), per_agent
        ),
        gaps=summarize_gaps(
            load_gap_rows(session, period=period), period=period, now=now or datetime.now(UTC)
        ),
        tags=tag_figures(tags, tagged_calls=tagged),
        tagged_calls=tagged,
        objections=objections,
        objections_total=objections_total,
    )


def _figures_from_hours(
    session: Session, *, period: Period, options: ReportOptions, now: datetime | None
) -> Figures:
    """Return the figures on PostgreSQL from the hourly rollups (``store.report_hours``),
    with what followed the objections and the drops' win-backs from the rows themselves.

    The hours are refreshed first (committed); then four independent parts run side by
    side on one snapshot (``store.snapshot_reads``).
    """
    bind = session.get_bind()
    report_hours.refresh(
        bind if isinstance(bind, Engine) else session.connection(),
        start=period.start,
        end=period.end,
    )

    def calls(s: Session) -> Any:
        connection = s.connection()
        return (
            report_hours.read_calls(connection, period=period, options=options),
            report_hours.read_tags(connection, period=period),
            report_hours.read_agents(connection, period=period),
        )

    def objection_calls(s: Session) -> Any:
        # The tasks of the period's objection calls, picked by the rollup's list of them.
        from_call = Task.first_call_linkedid.in_(report_hours.objection_linkedids(period=period))
        return (
            report_hours.read_objection_rows(s.connection(), period=period),
            _objection_followups(s, period=period, from_call=from_call),
        )

    def bookings(s: Session) -> Any:
        return _bookings_by_phone(s, period=period, options=options, numbers=None)

    def drops(s: Session) -> Any:
        return (
            report_hours.read_tasks(s.connection(), period=period),
            _won_back_tasks(s, period=period, options=options),
            load_gap_rows(s, period=period),
        )

    parts = snapshot_reads.run_parts(
        session,
        {
            "calls": calls,
            "objection_calls": objection_calls,
            "bookings": bookings,
            "drops": drops,
        },
        setup=("SET LOCAL jit = off",),
    )
    buckets, (tags, tagged), agents = parts["calls"]
    rows, followups = parts["objection_calls"]
    objection_figures, objections_total, per_agent = summarize_objections(
        _objection_calls(
            session,
            period=period,
            options=options,
            postgres=True,
            rows=rows,
            followups=followups,
            bookings=parts["bookings"],
        )
    )
    tasks, won, gaps = parts["drops"]
    totals = buckets.totals
    dropped = sum(getattr(totals, disposition) for disposition in DROPPED)  # fields so named
    return Figures(
        period=period,
        options=options,
        totals=totals,
        by_day=buckets.by_day,
        by_hour=buckets.by_hour,
        drops=drop_figures(
            dropped_calls=dropped,
            with_task=tasks.with_task,
            tasks=tasks.tasks,
            attempted=len(tasks.to_attempt),
            to_attempt=(percentile(tasks.to_attempt, 0.5), percentile(tasks.to_attempt, 0.9)),
            to_contact=(percentile(tasks.to_contact, 0.5), percentile(tasks.to_contact, 0.9)),
            reached=len(tasks.to_contact),
            won_back=won,
            still_open=tasks.still_open,
            unreachable=tasks.unreachable,
        ),
        agents=with_objections(agents, per_agent),
        gaps=summarize_gaps(gaps, period=period, now=now or datetime.now(UTC)),
        tags=tag_figures(tags, tagged_calls=tagged),
        tagged_calls=tagged,
        objections=objection_figures,
        objections_total=objections_total,
    )


def _booked_on_call(linkedid: Any) -> ColumnElement[bool]:
    """Return SQL: the call ``linkedid`` is tagged ``booked`` or has an outcome «записан»."""
    booked_tag = aliased(CallTag)
    return or_(
        select(booked_tag.id)
        .where(booked_tag.linkedid == linkedid, booked_tag.tag == BOOKED_TAG)
        .exists(),
        select(CallOutcome.id)
        .where(CallOutcome.linkedid == linkedid, CallOutcome.outcome == "booked")
        .exists(),
    )


def _tags_and_objection_rows(
    session: Session, *, period: Period
) -> tuple[dict[str, int], int, list[Any]]:
    """Return, on PostgreSQL in one pass over the period's tags, ``_tag_counts``' figures and
    the objection calls' rows (``linkedid, phone, start_ts, last_agent, agent, tag, booked``),
    so the tags are joined to the period's calls once."""
    period_tags = (
        select(
            CallTag.tag.label("tag"),
            CallTag.linkedid.label("linkedid"),
            Call.phone.label("phone"),
            Call.start_ts.label("start_ts"),
            Call.last_agent.label("last_agent"),
            Call.agent.label("agent"),
        )
        .join(Call, Call.linkedid == CallTag.linkedid)
        .where(_in_period(period))
        .cte("period_tags")
        .prefix_with("MATERIALIZED")
    )
    t = period_tags.c
    counts = select(
        literal(0).label("kind"),
        t.tag,
        func.count(distinct(t.linkedid)).label("n"),
        null().label("linkedid"),
        null().label("phone"),
        null().label("start_ts"),
        null().label("last_agent"),
        null().label("agent"),
        null().label("booked"),
    ).group_by(func.rollup(t.tag))
    details = select(
        literal(1),
        t.tag,
        null(),
        t.linkedid,
        t.phone,
        t.start_ts,
        t.last_agent,
        t.agent,
        _booked_on_call(t.linkedid),
    ).where(t.tag.in_(OBJECTION_TAGS))
    per_tag: dict[str, int] = {}
    tagged = 0
    rows: list[Any] = []
    for kind, tag, n, *detail in session.execute(union_all(counts, details)):
        if kind == 1:
            # As ``_objection_calls`` reads them: linkedid, phone, start_ts, last_agent, agent,
            # tag, booked.
            rows.append((*detail[:5], tag, detail[5]))
        elif tag is None:
            tagged = n
        else:
            per_tag[tag] = n
    return per_tag, tagged, rows


def _objection_calls(
    session: Session,
    *,
    period: Period,
    options: ReportOptions,
    postgres: bool,
    rows: list[Any] | None = None,
    followups: tuple[dict[str, bool], dict[str, bool]] | None = None,
    bookings: dict[str, list[datetime]] | None = None,
) -> list[ObjectionCall]:
    """Return the period's objection calls and what became of them (see
    ``figures.objection_calls``), decided by the database except the win-back window.

    Only the objection calls, their follow-up tasks and the bookings of their numbers are read.
    Parts already read are passed in: ``rows`` (the objection calls' rows: linkedid, phone,
    start_ts, last_agent, agent, tag, booked on the call), ``followups``
    (``_objection_followups``) and ``bookings`` (``_bookings_by_phone``).
    """
    if rows is None:
        rows = list(
            session.execute(
                select(
                    Call.linkedid,
                    Call.phone,
                    Call.start_ts,
                    Call.last_agent,
                    Call.agent,
                    CallTag.tag,
                    _booked_on_call(Call.linkedid),
                )
                .join(CallTag, CallTag.linkedid == Call.linkedid)
                # SQLite, ``tag || ''``: from the period's calls (the started_at index) to
                # their tags, never from every objection tag ever given (the tag's index).
                .where(
                    _in_period(period),
                    (CallTag.tag if postgres else CallTag.tag + "").in_(OBJECTION_TAGS),
                )
            )
        )
    calls: dict[str, dict[str, Any]] = {}
    for linkedid, phone, start_ts, last_agent, agent, tag, on_call in rows:
        handler = last_agent if last_agent is not None else agent
        call = calls.setdefault(
            linkedid,
            {
                "phone": phone,
                "at": datetime.fromtimestamp(start_ts, UTC),
                "handler": handler or None,
                "tags": set(),
                "on_call": bool(on_call),
            },
        )
        call["tags"].add(tag)
    if not calls:
        return []
    if followups is None:
        from_call: ColumnElement[bool]
        if postgres:
            # The objection calls' ids as one array parameter: a hashed lookup per task.
            from_call = Task.first_call_linkedid == func.any(
                bindparam("objection_calls", sorted(calls), type_=ARRAY(String))
            )
        else:
            # Each task probes its call's tags (SQLite has no array; a list of the period's
            # objection calls would walk every call of a long period).
            from_call = (
                select(CallTag.id)
                .where(
                    CallTag.linkedid == Task.first_call_linkedid, CallTag.tag.in_(OBJECTION_TAGS)
                )
                .exists()
            )
        followups = _objection_followups(session, period=period, from_call=from_call)
    task_open, task_reached = followups
    if bookings is None:
        numbers = {call["phone"] for call in calls.values() if call["phone"] is not None}
        bookings = _bookings_by_phone(session, period=period, options=options, numbers=numbers)
    window = timedelta(days=options.win_back_days)

    def booked_later(phone: str | None, at: datetime) -> bool:
        """Whether the number booked after ``at`` and within the window (the first booking
        after ``at``, found by bisection)."""
        if phone is None:
            return False
        times = bookings.get(phone, [])
        first = bisect_right(times, at)
        return first < len(times) and times[first] <= at + window

    return [
        ObjectionCall(
            linkedid=linkedid,
            tags=frozenset(call["tags"]),
            handler=call["handler"],
            booked_on_call=call["on_call"],
            won_back_later=not call["on_call"] and booked_later(call["phone"], call["at"]),
            task_open=task_open.get(linkedid),
            task_reached=task_reached.get(linkedid, False),
        )
        for linkedid, call in calls.items()
    ]


def _objection_followups(
    session: Session, *, period: Period, from_call: ColumnElement[bool]
) -> tuple[dict[str, bool], dict[str, bool]]:
    """Return, per objection call, whether a follow-up task opened from it is open and
    whether one reached the patient; ``from_call`` picks the tasks of the objection calls."""
    reached = or_(
        and_(Task.close_reason.in_(sorted(CONTACT_CLOSE_REASONS)), Task.closed_at.is_not(None)),
        select(TaskAttempt.id)
        .where(TaskAttempt.task_id == Task.id, TaskAttempt.outcome == "answered")
        .exists(),
    )
    task_open: dict[str, bool] = {}
    task_reached: dict[str, bool] = {}
    for linkedid, status, was_reached in session.execute(
        select(Task.first_call_linkedid, Task.status, reached).where(
            # A task opened from a call is opened after it began (the opened_at index).
            Task.opened_at >= period.start,
            from_call,
        )
    ):
        task_open[linkedid] = task_open.get(linkedid, False) or status == "open"
        task_reached[linkedid] = task_reached.get(linkedid, False) or bool(was_reached)
    return task_open, task_reached


def _bookings_by_phone(
    session: Session, *, period: Period, options: ReportOptions, numbers: set[str] | None
) -> dict[str, list[datetime]]:
    """Return the bookings from the period's start to ``win_back_days`` after its end, by
    number, in time order: outcomes «записан», visits booked, calls tagged ``booked``.

    ``numbers``: keep only these (None: every number). Read by their time (indexed).
    """
    until = period.end + timedelta(days=options.win_back_days)
    booked_at: dict[str, list[datetime]] = defaultdict(list)
    for phone, at in session.execute(
        # The call's number looked up per booking (index probes), never a join the planner
        # may turn into a scan of every call.
        select(
            select(Call.phone).where(Call.linkedid == CallOutcome.linkedid).scalar_subquery(),
            CallOutcome.at,
        ).where(
            CallOutcome.outcome == "booked", CallOutcome.at >= period.start, CallOutcome.at < until
        )
    ):
        if phone is not None and (numbers is None or phone in numbers):
            # One tzinfo for every moment: comparing datetimes of different tzinfo objects
            # asks each for its offset, thousands of times over.
            booked_at[phone].append(at.astimezone(UTC))
    for phone, at in session.execute(
        select(PatientPhone.phone, Visit.booked_at)
        .join(Visit, Visit.patient_id == PatientPhone.patient_id)
        .where(Visit.booked_at >= period.start, Visit.booked_at < until)
    ):
        if numbers is None or phone in numbers:
            booked_at[phone].append(at.astimezone(UTC))
    for phone, start_ts in session.execute(
        select(Call.phone, Call.start_ts)
        .join(CallTag, CallTag.linkedid == Call.linkedid)
        .where(CallTag.tag == BOOKED_TAG, Call.started_at >= period.start, Call.started_at < until)
    ):
        if phone is not None and (numbers is None or phone in numbers):
            booked_at[phone].append(datetime.fromtimestamp(start_ts, UTC))
    for times in booked_at.values():
        times.sort()
    return booked_at


def _in_period(period: Period) -> ColumnElement[bool]:
    return and_(Call.started_at >= period.start, Call.started_at < period.end)


def _inbound_in_period(period: Period) -> ColumnElement[bool]:
    return and_(_in_period(period), Call.direction == "inbound")


class _LocalClock:
    """SQL for a call's local day number (days since 1970-01-01) and hour in the clinic's zone.

    The zone's UTC offset is constant between transitions; the period's transitions are found
    in Python and become a CASE over the stored AMI timestamp, the same on both back-ends.
    """

    def __init__(self, period: Period, *, postgres: bool) -> None:
        self.postgres = postgres
        offsets = utc_offsets(period)
        offset: ColumnElement[float]
        if len(offsets) == 1:
            offset = literal(offsets[0][1], Float)
        else:
            offset = case(
                *((Call.start_ts < until, literal(value, Float)) for until, value in offsets[:-1]),
                else_=literal(offsets[-1][1], Float),
            )
        # Whole local seconds first, then integer arithmetic: day and hour always agree.
        seconds = self._floor(Call.start_ts + offset)
        self.day_no = seconds // 86400
        self.hour = (seconds % 86400) // 3600

    def _floor(self, value: ColumnElement[float]) -> ColumnElement[int]:
        if self.postgres:
            return cast(func.floor(value), BigInteger)
        # SQLite truncates toward zero, which is the floor for times after 1970.
        return cast(value, Integer)


def utc_offsets(period: Period) -> list[tuple[float, float]]:
    """Return the zone's UTC offsets over the period: ``(until_ts, offset_s)``, the last open.

    >>> from datetime import date
    >>> p = Period(first=date(2026, 3, 28), last=date(2026, 3, 30), timezone="Europe/Berlin")
    >>> utc_offsets(p)
    [(1774746000.0, 3600.0), (inf, 7200.0)]
    """
    zone = period.zone

    def offset_at(ts: float) -> float:
        delta = datetime.fromtimestamp(ts, zone).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0

    begin, end = period.start.timestamp(), period.end.timestamp()
    result: list[tuple[float, float]] = []
    current = offset_at(begin)
    at = begin
    while at < end:
        step = min(at + 6 * 3600.0, end)  # zones never change twice within six hours
        if offset_at(step) != current:
            low, high = at, step  # offset(low) == current != offset(high)
            while high - low > 1.0:
                middle = float(int((low + high) / 2))
                if offset_at(middle) == current:
                    low = middle
                else:
                    high = middle
            result.append((high, current))
            current = offset_at(high)
        at = step
    result.append((math.inf, current))
    return result


def _call_counts(
    session: Session, *, period: Period, local: _LocalClock, options: ReportOptions
) -> tuple[dict[tuple[int, int], CallCounts], dict[tuple[str, int], float] | None]:
    """Return the inbound calls' counts per (local day number, hour) and, on PostgreSQL, the
    queue waits' 90th percentiles (as ``_queue_wait_p90``; None on SQLite)."""
    short = and_(
        Call.disposition == "abandoned",
        func.coalesce(Call.queue_wait_s, 0.0) < options.short_abandon_s,
    )
    within = and_(
        Call.disposition == "answered",
        func.coalesce(Call.queue_wait_s, Call.wait_s) <= options.service_level_s,
    )
    calls = (
        select(
            local.day_no.label("day_no"),
            local.hour.label("hour"),
            Call.disposition.label("disposition"),
            Call.queue_wait_s.label("queue_wait_s"),
            case((short, 1), else_=0).label("short"),
            case((within, 1), else_=0).label("within"),
        )
        .where(_inbound_in_period(period))
        .subquery()
    )
    aggregates = (
        func.count(),
        func.count(calls.c.queue_wait_s),
        func.coalesce(func.sum(calls.c.queue_wait_s), 0.0),
        func.sum(calls.c.short),
        func.sum(calls.c.within),
    )
    cells: dict[tuple[int, int], CallCounts] = defaultdict(CallCounts)

    def add(day_no: Any, hour: Any, disposition: str, *values: Any) -> None:
        n, waits, wait_sum, n_short, n_within = values
        cell = cells[(int(day_no), int(hour))]
        cell.dispositions[disposition] += n
        cell.waits += waits
        cell.wait_sum += float(wait_sum)
        cell.short += int(n_short)
        cell.within += int(n_within)

    if not local.postgres:
        query = select(calls.c.day_no, calls.c.hour, calls.c.disposition, *aggregates).group_by(
            calls.c.day_no, calls.c.hour, calls.c.disposition
        )
        for row in session.execute(query):
            add(*row)
        return cells, None
    # PostgreSQL: one pass gives the cells' counts and the percentiles by day, hour and overall.
    # percentile_disc is the nearest rank: the first value whose cumulative share reaches the
    # fraction, i.e. the ceil(0.9 * n)-th, as ``figures.percentile``.
    query = select(
        calls.c.day_no,
        calls.c.hour,
        calls.c.disposition,
        func.grouping(calls.c.day_no, calls.c.hour, calls.c.disposition),
        func.percentile_disc(0.9).within_group(calls.c.queue_wait_s),
        *aggregates,
    ).group_by(
        func.grouping_sets(
            tuple_(calls.c.day_no, calls.c.hour, calls.c.disposition),
            tuple_(calls.c.day_no),
            tuple_(calls.c.hour),
            tuple_(),
        )
    )
    p90: dict[tuple[str, int], float] = {}
    for day_no, hour, disposition, grouping, value, *values in session.execute(query):
        # grouping(): a bit per column left out of the set (day 4, hour 2, disposition 1).
        if grouping == 0:
            add(day_no, hour, disposition, *values)
        elif value is None:  # no queue waits in the group
            continue
        elif grouping == 3:
            p90[("day", int(day_no))] = float(value)
        elif grouping == 5:
            p90[("hour", int(hour))] = float(value)
        elif grouping == 7:
            p90[("all", 0)] = float(value)
    return cells, p90


def _queue_wait_p90(
    session: Session, *, period: Period, local: _LocalClock, postgres: bool
) -> dict[tuple[str, int], float]:
    """Return the queue waits' nearest-rank 90th percentile per local day, hour, and overall.

    Keys: ``("day", day_no)``, ``("hour", hour)``, ``("all", 0)``.
    """
    waits = (
        select(
            local.day_no.label("day_no"),
            local.hour.label("hour"),
            Call.queue_wait_s.label("wait"),
        )
        .where(_inbound_in_period(period), Call.queue_wait_s.is_not(None))
        .subquery()
    )
    result: dict[tuple[str, int], float] = {}
    if postgres:
        # percentile_disc is the nearest rank: the first value whose cumulative share reaches
        # the fraction, i.e. the ceil(0.9 * n)-th, as ``figures.percentile``.
        query = select(
            waits.c.day_no,
            waits.c.hour,
            func.percentile_disc(0.9).within_group(waits.c.wait),
            func.grouping(waits.c.day_no),
            func.grouping(waits.c.hour),
        ).group_by(func.grouping_sets(waits.c.day_no, waits.c.hour, tuple_()))
        for day_no, hour, value, no_day, no_hour in session.execute(query):
            if value is None:  # the grand total of no rows at all
                continue
            if not no_day:
                result[("day", int(day_no))] = float(value)
            elif not no_hour:
                result[("hour", int(hour))] = float(value)
            else:
                result[("all", 0)] = float(value)
        return result
    # SQLite has no percentile function, and three window-function sorts cost more than
    # reading the waits (three numbers a call) and ranking them with ``figures.percentile``.
    by_key: dict[tuple[str, int], list[float]] = defaultdict(list)
    everything = by_key[("all", 0)]
    for day_no, hour, wait in session.execute(select(waits.c.day_no, waits.c.hour, waits.c.wait)):
        by_key[("day", day_no)].append(wait)
        by_key[("hour", hour)].append(wait)
        everything.append(wait)
    for key, values in by_key.items():
        value = percentile(values, 0.9)
        if value is not None:
            result[key] = value
    return result


def _seconds_between(later: Any, earlier: Any, *, postgres: bool) -> ColumnElement[float]:
    """Return SQL of ``later - earlier`` in seconds (both stored UTC datetimes)."""
    if postgres:
        return cast(extract("epoch", later - earlier), Float)
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds plus the fractions, exactly.
    whole = cast(func.strftime("%s", later), Float) - cast(func.strftime("%s", earlier), Float)
    return whole + (cast(func.substr(later, 20), Float) - cast(func.substr(earlier, 20), Float))


def _call_id_range(session: Session, period: Period) -> tuple[int, int]:
    """Return the period's lowest and highest call id ((0, -1) for no calls).

    Redundant with a join on the call, but a range on a child table's ``call_id`` lets the
    database range-scan its index instead of reading every leg ever stored. (``id + 0``: read
    over the period's index, not by walking the primary key from one end.)
    """
    low, high = session.execute(
        select(func.min(Call.id + 0), func.max(Call.id + 0)).where(_in_period(period))
    ).one()
    return (0, -1) if low is None else (int(low), int(high))


def _agent_figures(session: Session, *, period: Period, postgres: bool) -> list[AgentFigures]:
    """Return per-administrator figures (see ``figures.summarize_agents``)."""
    low, high = _call_id_range(session, period)
    answered = or_(CallLeg.answered_at.is_not(None), CallLeg.outcome == "answered")
    talked = and_(CallLeg.answered_at.is_not(None), CallLeg.ended_at.is_not(None))
    talk = _seconds_between(CallLeg.ended_at, CallLeg.answered_at, postgres=postgres)
    # One row per (administrator, call) first: the distinct calls are then plain counts.
    per_call = (
        select(
            CallLeg.agent.label("agent"),
            func.max(case((answered, 1), else_=0)).label("answered"),
            func.count(case((CallLeg.outcome.in_(sorted(MISSED_LEG_OUTCOMES)), 1))).label("missed"),
            func.count(case((talked, 1))).label("talks"),
            func.sum(case((talked, talk))).label("talk_s"),
        )
        .join(Call, Call.id == CallLeg.call_id)
        .where(_inbound_in_period(period), CallLeg.call_id.between(low, high))
        .group_by(CallLeg.agent, CallLeg.call_id)
        .subquery()
    )
    query = select(
        per_call.c.agent,
        func.count(),
        func.sum(per_call.c.answered),
        func.sum(per_call.c.missed),
        func.sum(per_call.c.talks),
        func.sum(per_call.c.talk_s),
    ).group_by(per_call.c.agent)
    rows: dict[str, tuple[int, int, int, int, Any]] = {
        agent: (offered, n_answered, missed, talks, talk_sum)
        for agent, offered, n_answered, missed, talks, talk_sum in session.execute(query)
    }
    callbacks: dict[str, int] = {
        agent: n
        for agent, n in session.execute(
            select(Call.agent, func.count())
            .where(
                _in_period(period),
                Call.direction != "inbound",
                Call.callback_task.is_not(None),
                Call.agent.is_not(None),
                Call.agent != "",
            )
            .group_by(Call.agent)
        )
    }
    result = []
    for agent in sorted(set(rows) | set(callbacks)):
        offered, n_answered, missed, talks, talk_sum = rows.get(agent, (0, 0, 0, 0, None))
        result.append(
            AgentFigures(
                agent=agent,
                offered=int(offered),
                answered=int(n_answered),
                missed=int(missed),
                avg_talk_s=float(talk_sum) / int(talks) if talks else None,
                callbacks=callbacks.get(agent, 0),
            )
        )
    return result


def _tasks_in_period(period: Period) -> ColumnElement[bool]:
    return and_(
        Task.opened_at >= period.start,
        Task.opened_at < period.end,
        Task.reason.in_(sorted(DROPPED_TASK_REASONS)),
    )


def _drop_figures(
    session: Session, *, period: Period, options: ReportOptions, dropped: int, postgres: bool
) -> DropFigures:
    """Return the drop figures (see ``figures.summarize_drops``)."""
    in_period = _tasks_in_period(period)
    low, high = session.execute(
        select(func.min(Task.id + 0), func.max(Task.id + 0)).where(in_period)
    ).one()
    # The period's task ids bound the children's task_id: an index range, not a full scan.
    task_ids = (0, -1) if low is None else (int(low), int(high))
    # From the period's tasks to their drops (few), not from every call to the task events.
    with_task = session.scalar(
        select(func.count(distinct(Call.id)))
        .select_from(Task)
        .join(TaskEvent, TaskEvent.task_id == Task.id)
        .join(Call, Call.linkedid == TaskEvent.call_linkedid)
        .where(
            in_period,
            TaskEvent.task_id.between(*task_ids),
            TaskEvent.kind.in_(("opened", "repeat_drop")),
            _inbound_in_period(period),
            Call.disposition.in_(sorted(DROPPED)),
        )
    )
    attempts = (
        select(
            TaskAttempt.task_id.label("task_id"),
            func.min(TaskAttempt.started_at).label("first"),
            func.min(case((TaskAttempt.outcome == "answered", TaskAttempt.started_at))).label(
                "answer"
            ),
        )
        .join(Task, Task.id == TaskAttempt.task_id)
        .where(in_period, TaskAttempt.task_id.between(*task_ids))
        .group_by(TaskAttempt.task_id)
        .subquery()
    )
    first_attempt = attempts.c.first
    first_answer = attempts.c.answer
    contact_close = case(
        (
            and_(Task.close_reason.in_(sorted(CONTACT_CLOSE_REASONS)), Task.closed_at.is_not(None)),
            Task.closed_at,
        )
    )
    if not postgres:
        return _drop_figures_sqlite(
            session,
            period=period,
            options=options,
            in_period=in_period,
            first_attempt=first_attempt,
            first_answer=first_answer,
            contact_close=contact_close,
            attempts=attempts,
            dropped=dropped,
            with_task=with_task or 0,
        )
    won = _won_back_tasks(session, period=period, options=options)
    per_task = (
        select(
            Task.opened_at.label("opened_at"),
            Task.status.label("status"),
            Task.close_reason.label("close_reason"),
            first_attempt.label("first_attempt"),
            # LEAST skips NULLs on PostgreSQL: the earlier of the two, or the one there is.
            func.least(first_answer, contact_close).label("contact"),
        )
        .outerjoin(attempts, attempts.c.task_id == Task.id)
        .where(in_period)
        .subquery()
    )
    to_attempt = _seconds_between(per_task.c.first_attempt, per_task.c.opened_at, postgres=True)
    # GREATEST skips NULLs too: a task never reached must stay NULL, not become 0 s.
    to_contact = case(
        (
            per_task.c.contact.is_not(None),
            func.greatest(
                0.0, _seconds_between(per_task.c.contact, per_task.c.opened_at, postgres=True)
            ),
        )
    )
    closed = per_task.c.status != "open"
    row = session.execute(
        select(
            func.count(),
            func.count(per_task.c.first_attempt),
            func.percentile_disc(0.5).within_group(to_attempt),
            func.percentile_disc(0.9).within_group(to_attempt),
            func.count(per_task.c.contact),
            func.percentile_disc(0.5).within_group(to_contact),
            func.percentile_disc(0.9).within_group(to_contact),
            func.count(case((per_task.c.status == "open", 1))),
            func.count(case((and_(closed, per_task.c.close_reason == "unreachable"), 1))),
        )
    ).one()
    n, attempted, a50, a90, reached, c50, c90, still_open, unreachable = row
    return drop_figures(
        dropped_calls=dropped,
        with_task=with_task or 0,
        tasks=n,
        attempted=attempted,
        to_attempt=(_maybe_float(a50), _maybe_float(a90)),
        to_contact=(_maybe_float(c50), _maybe_float(c90)),
        reached=reached,
        won_back=won,
        still_open=still_open,
        unreachable=unreachable,
    )


def _won_back_tasks(session: Session, *, period: Period, options: ReportOptions) -> int:
    """Return the period's callback tasks of dropped callers whose number booked within
    ``win_back_days`` of the task's opening (PostgreSQL)."""
    in_period = _tasks_in_period(period)
    window = timedelta(days=options.win_back_days)
    until = period.end + window
    bookings = union_all(
        # The call's number looked up per booking (a few thousand index probes), never a
        # join the planner may turn into a scan of every call.
        select(
            select(Call.phone)
            .where(Call.linkedid == CallOutcome.linkedid)
            .scalar_subquery()
            .label("phone"),
            CallOutcome.at.label("at"),
        ).where(
            CallOutcome.outcome == "booked", CallOutcome.at >= period.start, CallOutcome.at < until
        ),
        select(PatientPhone.phone.label("phone"), Visit.booked_at.label("at"))
        .join(PatientPhone, PatientPhone.patient_id == Visit.patient_id)
        .where(Visit.booked_at >= period.start, Visit.booked_at < until),
    ).subquery()
    # A WHERE EXISTS (a semi-join over the period's few bookings), not a per-task subplan.
    return (
        session.scalar(
            select(func.count())
            .select_from(Task)
            .where(
                in_period,
                select(bookings.c.phone)
                .where(
                    bookings.c.phone == Task.phone,
                    bookings.c.at >= Task.opened_at,
                    bookings.c.at <= Task.opened_at + literal(window, Interval()),
                )
                .exists(),
            )
        )
        or 0
    )


def _sqlite_micros_between(later: Any, earlier: Any) -> ColumnElement[int]:
    """Return SQL of ``later - earlier`` in whole microseconds, from SQLite's stored text.

    SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds by strftime, plus the six digits.
    Integers throughout, so ``micros / 1_000_000`` is exactly ``timedelta.total_seconds()``.
    """

    def micros(value: Any) -> ColumnElement[int]:
        seconds = cast(func.strftime("%s", value), Integer) * 1_000_000
        return seconds + cast(func.substr(value, 21, 6), Integer)

    return micros(later) - micros(earlier)


def _drop_figures_sqlite(
    session: Session,
    *,
    period: Period,
    options: ReportOptions,
    in_period: ColumnElement[bool],
    first_attempt: Any,
    first_answer: Any,
    contact_close: Any,
    attempts: Any,
    dropped: int,
    with_task: int,
) -> DropFigures:
    """Return the drop figures on SQLite: delays in SQL, percentiles and wins in Python.

    The rules are ``figures.summarize_tasks``'; no datetime is parsed except a task's opening
    time when its number booked at all.
    """
    contact = case(
        (first_answer.is_(None), contact_close),
        (contact_close.is_(None), first_answer),
        # The same text format throughout: text order is time order.
        (first_answer <= contact_close, first_answer),
        else_=contact_close,
    )
    query = (
        select(
            Task.phone,
            Task.status,
            Task.close_reason,
            type_coerce(Task.opened_at, String),
            _sqlite_micros_between(first_attempt, Task.opened_at),
            _sqlite_micros_between(contact, Task.opened_at),
        )
        .outerjoin(attempts, attempts.c.task_id == Task.id)
        .where(in_period)
    )
    booked: dict[str, list[datetime]] = defaultdict(list)
    for booking in load_booking_rows(session, period=period, options=options):
        if booking.phone is not None:
            booked[booking.phone].append(booking.at)
    window = timedelta(days=options.win_back_days)
    to_attempt: list[float] = []
    to_contact: list[float] = []
    n = won = still_open = unreachable = 0
    for phone, status, close_reason, opened_text, attempt_us, contact_us in session.execute(query):
        n += 1
        if attempt_us is not None:
            to_attempt.append(attempt_us / 1_000_000)
        if contact_us is not None:
            to_contact.append(max(0.0, contact_us / 1_000_000))
        if phone in booked:
            opened = datetime.fromisoformat(opened_text).replace(tzinfo=UTC)
            if any(opened <= at <= opened + window for at in booked[phone]):
                won += 1
        if status == "open":
            still_open += 1
        elif close_reason == "unreachable":
            unreachable += 1
    return drop_figures(
        dropped_calls=dropped,
        with_task=with_task,
        tasks=n,
        attempted=len(to_attempt),
        to_attempt=(percentile(to_attempt, 0.5), percentile(to_attempt, 0.9)),
        to_contact=(percentile(to_contact, 0.5), percentile(to_contact, 0.9)),
        reached=len(to_contact),
        won_back=won,
        still_open=still_open,
        unreachable=unreachable,
    )


def _maybe_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _tag_counts(session: Session, *, period: Period, postgres: bool) -> tuple[dict[str, int], int]:
    """Return each tag's number of calls in the period, and the calls with any tag."""
    tags = (
        select(CallTag.tag.label("tag"), CallTag.linkedid.label("linkedid"))
        .join(Call, Call.linkedid == CallTag.linkedid)
        .where(_in_period(period))
        .subquery()
    )
    if postgres:
        # One pass: each tag's calls, and (the rollup's NULL row) the calls with any tag.
        per_tag: dict[str, int] = {}
        tagged = 0
        for tag, n in session.execute(
            select(tags.c.tag, func.count(distinct(tags.c.linkedid))).group_by(
                func.rollup(tags.c.tag)
            )
        ):
            if tag is None:
                tagged = n
            else:
                per_tag[tag] = n
        return per_tag, tagged
    per_tag = {
        tag: n
        for tag, n in session.execute(
            select(tags.c.tag, func.count(distinct(tags.c.linkedid))).group_by(tags.c.tag)
        )
    }
    return per_tag, session.scalar(select(func.count(distinct(tags.c.linkedid)))) or 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFilter:
    """The call list's filters; None means any."""

    period: Period
    disposition: str | None = None
    agent: str | None = None
    phone: str | None = None  # E.164 or a fragment of the raw caller number
    tag: str | None = None  # an outcome tag (the tagger's or a supervisor's)


def encode_cursor(call: Call) -> str:
    """Return the cursor of the page after ``call`` (newest first)."""
    return f"{call.start_ts!r}_{call.id}"


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        ts, call_id = cursor.split("_")
        return float(ts), int(call_id)
    except ValueError as exc:
        raise BadCursor(f"bad page cursor {cursor!r}") from exc


def _filtered(filters: CallFilter) -> list[object]:
    where: list[object] = [
        Call.started_at >= filters.period.start,
        Call.started_at < filters.period.end,
        # The same bounds on the keyset's column (a second of slack for rounding), so each
        # filter's (column, start_ts) index is walked newest first within the period.
        Call.start_ts >= filters.period.start.timestamp() - 1.0,
        Call.start_ts < filters.period.end.timestamp() + 1.0,
    ]
    if filters.disposition:
        where.append(Call.disposition == filters.disposition)
    if filters.agent:
        where.append(or_(Call.agent == filters.agent, Call.last_agent == filters.agent))
    if filters.phone:
        digits = "".join(ch for ch in filters.phone if ch.isdigit())
        number = normalize_phone(filters.phone)
        if number is not None:
            # A whole number: its calls by the (phone, start_ts) index.
            where.append(Call.phone == number)
        elif digits:
            where.append(or_(Call.phone.contains(digits[-10:]), Call.caller.contains(digits)))
    if filters.tag:
        where.append(
            select(CallTag.id)
            .where(CallTag.linkedid == Call.linkedid, CallTag.tag == filters.tag)
            .exists()
        )
    return where


def list_calls_page(
    session: Session, *, filters: CallFilter, after: str | None = None, limit: int = 50
) -> tuple[list[Call], str | None]:
    """Return one page of calls, newest first, and the next page's cursor (None: last page).

    Keyset paging on (start_ts, id): a page costs the same at the end of a year as at its start.

    :raises BadCursor: ``after`` is not a cursor this module made.
    """
    query = select(Call).where(*_filtered(filters))  # type: ignore[arg-type]
    if after:
        ts, call_id = _decode_cursor(after)
        query = query.where(or_(Call.start_ts < ts, and_(Call.start_ts == ts, Call.id < call_id)))
    query = query.order_by(Call.start_ts.desc(), Call.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def iter_calls(session: Session, *, filters: CallFilter) -> Iterator[Call]:
    """Yield every call matching the filters, newest first, fetched in batches (CSV export)."""
    query = (
        select(Call)
        .where(*_filtered(filters))  # type: ignore[arg-type]
        .order_by(Call.start_ts.desc(), Call.id.desc())
        .execution_options(yield_per=1_000)
    )
    yield from session.scalars(query)


#: The columns ``iter_call_rows`` reads (the exports' columns).
EXPORT_COLUMNS = (
    "linkedid",
    "started_at",
    "direction",
    "disposition",
    "caller",
    "phone",
    "caller_name",
    "queue",
    "agent",
    "last_agent",
    "wait_s",
    "queue_wait_s",
    "talk_s",
)


def iter_call_rows(session: Session, *, filters: CallFilter) -> Iterator[dict[str, Any]]:
    """Yield the filtered calls newest first as plain dicts of ``EXPORT_COLUMNS`` (no ORM).

    Fetched in batches from a server-side cursor, so an export of any length stays small.
    """
    columns = [getattr(Call, name) for name in EXPORT_COLUMNS]
    query = (
        select(*columns)
        .where(*_filtered(filters))  # type: ignore[arg-type]
        .order_by(Call.start_ts.desc(), Call.id.desc())
        .execution_options(yield_per=1_000)
    )
    for row in session.execute(query):
        yield dict(zip(EXPORT_COLUMNS, row, strict=True))
