"""The dialer end to end: simulator over TCP → client → tracker → store → dialer → Originate.

The simulator plays a missed call (``queue_timeout``), the store opens its callback task, and
the dialer calls back; the simulator answers the Originate from the recorded outbound traces
(``outcome_rule``). Bad input: a refused Originate, a lost link, an OriginateResponse that never
comes, consent withdrawn, an undialable number, 20:59:59. No task is lost or doubled.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.ami.simulator import AmiSimulator, SimSession
from callcenter.config import Settings
from callcenter.dialer.worker import (
    DialerConfig,
    DialerProcess,
    Permission,
    build_dialer_process,
)
from callcenter.notify import RecordingNotifier
from callcenter.store.db import create_db_engine, create_session_factory
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import AttemptOutcome
from tests.replay.aio_helpers import wait_until

SECRET = "dialer-test-secret"
MSK = ZoneInfo("Europe/Moscow")
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=MSK).astimezone(UTC)
MISSED_CALLER = "+79035554433"  # the queue_timeout trace's caller
CONFIG = DialerConfig(
    worker_id="dialer-test",
    operators=("101",),
    originate_timeout_s=1.0,
    outcome_grace_s=2.0,
    answer_wait_s=2.0,
    lease_s=30.0,
)


def allow_all(*, phone: str, kind: str, at: datetime) -> Permission:
    return Permission(True, "test: allowed")


def settings_for(db_url: str, port: int) -> Settings:
    return Settings(
        database_url=db_url,
        ami_port=port,
        ami_secret=SECRET,
        ami_backoff_initial_s=0.05,
        ami_backoff_max_s=0.2,
        ami_ping_interval_s=5.0,
        ami_ping_timeout_s=5.0,
    )


def tasks(db_url: str) -> list[Task]:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            rows = list(session.scalars(select(Task).order_by(Task.id)))
            for row in rows:
                _ = row.attempt_rows, row.events
            return rows
    finally:
        engine.dispose()


def attempts(db_url: str) -> list[TaskAttempt]:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            return list(session.scalars(select(TaskAttempt).order_by(TaskAttempt.id)))
    finally:
        engine.dispose()


async def started(sim: AmiSimulator, db_url: str, **kwargs) -> DialerProcess:
    """A dialer process that also stores calls; returns once the missed call's task is open."""
    kwargs.setdefault("consent", allow_all)
    kwargs.setdefault("clock", lambda: MONDAY_NOON)
    process = build_dialer_process(
        settings_for(db_url, sim.port),
        notifier=RecordingNotifier(),
        store_calls=True,
        config=kwargs.pop("config", CONFIG),
        **kwargs,
    )
    await process.start()
    assert await process.wait_ready(10)
    await wait_until(
        lambda: any(t.status == "open" for t in tasks(db_url)), 15, what="the callback task"
    )
    return process


def run(scenario) -> None:
    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_missed_call_is_called_back_and_the_answered_call_closes_the_task(db_url):
    """queue_timeout → task → Originate → outbound_callback_answered → task closed (reached)."""
    results = []

    async def scenario() -> None:
        async with AmiSimulator(
            traces=["queue_timeout"],
            speed=0,
            port=0,
            secret=SECRET,
            outcome_rule=lambda r: "answered",
        ) as sim:
            process = await started(sim, db_url)
            try:
                results.extend(await process.dialer.run_once())
                # The stored call arrives through the writer thread; wait for it too.
                await wait_until(
                    lambda: tasks(db_url)[0].status == "closed", 10, what="task closed"
                )
            finally:
                await process.stop()
            (request,) = sim.originate_requests
            assert request.style == "patient_first"
            assert request.patient_number == MISSED_CALLER.removeprefix("+")
            assert request.extension == "101"
            assert request.task_id == str(results[0].task_id)
            assert request.action_id.startswith(f"cb-{results[0].task_id}-")

    run(scenario)
    (result,) = results
    assert (result.action, result.outcome) == ("dialled", AttemptOutcome.ANSWERED)
    (task,) = tasks(db_url)
    assert (task.status, task.close_reason, task.attempts) == ("closed", "reached", 1)
    (attempt,) = attempts(db_url)
    assert attempt.outcome == "answered" and attempt.call_linkedid is not None
    assert attempt.action_id.startswith(f"cb-{task.id}-")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("sim_outcome", "expected"),
    [("no_answer", AttemptOutcome.NO_ANSWER), ("busy", AttemptOutcome.BUSY)],
)
def test_unanswered_callback_is_recorded_and_rescheduled_after_the_first_gap(
    db_url, sim_outcome, expected
):
    """No answer (Reason 3) / busy (Reason 5): attempt recorded, task due again in 15 min."""
    results = []

    async def scenario() -> None:
        async with AmiSimulator(
            traces=["queue_timeout"],
            speed=0,
            port=0,
            secret=SECRET,
            outcome_rule=lambda r: sim_outcome,
        ) as sim:
            process = await started(sim, db_url)
            try:
                results.extend(await process.dialer.run_once())
                # Not due again yet: a second sweep at the same time dials nothing.
                assert await process.dialer.run_once() == []
            finally:
                await process.stop()
            assert sim.stats.originates == 1

    run(scenario)
    assert [(r.action, r.outcome, r.task_state) for r in results] == [
        ("dialled", expected, "rescheduled")
    ]
    (task,) = tasks(db_url)
    assert (task.status, task.attempts) == ("open", 1)
    assert task.due_at == MONDAY_NOON + timedelta(minutes=15)
    (attempt,) = attempts(db_url)
    assert attempt.outcome == str(expected) and attempt.action_id is not None


@pytest.mark.timeout(60)
def test_operator_first_no_answer_is_the_operators_and_uses_no_attempt(db_url):
    """Operator-first, Reason 3 on the operator's channel: the patient never rang."""
    results = []
    config = DialerConfig(
        worker_id="dialer-test",
        style="operator_first",
        originate_timeout_s=1.0,
        outcome_grace_s=2.0,
        answer_wait_s=2.0,
        lease_s=30.0,
    )

    async def scenario() -> None:
        async with AmiSimulator(
            traces=["queue_timeout"], speed=0, port=0, secret=SECRET, outcome_rule=lambda r: "busy"
        ) as sim:
            process = await started(sim, db_url, config=config)
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()

    run(scenario)
    assert results[0].outcome is AttemptOutcome.OPERATOR_NO_ANSWER
    (task,) = tasks(db_url)
    assert (task.status, task.attempts) == ("open", 0)
    assert task.due_at == MONDAY_NOON + timedelta(minutes=1)


@pytest.mark.timeout(60)
def test_rejected_originate_is_recorded_and_retried_without_using_an_attempt(db_url, monkeypatch):
    """Bad input: Asterisk answers the Originate with ``Response: Error``."""
    results = []

    def refuse(self: SimSession, fields, action_id) -> None:
        self.sim.stats.originates += 1
        self._reply(action_id, "Error", [("Message", "Originate failed")])

    monkeypatch.setattr(SimSession, "_originate", refuse)

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            process = await started(sim, db_url)
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()

    run(scenario)
    assert (results[0].outcome, results[0].detail) == (AttemptOutcome.REJECTED, "Originate failed")
    (task,) = tasks(db_url)
    assert (task.status, task.attempts) == ("open", 0)
    assert task.due_at == MONDAY_NOON + timedelta(minutes=1)
    assert [a.outcome for a in attempts(db_url)] == ["rejected"]


@pytest.mark.timeout(60)
def test_link_lost_between_claim_and_originate_sends_nothing_and_keeps_the_task(db_url):
    """Bad input: the AMI connection is lost after the claim, before the Originate."""
    results = []

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            process = await started(sim, db_url)
            client = process.client
            real = client.originate

            async def cut_then_originate(**kwargs):
                sim.reject_logins = True  # stays down while we try
                sim.send_shutdown()
                await wait_until(lambda: not client.logged_in, 5, what="link down")
                return await real(**kwargs)

            process.dialer.originator = type(
                "Cut", (), {"originate": staticmethod(cut_then_originate)}
            )()
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()
            assert sim.stats.originates == 0

    run(scenario)
    assert results[0].outcome is AttemptOutcome.NOT_SENT
    (task,) = tasks(db_url)
    assert (task.status, task.attempts) == ("open", 0)
    assert [a.outcome for a in attempts(db_url)] == ["not_sent"]


@pytest.mark.timeout(60)
def test_originate_response_that_never_comes_is_unknown_and_counts(db_url):
    """Bad input: the Originate is queued but no OriginateResponse ever follows (timeout)."""
    results = []

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            sim.templates.clear()  # nothing recorded to play after the reply
            process = await started(sim, db_url)
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()

    run(scenario)
    assert results[0].outcome is AttemptOutcome.UNKNOWN
    (task,) = tasks(db_url)
    # It may have rung: it counts, and the task is due again after the first gap.
    assert (task.status, task.attempts) == ("open", 1)
    assert task.due_at == MONDAY_NOON + timedelta(minutes=15)


@pytest.mark.timeout(60)
def test_consent_withdrawn_after_the_task_opened_refuses_before_any_call(db_url):
    """A withdrawal made a second before the call wins: checked again right before Originate."""
    results = []
    # Checked on opening, on claiming, and right before the Originate: withdrawn before that.
    answers = iter(
        [
            Permission(True, "callers_own_request"),
            Permission(True, "callers_own_request"),
            Permission(False, "do_not_call"),
        ]
    )

    def withdrawn(*, phone: str, kind: str, at: datetime) -> Permission:
        return next(answers)

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            process = await started(sim, db_url, consent=withdrawn)
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()
            assert sim.stats.originates == 0

    run(scenario)
    assert (results[0].action, results[0].detail) == ("refused", "do_not_call")
    (task,) = tasks(db_url)
    assert (task.status, task.close_reason) == ("refused", "do_not_call")
    assert (task.events[-1].kind, task.events[-1].detail) == ("refused", "do_not_call")
    assert attempts(db_url) == []


@pytest.mark.timeout(60)
def test_clock_at_205959_starts_no_call_and_the_task_waits_for_the_morning(db_url):
    """20:59:59 on a working day with hours to 21:00: a call that cannot complete is not started."""
    results = []
    late = datetime(2026, 11, 23, 20, 59, 59, tzinfo=MSK).astimezone(UTC)

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            process = await started(sim, db_url, clock=lambda: late)
            try:
                results.extend(await process.dialer.run_once())
            finally:
                await process.stop()
            assert sim.stats.originates == 0

    run(scenario)
    assert results[0].action == "out_of_hours"
    (task,) = tasks(db_url)
    assert task.status == "open"
    assert task.due_at == datetime(2026, 11, 24, 9, 0, tzinfo=MSK).astimezone(UTC)


@pytest.mark.timeout(60)
def test_task_is_refused_as_soon_as_it_opens_when_the_number_is_on_the_do_not_call_list(db_url):
    """The first consent check runs when the task is opened: refused at once, with the reason."""
    seen = []
    notifier = RecordingNotifier()

    def do_not_call(*, phone: str, kind: str, at: datetime) -> Permission:
        seen.append((phone, kind))
        return Permission(False, "do_not_call")

    async def scenario() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=0, port=0, secret=SECRET) as sim:
            process = build_dialer_process(
                settings_for(db_url, sim.port),
                notifier=notifier,
                store_calls=True,
                config=CONFIG,
                consent=do_not_call,
                clock=lambda: MONDAY_NOON,
            )
            await process.start()
            try:
                await wait_until(
                    lambda: [t.status for t in tasks(db_url)] == ["refused"], 15, what="refusal"
                )
                assert await process.dialer.run_once() == []
            finally:
                await process.stop()
            assert sim.stats.originates == 0

    run(scenario)
    assert seen == [(MISSED_CALLER, "service")]
    (task,) = tasks(db_url)
    assert (task.status, task.close_reason) == ("refused", "do_not_call")
    assert (task.events[-1].kind, task.events[-1].detail) == ("refused", "do_not_call")
    notices = [e[1] for e in notifier.events if e[0] == "task_changed"]
    (notice,) = [n for n in notices if n.status == "refused"]
    assert (notice.task_id, notice.detail) == (task.id, "do_not_call")
