"""What happened after an objection, from the database: SQL equals the pure figures.

The awkward cases: an objection on a call that also booked; an objection and a booking 10 days
later (inside ``win_back_days`` 14, outside 7); two objections on one call; a transfer between
administrators; a withheld number.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from callcenter.calls.model import AgentLeg, Disposition
from callcenter.reports.figures import Period, ReportOptions
from callcenter.store import queries, reports, users
from callcenter.store.models import Call, Task, TaskAttempt
from callcenter.store.models_speech import CallTag

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
DAY = Period(first=date(2026, 11, 10), last=date(2026, 11, 10), timezone="Europe/Moscow")
WEEKS = Period(first=date(2026, 11, 1), last=date(2026, 11, 22), timezone="Europe/Moscow")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


@pytest.fixture
def objections(session_factory, make_call):
    """Store the objection calls; return their linkedids by name."""

    def answered(start: float, caller: str | None, agent: str, **kw):
        return make_call(
            start_ts=T0 + start,
            caller=caller,
            disposition=Disposition.ANSWERED,
            agent=agent,
            last_agent=kw.pop("last_agent", agent),
            queue_wait_s=2.0,
            wait_s=3.0,
            talk_s=60.0,
            end_ts=T0 + start + 63,
            legs=kw.pop(
                "legs",
                (AgentLeg(agent, None, T0 + start, T0 + start + 3, T0 + start + 63, "answered"),),
            ),
            **kw,
        )

    booked_too = answered(0, "89160000001", "101")
    two = answered(600, "89160000002", "101")
    transfer = answered(
        1200,
        "89160000003",
        "101",
        last_agent="102",
        legs=(
            AgentLeg("101", None, T0 + 1200, T0 + 1203, T0 + 1230, "answered"),
            AgentLeg("102", None, T0 + 1230, T0 + 1232, T0 + 1263, "answered"),
        ),
        transfers=("blind",),
    )
    withheld = answered(1800, "anonymous", "102")
    withheld_lost = answered(2400, None, "102")
    # The patient of "two" calls again 10 days later and books (the tagger's «записан»).
    later = answered(10 * 86400, "89160000002", "103")
    calls = (booked_too, two, transfer, withheld, withheld_lost, later)
    with session_factory.begin() as s:
        for call in calls:
            queries.persist_call(s, call=call)

        def tag(linkedid: str, name: str, source: str = "tagger") -> None:
            s.add(CallTag(linkedid=linkedid, tag=name, source=source, created_at=NOW))

        tag(booked_too.linkedid, "price_objection")
        tag(booked_too.linkedid, "booked")
        tag(two.linkedid, "price_objection")
        tag(two.linkedid, "price_objection", source="supervisor")
        tag(two.linkedid, "thinking")
        tag(transfer.linkedid, "fear")
        tag(withheld.linkedid, "no_time")
        tag(withheld_lost.linkedid, "thinking")
        tag(later.linkedid, "booked")
        users.record_outcome(
            s,
            linkedid=withheld.linkedid,
            operator="anna",
            outcome="booked",
            detail="2026-11-12",
            note=None,
            at=_at(1870),
        )
        followup = Task(
            phone="+79160000002",
            reason="objection_followup",
            kind="marketing",
            status="closed",
            opened_at=_at(3600),
            due_at=_at(86400),
            closed_at=_at(2 * 86400),
            close_reason="other",
            first_call_linkedid=two.linkedid,
        )
        still_open = Task(
            phone="+79160000003",
            reason="objection_followup",
            kind="marketing",
            status="open",
            opened_at=_at(3600),
            due_at=_at(86400),
            first_call_linkedid=transfer.linkedid,
        )
        s.add_all([followup, still_open])
        s.flush()
        s.add(TaskAttempt(task_id=followup.id, started_at=_at(86400), outcome="no_answer"))
        s.add(TaskAttempt(task_id=followup.id, started_at=_at(90000), outcome="answered"))
        s.add(TaskAttempt(task_id=still_open.id, started_at=_at(86400), outcome="busy"))
    with session_factory() as s:
        # The withheld numbers are stored without a phone: only their own call can book them.
        phones = {k: v for k, v in s.execute(select(Call.linkedid, Call.phone))}
    assert phones[withheld.linkedid] is None and phones[withheld_lost.linkedid] is None


def _both(session_factory, period: Period, options: ReportOptions):
    with session_factory() as s:
        sql = reports.load_figures(s, period=period, options=options, now=NOW)
        rows = reports.load_figures_from_rows(s, period=period, options=options, now=NOW)
    return sql, rows


@pytest.mark.parametrize("period", [DAY, WEEKS])
@pytest.mark.parametrize("days", [14, 7])
def test_sql_objection_figures_equal_the_pure_ones(session_factory, objections, period, days):
    sql, rows = _both(session_factory, period, ReportOptions(win_back_days=days))
    assert sql.objections == rows.objections
    assert sql.objections_total == rows.objections_total
    assert sql.agents == rows.agents
    assert sql == rows


def test_objection_figures_by_hand(session_factory, objections):
    sql14, _ = _both(session_factory, DAY, ReportOptions(win_back_days=14))
    sql7, _ = _both(session_factory, DAY, ReportOptions(win_back_days=7))
    price14 = {o.tag: o for o in sql14.objections}["price_objection"]
    price7 = {o.tag: o for o in sql7.objections}["price_objection"]
    # "booked" booked on the call; "two" booked 10 days later: won back with 14 days, not 7.
    assert (price14.calls, price14.booked_on_call, price14.won_back_later) == (2, 1, 1)
    assert (price7.calls, price7.booked_on_call, price7.won_back_later, price7.lost) == (2, 1, 0, 1)
    assert (price14.with_task, price14.task_reached) == (1, 1)
    fear = {o.tag: o for o in sql14.objections}["fear"]
    assert (fear.calls, fear.with_task, fear.still_open, fear.won_back) == (1, 1, 1, 0)
    no_time = {o.tag: o for o in sql14.objections}["no_time"]
    assert (no_time.calls, no_time.booked_on_call) == (1, 1)  # withheld, «записан» on the call
    t = sql14.objections_total
    assert (t.calls, t.won_back, t.still_open, t.lost) == (5, 3, 1, 1)
    assert (sql7.objections_total.won_back, sql7.objections_total.lost) == (2, 2)
    agents = {a.agent: (a.objections, a.objections_booked) for a in sql14.agents}
    assert agents["101"] == (2, 2)
    assert agents["102"] == (3, 1)  # the transfer counts for the administrator who had it last
    assert {a.agent: (a.objections, a.objections_booked) for a in sql7.agents}["101"] == (2, 1)


def test_a_later_period_without_objections_sees_none(session_factory, objections):
    later = Period(first=date(2026, 11, 20), last=date(2026, 11, 20), timezone="Europe/Moscow")
    sql, rows = _both(session_factory, later, ReportOptions())
    assert sql.objections_total.calls == 0 and sql == rows
    # The call of that day that booked is listed with no objection calls.
    assert {a.agent: a.objections for a in sql.agents} == {"103": 0}
