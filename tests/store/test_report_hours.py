"""The dashboard's hourly rollups on PostgreSQL: kept current by triggers, equal to the rows.

``tests/store/test_reports_sql.py`` compares the dashboard with the pure figures on fixed data
(on PostgreSQL through the rollups); here the data changes after the hours were computed, and
each change must show in the next dashboard: a late call, tag, outcome, leg, a deleted call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update

from callcenter.calls.model import AgentLeg, Disposition
from callcenter.reports.figures import Period, ReportOptions
from callcenter.store import queries, report_hours, reports, users
from callcenter.store.models import Call, CallLeg, Task, TaskAttempt
from callcenter.store.models_reports import ReportHour
from callcenter.store.models_speech import CallTag

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
MOSCOW = "Europe/Moscow"
PERIOD = Period(first=date(2026, 11, 9), last=date(2026, 11, 11), timezone=MOSCOW)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _hour(ts: float) -> datetime:
    at = datetime.fromtimestamp(ts, UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the rollups and their triggers are PostgreSQL's; SQLite reads the calls")


def _answered(make_call, start: float, *, agent: str = "101", wait: float = 2.0):
    return make_call(
        start_ts=start,
        caller="89160000009",
        disposition=Disposition.ANSWERED,
        agent=agent,
        queue_wait_s=wait,
        wait_s=wait + 1.0,
        talk_s=30.0,
        end_ts=start + wait + 31,
        legs=(AgentLeg(agent, None, start + 1, start + wait, start + wait + 31, "answered"),),
    )


def _equal_to_the_rows(session_factory, options: ReportOptions | None = None):
    with session_factory() as s:
        sql = reports.load_figures(s, period=PERIOD, options=options, now=NOW)
        rows = reports.load_figures_from_rows(s, period=PERIOD, options=options, now=NOW)
    assert sql == rows
    return sql


def _stale(session_factory) -> list[datetime]:
    with session_factory() as s:
        return report_hours.stale_hours(s.connection())


@pytest.mark.postgres
def test_each_change_marks_its_call_hour_and_the_next_dashboard_shows_it(
    db_url, session_factory, make_call
):
    _postgres_only(db_url)
    first = _answered(make_call, T0)
    other = _answered(make_call, T0 + 2 * 3600, agent="102")
    with session_factory.begin() as s:
        queries.persist_call(s, call=first)
        queries.persist_call(s, call=other)
    figures = _equal_to_the_rows(session_factory)
    assert figures.totals.inbound == 2
    assert _stale(session_factory) == []  # the read took the marks of the new calls
    with session_factory() as s:
        computed = s.scalar(select(ReportHour.hour).where(ReportHour.hour == _hour(T0)))
    assert computed == _hour(T0)

    # A call stored late into an hour already computed (the store writer held it).
    with session_factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0 + 600, wait=7.5))
    assert _stale(session_factory) == [_hour(T0)]
    assert _equal_to_the_rows(session_factory).totals.inbound == 3

    # The tagger's tags and a supervisor's correction, hours after the call.
    with session_factory.begin() as s:
        for tag, source in (("price_objection", "tagger"), ("fear", "supervisor")):
            s.add(CallTag(linkedid=other.linkedid, tag=tag, source=source, created_at=NOW))
    assert _stale(session_factory) == [_hour(T0 + 2 * 3600)]
    figures = _equal_to_the_rows(session_factory)
    assert {t.tag: t.calls for t in figures.tags} == {"price_objection": 1, "fear": 1}
    assert figures.objections_total.calls == 1

    # The operator records «записан» on the objection call: it was booked on the call.
    with session_factory.begin() as s:
        users.record_outcome(
            s,
            linkedid=other.linkedid,
            operator="anna",
            outcome="booked",
            detail="2026-11-25",
            note=None,
            at=NOW,
        )
    assert _stale(session_factory) == [_hour(T0 + 2 * 3600)]
    figures = _equal_to_the_rows(session_factory)
    assert figures.objections_total.booked_on_call == 1

    # A leg changed afterwards (its end corrected): the administrator's talk time moves.
    with session_factory.begin() as s:
        s.execute(
            update(CallLeg)
            .where(CallLeg.agent == "102")
            .values(ended_at=datetime.fromtimestamp(T0 + 2 * 3600 + 100, UTC))
        )
    assert _stale(session_factory) == [_hour(T0 + 2 * 3600)]
    agents = {a.agent: a for a in _equal_to_the_rows(session_factory).agents}
    assert agents["102"].avg_talk_s == 98.0

    # A column no figure reads changes: nothing is recomputed.
    with session_factory.begin() as s:
        s.execute(update(Call).values(recording="/var/spool/asterisk/monitor/x.wav"))
    assert _stale(session_factory) == []

    # A call deleted (retention, «забыть»): its hour is recomputed without it.
    with session_factory.begin() as s:
        s.execute(delete(Call).where(Call.linkedid == first.linkedid))
    assert _stale(session_factory) == [_hour(T0)]
    assert _equal_to_the_rows(session_factory).totals.inbound == 2


@pytest.mark.postgres
def test_thresholds_of_the_request_apply_to_hours_computed_before(
    db_url, session_factory, make_call
):
    """The hours keep the waits themselves, so any threshold and percentile is exact: waits
    here are tenths (not binary fractions), summed exactly (fsum) on both sides."""
    _postgres_only(db_url)
    with session_factory.begin() as s:
        for i in range(40):
            wait = round(0.1 * (i * 7 % 53), 1)
            call = _answered(make_call, T0 + 97 * i, wait=wait)
            if i % 3 == 0:
                call = make_call(
                    start_ts=T0 + 97 * i,
                    caller="89160000010",
                    disposition=Disposition.ABANDONED,
                    queue_wait_s=None if i % 2 else wait,
                    wait_s=wait + 0.3,
                    end_ts=T0 + 97 * i + wait + 1,
                )
            queries.persist_call(s, call=call)
    base = _equal_to_the_rows(session_factory)
    for options in (
        ReportOptions(short_abandon_s=0.0, service_level_s=0.0),
        ReportOptions(short_abandon_s=2.2, service_level_s=3.3),
        ReportOptions(short_abandon_s=100.0, service_level_s=100.0),
    ):
        figures = _equal_to_the_rows(session_factory, options)
        assert figures.totals.inbound == base.totals.inbound == 40
    assert base.totals.p90_queue_wait_s is not None
    assert base.totals.avg_queue_wait_s is not None


@pytest.mark.postgres
def test_refresh_computes_each_hour_once_until_it_changes(db_url, engine, make_call):
    _postgres_only(db_url)
    from callcenter.store.db import create_session_factory

    factory = create_session_factory(engine)
    with factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0))
    hours = int((PERIOD.end - PERIOD.start) / report_hours.HOUR)
    assert report_hours.refresh(engine, start=PERIOD.start, end=PERIOD.end) == hours == 72
    assert report_hours.refresh(engine, start=PERIOD.start, end=PERIOD.end) == 0
    with factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0 + 60))
    assert report_hours.refresh(engine, start=PERIOD.start, end=PERIOD.end) == 1
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT count(*) FROM report_hour_calls WHERE hour = :h"), {"h": _hour(T0)}
        ).scalar()
    assert rows == 1  # one disposition in that hour, recomputed, not appended


def test_whole_hour_zones_read_the_rollups_and_others_the_calls():
    assert report_hours.covers(PERIOD)
    assert report_hours.covers(
        Period(first=date(2026, 11, 9), last=date(2026, 11, 9), timezone="UTC")
    )
    # New York leaves summer time on 1 November 2026, on the hour.
    assert report_hours.covers(
        Period(first=date(2026, 10, 25), last=date(2026, 11, 12), timezone="America/New_York")
    )
    assert not report_hours.covers(
        Period(first=date(2026, 11, 3), last=date(2026, 11, 17), timezone="Asia/Kolkata")
    )
    # Lord Howe Island moves its clocks by half an hour.
    assert not report_hours.covers(
        Period(first=date(2026, 3, 30), last=date(2026, 4, 10), timezone="Australia/Lord_Howe")
    )


def test_sqlite_reads_the_calls_and_leaves_the_rollups_empty(db_url, session_factory, make_call):
    if db_url.startswith("postgresql"):
        pytest.skip("SQLite only")
    with session_factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0))
    assert _equal_to_the_rows(session_factory).totals.inbound == 1
    with session_factory() as s:
        assert s.scalar(select(ReportHour.hour)) is None


def test_packed_values_round_trip():
    import struct

    values = [0.0, 0.1, 2.5, 1e-9, 12345.678]
    packed = b"".join(struct.pack(">d", v) for v in values)
    assert list(report_hours.unpack(packed)) == values
    assert list(report_hours.unpack(b"")) == []


@pytest.mark.postgres
def test_callback_attempts_and_closings_after_the_read_move_the_drop_figures(
    db_url, session_factory, make_call
):
    _postgres_only(db_url)
    drop = make_call(start_ts=T0, caller="89160000001", disposition=Disposition.QUEUE_TIMEOUT)
    with session_factory.begin() as s:
        queries.persist_call(s, call=drop)
    figures = _equal_to_the_rows(session_factory)
    assert (figures.drops.tasks, figures.drops.with_task, figures.drops.attempted) == (1, 1, 0)

    # The dialer's attempts come hours later; the second one reaches the patient.
    with session_factory.begin() as s:
        task = queries.find_open_task(s, phone="+79160000001")
        assert task is not None
        for hours, outcome in ((2, "no_answer"), (5, "answered")):
            at = datetime.fromtimestamp(T0 + hours * 3600, UTC)
            s.add(TaskAttempt(task_id=task.id, started_at=at, ended_at=at, outcome=outcome))
    drops = _equal_to_the_rows(session_factory).drops
    assert (drops.attempted, drops.reached) == (1, 1)
    assert drops.median_to_first_attempt_s == 2 * 3600 - 26  # the task opened at the hang-up

    # A repeat drop from the same number joins the open task, in a later hour.
    again = make_call(
        start_ts=T0 + 3 * 3600, caller="+79160000001", disposition=Disposition.ABANDONED
    )
    with session_factory.begin() as s:
        queries.persist_call(s, call=again)
    drops = _equal_to_the_rows(session_factory).drops
    assert (drops.dropped_calls, drops.with_task, drops.tasks) == (2, 2, 1)

    # The task is closed as unreachable.
    with session_factory.begin() as s:
        s.execute(
            update(Task).values(
                status="closed", close_reason="unreachable", closed_at=NOW - timedelta(days=1)
            )
        )
    drops = _equal_to_the_rows(session_factory).drops
    assert (drops.still_open, drops.unreachable) == (0, 1)


@pytest.mark.postgres
def test_the_parts_of_one_read_share_one_snapshot(db_url, engine, make_call):
    """A row committed while the parts run is seen by none of them, even by a part that
    starts reading after the commit."""
    _postgres_only(db_url)
    import threading

    from callcenter.store import snapshot_reads
    from callcenter.store.db import create_session_factory

    factory = create_session_factory(engine)
    with factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0))
    committed = threading.Event()
    count = text("SELECT count(*) FROM calls")

    def writer(s):
        with factory.begin() as other:
            queries.persist_call(other, call=_answered(make_call, T0 + 60))
        committed.set()
        return s.execute(count).scalar()

    def late_reader(s):
        assert committed.wait(timeout=30)
        return s.execute(count).scalar()

    with factory() as s:
        result = snapshot_reads.run_parts(s, {"writer": writer, "reader": late_reader})
        assert s.execute(count).scalar() == 2  # the caller's own next statement: a new one
    assert result == {"writer": 1, "reader": 1}


def test_parts_run_in_the_callers_session_on_sqlite(db_url, session_factory):
    if db_url.startswith("postgresql"):
        pytest.skip("SQLite only")
    from callcenter.store import snapshot_reads

    with session_factory() as s:
        result = snapshot_reads.run_parts(s, {"a": lambda p: p is s, "b": lambda p: p is s})
    assert result == {"a": True, "b": True}


def test_maintenance_keeps_the_last_weeks_computed(db_url, engine, make_call):
    from callcenter.maintenance import REPORT_WARM_DAYS, refresh_report_hours
    from callcenter.store.db import create_session_factory

    factory = create_session_factory(engine)
    with factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0))
    now = datetime.fromtimestamp(T0, UTC) + timedelta(days=2, minutes=30)
    done = refresh_report_hours(factory, now=now)
    if not db_url.startswith("postgresql"):
        assert done == 0  # SQLite reads the calls themselves
        return
    assert done == REPORT_WARM_DAYS * 24
    assert refresh_report_hours(factory, now=now) == 0
    with factory.begin() as s:
        queries.persist_call(s, call=_answered(make_call, T0 + 60))
    assert refresh_report_hours(factory, now=now) == 1
