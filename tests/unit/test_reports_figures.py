"""Supervisor figures over hand-built rows: the awkward cases, computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from callcenter.reports.figures import (
    OUTCOME_TAGS,
    AttemptRow,
    BadPeriod,
    BookingRow,
    CallRow,
    GapRow,
    LegRow,
    Period,
    ReportOptions,
    TaskRow,
    compute_figures,
    figure_csv_rows,
    figures_payload,
    parse_period,
    summarize_calls,
)

TODAY = date(2026, 11, 23)
PERIOD = Period(first=date(2026, 11, 16), last=date(2026, 11, 22), timezone="Europe/Moscow")
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


def inbound(linkedid: str, disposition: str, *, at: datetime = T0, **kw) -> CallRow:
    return CallRow(
        linkedid=linkedid, direction="inbound", disposition=disposition, started_at=at, **kw
    )


def test_counts_rates_short_abandons_and_service_level():
    calls = [
        inbound("a1", "answered", queue_wait_s=3.0),
        inbound("a2", "answered", queue_wait_s=25.0),
        inbound("ab1", "abandoned", queue_wait_s=4.9),  # short: under 5 s in the queue
        inbound("ab2", "abandoned", queue_wait_s=5.0),  # real
        inbound("qt", "queue_timeout", queue_wait_s=20.0),
        inbound("na", "no_answer"),
        inbound("bz", "busy"),
        inbound("ivr", "ivr_abandoned"),
        CallRow(linkedid="o", direction="outbound", disposition="outbound_answered", started_at=T0),
    ]
    f = summarize_calls(calls, options=ReportOptions())
    assert (f.inbound, f.answered, f.missed, f.abandoned) == (8, 2, 3, 2)
    assert (f.abandoned_short, f.abandoned_real, f.ivr_abandoned) == (1, 1, 1)
    assert f.answered_rate == pytest.approx(2 / 8)
    assert f.avg_queue_wait_s == pytest.approx((3 + 25 + 4.9 + 5 + 20) / 5)
    assert f.p90_queue_wait_s == 25.0
    # Within 20 s: a1 only; offered = 8 - 1 ivr - 1 short abandon = 6.
    assert f.service_level == pytest.approx(1 / 6)
    assert summarize_calls(calls, options=ReportOptions(short_abandon_s=6)).abandoned_short == 2


def test_repeat_caller_transfer_third_attempt_and_late_booking():
    drop1 = inbound("d1", "queue_timeout", phone="+79160000001", queue_wait_s=20.0)
    drop2 = inbound(
        "d2", "abandoned", phone="+79160000001", at=T0 + timedelta(hours=1), queue_wait_s=9.0
    )
    transfer = inbound(
        "t",
        "answered",
        phone="+79160000002",
        agent="101",
        queue_wait_s=2.0,
        legs=(
            LegRow("101", "answered", T0, T0 + timedelta(seconds=30)),
            LegRow("102", "cancelled"),
            LegRow("102", "answered", T0 + timedelta(seconds=32), T0 + timedelta(seconds=92)),
            LegRow("103", "no_answer"),
        ),
    )
    callback = CallRow(
        linkedid="cb",
        direction="outbound",
        disposition="outbound_answered",
        started_at=T0 + timedelta(hours=3),
        agent="103",
        callback_task="1",
    )
    opened = T0 + timedelta(seconds=26)
    task = TaskRow(
        task_id=1,
        phone="+79160000001",
        reason="missed_call",
        status="closed",
        opened_at=opened,
        closed_at=opened + timedelta(hours=3, minutes=1),
        close_reason="reached",
        drop_linkedids=("d1", "d2"),
        attempts=(
            AttemptRow(opened + timedelta(hours=1), "no_answer"),
            AttemptRow(opened + timedelta(hours=2), "busy"),
            AttemptRow(opened + timedelta(hours=3), "answered"),
        ),
    )
    booking = BookingRow(phone="+79160000001", at=opened + timedelta(days=10))
    figures = compute_figures(
        period=PERIOD,
        calls=[drop1, drop2, transfer, callback],
        tasks=[task],
        bookings=[booking],
        gaps=[GapRow(T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))],
        options=ReportOptions(win_back_days=14),
    )
    d = figures.drops
    assert (d.dropped_calls, d.with_task, d.tasks, d.attempted, d.reached) == (2, 2, 1, 1, 1)
    assert d.median_to_first_attempt_s == 3600.0
    assert d.median_to_contact_s == 3 * 3600.0
    assert (d.won_back, d.still_open, d.unreachable) == (1, 0, 0)
    assert d.reached_rate == 1.0
    agents = {a.agent: a for a in figures.agents}
    assert (agents["101"].offered, agents["101"].answered, agents["101"].avg_talk_s) == (1, 1, 30)
    assert (agents["102"].offered, agents["102"].answered, agents["102"].avg_talk_s) == (1, 1, 60)
    assert (agents["103"].offered, agents["103"].missed, agents["103"].callbacks) == (1, 1, 1)
    assert figures.totals.inbound == 3  # one call for the transfer, two for the repeat caller
    assert (figures.gaps.count, figures.gaps.total_s) == (1, 600.0)
    by_day = dict(figures.by_day)
    assert by_day[date(2026, 11, 20)].inbound == 3
    assert sum(f.inbound for f in by_day.values()) == 3
    assert dict(figures.by_hour)[12].inbound == 2  # Moscow time
    short_window = compute_figures(
        period=PERIOD,
        calls=[drop1],
        tasks=[task],
        bookings=[booking],
        options=ReportOptions(win_back_days=7),
    )
    assert short_window.drops.won_back == 0
    assert figures_payload(figures)["drops"]["won_back"] == 1
    rows = list(figure_csv_rows(figures))
    assert rows[0][0] == "bucket" and rows[1][0] == "period" and len(rows) == 1 + 1 + 7 + 24


def test_empty_period_has_zero_counts_and_no_rates():
    figures = compute_figures(period=PERIOD, calls=[])
    assert figures.totals.inbound == 0
    assert figures.totals.answered_rate is None
    assert figures.totals.service_level is None
    assert figures.drops.median_to_first_attempt_s is None
    assert len(figures.by_day) == 7 and len(figures.by_hour) == 24


def test_period_defaults_to_the_last_seven_days():
    period = parse_period(None, None, today=TODAY, timezone="Europe/Moscow")
    assert (period.first, period.last) == (date(2026, 11, 17), TODAY)
    assert period.start == datetime(2026, 11, 16, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-11-20", "2026-11-10", "starts after it ends"),
        ("2026-12-01", "2026-12-07", "future"),
        ("2026-13-01", None, "YYYY-MM-DD"),
        ("yesterday", None, "YYYY-MM-DD"),
        ("2020-01-01", "2026-11-01", "longer"),
    ],
)
def test_bad_periods_are_domain_errors(first, last, message):
    with pytest.raises(BadPeriod, match=message):
        parse_period(first, last, today=TODAY, timezone="Europe/Moscow")


def test_report_tags_are_the_taggers_tags():
    from callcenter.speech.tagger import TAGS

    assert OUTCOME_TAGS == TAGS


def test_tag_figures_count_calls_once_per_tag_and_share_of_tagged_calls():
    calls = [
        inbound("a", "answered", tags=("price_objection", "price_objection", "thinking")),
        inbound("b", "answered", tags=("price_objection",)),
        inbound("c", "answered"),
    ]
    figures = compute_figures(period=PERIOD, calls=calls)
    assert figures.tagged_calls == 2
    assert [(t.tag, t.calls, t.share) for t in figures.tags] == [
        ("price_objection", 2, 1.0),
        ("thinking", 1, 0.5),
    ]
    assert figures_payload(figures)["tags"][0] == {
        "tag": "price_objection",
        "calls": 2,
        "share": 1.0,
    }
