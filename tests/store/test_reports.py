"""Supervisor figures from the database: the burst trace and hand-built awkward cases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from callcenter.calls.model import AgentLeg, Direction, Disposition
from callcenter.replay import replay_trace
from callcenter.reports.figures import Period, ReportOptions
from callcenter.store import queries, reports, users
from callcenter.store.models import TaskAttempt

BURST = Path(__file__).parents[2] / "callcenter" / "data" / "ami-traces" / "burst.expected.json"
BURST_DAY = Period(first=date(2026, 11, 22), last=date(2026, 11, 22), timezone="Europe/Moscow")


def test_burst_trace_gives_the_hand_counted_figures(session_factory):
    for call in sorted(replay_trace("burst"), key=lambda c: c.end_ts):
        with session_factory.begin() as s:
            queries.persist_call(s, call=call)
    with session_factory() as s:
        figures = reports.load_figures(s, period=BURST_DAY)
    t = figures.totals
    assert (t.inbound, t.answered, t.abandoned, t.queue_timeout) == (40, 6, 16, 18)
    assert t.missed == 18
    expected = json.loads(BURST.read_text(encoding="utf-8"))["calls"]
    short = sum(1 for c in expected if c["disposition"] == "abandoned" and c["queue_wait_s"] < 5)
    assert t.abandoned_short == short
    assert t.abandoned_real == 16 - short
    rung = Counter(agent for c in expected for agent in c["agents_rung"])
    answered = Counter(c["agent"] for c in expected if c["disposition"] == "answered")
    assert {a.agent: (a.offered, a.answered, a.missed) for a in figures.agents} == {
        agent: (rung[agent], answered[agent], 0) for agent in rung
    }
    within = sum(1 for c in expected if c["disposition"] == "answered" and c["queue_wait_s"] <= 20)
    assert t.service_level == within / (40 - short)
    assert figures.drops.dropped_calls == 34
    # 34 drops: the anonymous caller is never tasked, and +79777228464 was answered while
    # its drop was queued (stored in end-time order, the drop opens no task): 32 tasks.
    assert (figures.drops.with_task, figures.drops.tasks, figures.drops.still_open) == (32, 32, 32)
    assert dict(figures.by_hour)[20].inbound == 40  # 17:47 UTC is 20:47 in Moscow
    with session_factory() as s:
        page, cursor = reports.list_calls_page(
            s, filters=reports.CallFilter(period=BURST_DAY), limit=15
        )
        seen = [c.linkedid for c in page]
        while cursor:
            page, cursor = reports.list_calls_page(
                s, filters=reports.CallFilter(period=BURST_DAY), after=cursor, limit=15
            )
            seen += [c.linkedid for c in page]
        assert len(seen) == len(set(seen)) == 40
        only_101 = reports.CallFilter(period=BURST_DAY, agent="101", disposition="answered")
        assert len(list(reports.iter_calls(s, filters=only_101))) == answered["101"]


def test_repeat_caller_transfer_callback_on_third_attempt_and_late_booking(
    session_factory, make_call
):
    t0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
    drop1 = make_call(start_ts=t0, caller="89160000001", disposition=Disposition.QUEUE_TIMEOUT)
    drop2 = make_call(
        start_ts=t0 + 600,
        caller="+79160000001",
        disposition=Disposition.ABANDONED,
        queue_wait_s=3.0,
        wait_s=10.0,
        end_ts=t0 + 610,
    )
    transfer = make_call(
        start_ts=t0 + 900,
        caller="89160000002",
        disposition=Disposition.ANSWERED,
        agent="101",
        queue_wait_s=2.0,
        wait_s=4.0,
        talk_s=90.0,
        end_ts=t0 + 994,
        legs=(
            AgentLeg("101", None, t0 + 902, t0 + 904, t0 + 934, "answered"),
            AgentLeg("102", None, t0 + 934, t0 + 936, t0 + 994, "answered"),
        ),
    )
    callback = make_call(
        start_ts=t0 + 3 * 3600,
        caller="89160000001",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        agent="103",
        callback_task="1",
        queue=None,
        queue_wait_s=None,
        talk_s=60.0,
        end_ts=t0 + 3 * 3600 + 70,
        legs=(AgentLeg("103", None, t0 + 3 * 3600, t0 + 3 * 3600 + 5, None, "answered"),),
    )
    later = make_call(
        start_ts=t0 + 10 * 86400,
        caller="89160000001",
        disposition=Disposition.ANSWERED,
        agent="101",
        queue_wait_s=1.0,
        talk_s=30.0,
        end_ts=t0 + 10 * 86400 + 40,
    )
    with session_factory.begin() as s:
        for call in (drop1, drop2, transfer):
            queries.persist_call(s, call=call)
        task = queries.find_open_task(s, phone="+79160000001")
        assert task is not None
        for hours, outcome in ((1, "no_answer"), (2, "busy"), (3, "answered")):
            at = datetime.fromtimestamp(t0 + hours * 3600, UTC)
            s.add(TaskAttempt(task_id=task.id, started_at=at, ended_at=at, outcome=outcome))
        queries.persist_call(s, call=callback)
        queries.persist_call(s, call=later)
        users.record_outcome(
            s,
            linkedid=later.linkedid,
            operator="anna",
            outcome="booked",
            detail="2026-11-25",
            note=None,
            at=datetime.fromtimestamp(later.end_ts, UTC),
        )
    period = Period(first=date(2026, 11, 10), last=date(2026, 11, 10), timezone="Europe/Moscow")
    with session_factory() as s:
        figures = reports.load_figures(s, period=period, options=ReportOptions(win_back_days=14))
        short = reports.load_figures(s, period=period, options=ReportOptions(win_back_days=7))
    d = figures.drops
    assert (d.dropped_calls, d.with_task, d.tasks, d.attempted, d.reached) == (2, 2, 1, 1, 1)
    opened = drop1.end_ts
    assert d.median_to_first_attempt_s == t0 + 3600 - opened
    assert d.median_to_contact_s == t0 + 3 * 3600 - opened
    assert d.won_back == 1 and short.drops.won_back == 0
    assert figures.totals.inbound == 3
    assert figures.totals.abandoned_short == 1
    agents = {a.agent: a for a in figures.agents}
    assert (agents["101"].answered, agents["101"].avg_talk_s) == (1, 30.0)
    assert (agents["102"].answered, agents["102"].avg_talk_s) == (1, 58.0)
    assert agents["103"].callbacks == 1


def test_empty_period_and_future_days_have_nothing(session_factory):
    period = Period(first=date(2030, 1, 1), last=date(2030, 1, 7), timezone="Europe/Moscow")
    with session_factory() as s:
        figures = reports.load_figures(s, period=period)
        assert reports.list_calls_page(s, filters=reports.CallFilter(period=period)) == ([], None)
    assert figures.totals.inbound == 0 and figures.drops.tasks == 0
    assert [day for day, _ in figures.by_day][0] == date(2030, 1, 1)
    assert timedelta(days=len(figures.by_day)) == timedelta(days=7)


def test_ami_gaps_overlapping_the_period_are_counted_with_their_time_inside_it(session_factory):
    day = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # midnight of 22.11 in Moscow
    with session_factory.begin() as s:
        across_midnight = queries.open_gap(s, started_at=day - timedelta(minutes=10), reason="x")
        queries.close_gap(s, gap_id=across_midnight, ended_at=day + timedelta(minutes=5))
        before = queries.open_gap(s, started_at=day - timedelta(hours=5), reason="x")
        queries.close_gap(s, gap_id=before, ended_at=day - timedelta(hours=4))
        queries.open_gap(s, started_at=day + timedelta(hours=23), reason="still down")
    with session_factory() as s:
        figures = reports.load_figures(s, period=BURST_DAY, now=day + timedelta(days=2))
    assert figures.gaps.count == 2
    assert figures.gaps.total_s == 5 * 60 + 3600
