"""The SQL-aggregated dashboard equals the pure figures over the same rows, on both back-ends.

``reports.load_figures`` groups and ranks in the database; ``reports.load_figures_from_rows``
loads the rows and runs ``callcenter.reports.figures`` over them. Every figure must match
exactly: waits and times here are binary fractions, so even the averages add up the same in
any order.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from callcenter.calls.model import AgentLeg, Direction, Disposition
from callcenter.reports.figures import Period, ReportOptions
from callcenter.store import queries, reports, users
from callcenter.store.models import Task, TaskAttempt
from callcenter.store.models_patients import Patient, PatientPhone, Visit
from callcenter.store.models_speech import CallTag

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
MOSCOW = "Europe/Moscow"


def _tag(s, linkedid: str, tag: str, source: str = "tagger") -> None:
    s.add(CallTag(linkedid=linkedid, tag=tag, source=source, created_at=datetime.now(UTC)))


@pytest.fixture
def awkward(session_factory, make_call):
    """Store the issue's awkward cases, and return the callback task's opening time."""
    drop1 = make_call(start_ts=T0, caller="89160000001", disposition=Disposition.QUEUE_TIMEOUT)
    # A repeat caller: the same number drops again ten minutes later (one task, two drops).
    drop2 = make_call(
        start_ts=T0 + 600,
        caller="+79160000001",
        disposition=Disposition.ABANDONED,
        queue_wait_s=3.0,
        wait_s=10.0,
        end_ts=T0 + 610,
    )
    # A transfer: one call, two administrators.
    transfer = make_call(
        start_ts=T0 + 900,
        caller="89160000002",
        disposition=Disposition.ANSWERED,
        agent="101",
        queue_wait_s=2.0,
        wait_s=4.0,
        talk_s=90.0,
        end_ts=T0 + 994,
        legs=(
            AgentLeg("101", None, T0 + 902, T0 + 904, T0 + 934, "answered"),
            AgentLeg("102", None, T0 + 934, T0 + 936, T0 + 994, "answered"),
            AgentLeg("103", None, T0 + 902, None, None, "no_answer"),
        ),
    )
    # The callback that reached the patient on the third attempt.
    callback = make_call(
        start_ts=T0 + 3 * 3600,
        caller="89160000001",
        direction=Direction.OUTBOUND,
        disposition=Disposition.OUTBOUND_ANSWERED,
        agent="103",
        callback_task="1",
        queue=None,
        queue_wait_s=None,
        talk_s=60.0,
        end_ts=T0 + 3 * 3600 + 70,
        legs=(AgentLeg("103", None, T0 + 3 * 3600, T0 + 3 * 3600 + 5, None, "answered"),),
    )
    # The patient calls again ten days later and books.
    later = make_call(
        start_ts=T0 + 10 * 86400,
        caller="89160000001",
        disposition=Disposition.ANSWERED,
        agent="101",
        queue_wait_s=1.0,
        talk_s=30.0,
        end_ts=T0 + 10 * 86400 + 40,
        legs=(AgentLeg("101", None, T0 + 10 * 86400, T0 + 10 * 86400 + 1, None, "answered"),),
    )
    # Another dropped number books a visit 10 days later (not by phone outcome).
    drop3 = make_call(start_ts=T0 + 7200, caller="89160000003", disposition=Disposition.BUSY)
    with session_factory.begin() as s:
        for call in (drop1, drop2, transfer, drop3):
            queries.persist_call(s, call=call)
        task = queries.find_open_task(s, phone="+79160000001")
        assert task is not None
        for hours, outcome in ((1, "no_answer"), (2, "busy"), (3, "answered")):
            at = datetime.fromtimestamp(t0_plus(hours * 3600), UTC)
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
        patient = Patient(full_name="Иванова Мария")
        s.add(patient)
        s.flush()
        s.add(PatientPhone(patient_id=patient.id, phone="+79160000003"))
        s.add(
            Visit(
                patient_id=patient.id,
                visit_date=date(2026, 11, 25),
                status="scheduled",
                booked_at=datetime.fromtimestamp(T0 + 10 * 86400, UTC),
            )
        )
        _tag(s, transfer.linkedid, "price_objection")
        _tag(s, transfer.linkedid, "price_objection", source="supervisor")
        _tag(s, transfer.linkedid, "thinking")
        _tag(s, later.linkedid, "booked")
        return task.opened_at


def t0_plus(seconds: float) -> float:
    return T0 + seconds


def _random_calls(session_factory, make_call, *, n: int, seed: int) -> None:
    """Store ``n`` random calls over two weeks (waits and times in quarter seconds)."""
    rng = random.Random(seed)
    dispositions = [
        Disposition.ANSWERED,
        Disposition.ANSWERED,
        Disposition.ABANDONED,
        Disposition.QUEUE_TIMEOUT,
        Disposition.NO_ANSWER,
        Disposition.BUSY,
        Disposition.IVR_ABANDONED,
    ]
    with session_factory.begin() as s:
        for _ in range(n):
            start = T0 - 7 * 86400 + rng.randrange(14 * 86400 * 4) / 4
            disposition = rng.choice(dispositions)
            answered = disposition == Disposition.ANSWERED
            wait = None if disposition == Disposition.IVR_ABANDONED else rng.randrange(160) / 4
            agent = rng.choice(("101", "102", "103"))
            legs = ()
            if wait is not None:
                legs = (
                    AgentLeg(
                        agent,
                        None,
                        start + 1,
                        start + wait if answered else None,
                        start + wait + 60.5 if answered else start + wait,
                        "answered" if answered else rng.choice(("no_answer", "busy", "cancelled")),
                    ),
                )
            call = make_call(
                start_ts=start,
                caller=f"8916{rng.randrange(40):07d}",
                disposition=disposition,
                agent=agent if answered else None,
                queue_wait_s=wait,
                wait_s=(wait or 0.0) + 1.5,
                talk_s=60.5 if answered else 0.0,
                end_ts=start + (wait or 0.0) + 61,
                legs=legs,
            )
            queries.persist_call(s, call=call)
            if rng.random() < 0.3:
                _tag(s, call.linkedid, rng.choice(("price_objection", "fear", "thinking")))
        tasks = list(s.query(Task))
        for task in tasks:
            for k in range(rng.randrange(4)):
                at = task.opened_at + timedelta(minutes=15 * (k + 1), seconds=rng.randrange(8) / 8)
                outcome = rng.choice(("answered", "no_answer", "busy", None))
                s.add(TaskAttempt(task_id=task.id, started_at=at, ended_at=at, outcome=outcome))
            if rng.random() < 0.5:
                task.status = "closed"
                task.closed_at = task.opened_at + timedelta(hours=rng.randrange(1, 48))
                task.close_reason = rng.choice(("reached", "got_through", "unreachable", "other"))


def _both(session_factory, period: Period, options: ReportOptions | None = None):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with session_factory() as s:
        sql = reports.load_figures(s, period=period, options=options, now=now)
        rows = reports.load_figures_from_rows(s, period=period, options=options, now=now)
    return sql, rows


def test_sql_figures_equal_the_pure_figures_on_the_awkward_cases(session_factory, awkward):
    for period in (
        Period(first=date(2026, 11, 10), last=date(2026, 11, 10), timezone=MOSCOW),
        Period(first=date(2026, 11, 1), last=date(2026, 11, 22), timezone=MOSCOW),
        Period(first=date(2026, 11, 20), last=date(2026, 11, 22), timezone="UTC"),
    ):
        for options in (ReportOptions(), ReportOptions(win_back_days=7, short_abandon_s=3.5)):
            sql, rows = _both(session_factory, period, options)
            assert sql == rows, (period, options)
    sql, _ = _both(
        session_factory,
        Period(first=date(2026, 11, 10), last=date(2026, 11, 10), timezone=MOSCOW),
    )
    # The hand-checked values, so equality is not two empty results agreeing.
    d = sql.drops
    assert (d.dropped_calls, d.with_task, d.tasks, d.attempted, d.reached) == (3, 3, 2, 1, 1)
    assert d.median_to_contact_s == T0 + 3 * 3600 - awkward.timestamp()
    assert d.won_back == 2  # a booking outcome 10 days later, and a visit booked 10 days later
    agents = {a.agent: a for a in sql.agents}
    assert (agents["101"].answered, agents["101"].avg_talk_s) == (1, 30.0)
    assert (agents["102"].answered, agents["102"].avg_talk_s) == (1, 58.0)
    assert (agents["103"].offered, agents["103"].missed, agents["103"].callbacks) == (1, 1, 1)
    assert {t.tag: t.calls for t in sql.tags} == {"price_objection": 1, "thinking": 1}
    assert sql.tagged_calls == 1 and sql.tags[0].share == 1.0
    assert sql.totals.inbound == 4 and sql.totals.abandoned_short == 1


def test_sql_figures_equal_the_pure_figures_on_random_calls(session_factory, make_call):
    _random_calls(session_factory, make_call, n=400, seed=3)
    for period in (
        Period(first=date(2026, 11, 3), last=date(2026, 11, 17), timezone=MOSCOW),
        Period(first=date(2026, 11, 9), last=date(2026, 11, 9), timezone=MOSCOW),
        # A clock change inside the period (New York leaves summer time on 1 November 2026).
        Period(first=date(2026, 10, 25), last=date(2026, 11, 12), timezone="America/New_York"),
        # A half-hour zone: hours are not whole UTC hours.
        Period(first=date(2026, 11, 3), last=date(2026, 11, 17), timezone="Asia/Kolkata"),
    ):
        for options in (ReportOptions(), ReportOptions(service_level_s=10.25, win_back_days=1)):
            sql, rows = _both(session_factory, period, options)
            assert sql.totals.inbound > 0
            assert sql == rows, (period, options)


def test_utc_offsets_find_the_clock_change_to_the_second():
    period = Period(first=date(2026, 10, 31), last=date(2026, 11, 2), timezone="America/New_York")
    change = datetime(2026, 11, 1, 6, 0, tzinfo=UTC).timestamp()  # 02:00 EDT → 01:00 EST
    assert reports.utc_offsets(period) == [(change, -4 * 3600.0), (float("inf"), -5 * 3600.0)]
    moscow = Period(first=date(2026, 1, 1), last=date(2026, 12, 31), timezone=MOSCOW)
    assert reports.utc_offsets(moscow) == [(float("inf"), 3 * 3600.0)]
