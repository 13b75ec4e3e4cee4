"""Reads for the supervisor reports: rows for ``callcenter.reports.figures``, the call list.

The caller owns the session. Rows are streamed from the database in batches
(``yield_per``), so a year of calls never sits in memory as ORM objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from callcenter.errors import CallcenterError
from callcenter.reports.figures import (
    DROPPED_TASK_REASONS,
    AttemptRow,
    BookingRow,
    CallRow,
    Figures,
    GapRow,
    LegRow,
    Period,
    ReportOptions,
    TaskRow,
    compute_figures,
)
from callcenter.store.models import AmiGap, Call, CallLeg, Task, TaskAttempt, TaskEvent
from callcenter.store.models_patients import PatientPhone, Visit
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
        ) in session.execute(call_query.execution_options(yield_per=_BATCH))
    ]


def load_gap_rows(session: Session, *, period: Period) -> list[GapRow]:
    """Return the AMI gaps overlapping the period."""
    query = select(AmiGap.started_at, AmiGap.ended_at).where(
        AmiGap.started_at < period.end,
        or_(AmiGap.ended_at.is_(None), AmiGap.ended_at > period.start),
    )
    return [GapRow(started_at=s, ended_at=e) for s, e in session.execute(query)]


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
    attempts: dict[int, list[AttemptRow]] = defaultdict(list)
    for task_id, started_at, outcome in session.execute(
        select(TaskAttempt.task_id, TaskAttempt.started_at, TaskAttempt.outcome)
        .join(Task, Task.id == TaskAttempt.task_id)
        .where(in_period)
    ):
        attempts[task_id].append(AttemptRow(started_at=started_at, outcome=outcome))
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
        BookingRow(phone=phone, at=at)
        for phone, at in session.execute(
            select(Call.phone, CallOutcome.at)
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


def load_figures(
    session: Session,
    *,
    period: Period,
    options: ReportOptions | None = None,
    now: datetime | None = None,
) -> Figures:
    """Load the period's rows and compute every dashboard figure."""
    options = options or ReportOptions()
    return compute_figures(
        period=period,
        calls=load_call_rows(session, period=period),
        gaps=load_gap_rows(session, period=period),
        tasks=load_task_rows(session, period=period),
        bookings=load_booking_rows(session, period=period, options=options),
        options=options,
        now=now,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFilter:
    """The call list's filters; None means any."""

    period: Period
    disposition: str | None = None
    agent: str | None = None
    phone: str | None = None  # E.164 or a fragment of the raw caller number


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
    ]
    if filters.disposition:
        where.append(Call.disposition == filters.disposition)
    if filters.agent:
        where.append(or_(Call.agent == filters.agent, Call.last_agent == filters.agent))
    if filters.phone:
        digits = "".join(ch for ch in filters.phone if ch.isdigit())
        if digits:
            where.append(or_(Call.phone.contains(digits[-10:]), Call.caller.contains(digits)))
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
