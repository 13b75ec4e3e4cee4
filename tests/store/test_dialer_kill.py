"""A dialer killed mid-run (SIGKILL): its tasks are picked up after the lease, never re-dialled.

The issue: "kill one dialer mid-run (SIGKILL) and its claimed-but-unfinished tasks are picked
up again after a lease timeout — but before re-dialling, the dialer looks for a call already
carrying that CALLBACK_TASK (the killed dialer may have sent its Originate) and takes its
outcome instead; never two calls to one patient at once."

Dialer A claims and originates, but its Originates never get an answer; it is SIGKILLed while
waiting. The listener stored one of A's calls (it rang out: ``outbound_failed``). Then three
dialer processes with a clock past A's lease drain the queue. Every task has exactly one
attempt: A's are resolved (from the stored call, else ``unknown``), the rest dialled once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.ami.events import AmiEvent
from callcenter.calls.model import Direction, Disposition
from callcenter.dialer.worker import Dialer, DialerConfig, Permission
from callcenter.store import queries
from callcenter.store.db import create_db_engine, create_session_factory
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import ClinicSchedule

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
LEASE_S = 120.0
LATER = NOW + timedelta(seconds=LEASE_S + 1)
TASKS = 120
KILLED_CAP = 20


def allow(*, phone: str, kind: str, at: datetime) -> Permission:
    return Permission(True, "test")


def config(worker: str) -> DialerConfig:
    return DialerConfig(
        worker_id=worker,
        operators=tuple(str(100 + n) for n in range(KILLED_CAP)),
        max_concurrent=KILLED_CAP,
        originate_timeout_s=30.0,
        outcome_grace_s=15.0,
        answer_wait_s=15.0,
        lease_s=LEASE_S,
    )


class SilentOriginator:
    """Asterisk queues each Originate and then says nothing (the process dies waiting)."""

    def __init__(self, sent: object, all_sent: object) -> None:
        self.sent, self.all_sent = sent, all_sent

    async def originate(self, **kwargs: object) -> AmiEvent:
        with self.sent.get_lock():  # type: ignore[attr-defined]
            self.sent.value += 1  # type: ignore[attr-defined]
            if self.sent.value == KILLED_CAP:  # type: ignore[attr-defined]
                self.all_sent.set()  # type: ignore[attr-defined]
        action_id = str(kwargs["action_id"])
        return AmiEvent.from_fields([("Response", "Success"), ("ActionID", action_id)], 0.0)


class FailingOriginator:
    """Every Originate fails at once (Reason 8): the task is rescheduled, not dialled again."""

    def __init__(self) -> None:
        self.dialer: Dialer | None = None
        self.task_ids: list[str] = []

    async def originate(self, **kwargs: object) -> AmiEvent:
        self.task_ids.append(str(kwargs["task_id"]))
        action_id = str(kwargs["action_id"])
        asyncio.get_running_loop().call_later(0.001, self._respond, action_id)
        return AmiEvent.from_fields([("Response", "Success"), ("ActionID", action_id)], 0.0)

    def _respond(self, action_id: str) -> None:
        assert self.dialer is not None
        event = AmiEvent.from_fields(
            [("Event", "OriginateResponse"), ("ActionID", action_id), ("Reason", "8")], 0.0
        )
        self.dialer.observe(event, [])


def make(db_url: str, worker: str, originator: object, clock: datetime) -> Dialer:
    engine = create_db_engine(db_url)
    dialer = Dialer(
        config=config(worker),
        session_factory=create_session_factory(engine),
        originator=originator,  # type: ignore[arg-type]
        consent=allow,
        clock=lambda: clock,
        schedule=ClinicSchedule(),
    )
    return dialer


def doomed_dialer(db_url: str, sent: object, all_sent: object) -> None:
    """Dialer A: claims, writes its attempts, originates, then waits for outcomes forever."""
    dialer = make(db_url, "doomed", SilentOriginator(sent, all_sent), NOW)
    asyncio.run(dialer.run_once())


def surviving_dialer(db_url: str, worker: int) -> list[str]:
    """A dialer started after A's lease ran out; returns the task ids it originated."""
    originator = FailingOriginator()
    dialer = make(db_url, f"survivor-{worker}", originator, LATER)
    originator.dialer = dialer
    asyncio.run(dialer.drain())
    return originator.task_ids


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_sigkilled_dialers_tasks_are_resolved_not_redialled(db_url, session_factory, make_call):
    if not db_url.startswith("postgresql"):
        pytest.skip("several dialer processes need PostgreSQL (SQLite has one writer)")
    with session_factory.begin() as session:
        session.add_all(
            Task(
                phone=f"+7903{n:07d}",
                reason="missed_call",
                kind="service",
                status="open",
                opened_at=NOW - timedelta(minutes=60 - n % 60),
                due_at=NOW - timedelta(seconds=1),
                attempts=0,
            )
            for n in range(TASKS)
        )
    ctx = multiprocessing.get_context("spawn")
    sent = ctx.Value("i", 0)
    all_sent = ctx.Event()
    doomed = ctx.Process(target=doomed_dialer, args=(db_url, sent, all_sent))
    doomed.start()
    try:
        assert all_sent.wait(60), "dialer A never sent its Originates"
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join(10)
    assert doomed.exitcode == -signal.SIGKILL
    with session_factory() as session:
        unfinished = list(
            session.scalars(select(TaskAttempt.task_id).where(TaskAttempt.outcome.is_(None)))
        )
    assert len(unfinished) == KILLED_CAP  # written before each Originate went out
    # The listener stored one of A's calls: it rang out.
    rang_out = unfinished[0]
    with session_factory.begin() as session:
        phone = session.get(Task, rang_out).phone
        call = make_call(
            caller=phone.removeprefix("+"),
            direction=Direction.OUTBOUND,
            disposition=Disposition.OUTBOUND_FAILED,
            queue=None,
            callback_task=str(rang_out),
            start_ts=NOW.timestamp() + 2,
        )
        queries.persist_call(session, call=call)
    with ctx.Pool(3) as pool:
        dialled = pool.starmap(surviving_dialer, [(db_url, n) for n in range(3)])
    redialled = set(map(int, sum(dialled, []))) & set(unfinished)
    assert redialled == set()  # never a second call for A's tasks
    assert sum(len(d) for d in dialled) == TASKS - KILLED_CAP
    with session_factory() as session:
        attempts = list(session.scalars(select(TaskAttempt)))
        per_task = Counter(a.task_id for a in attempts)
        assert len(per_task) == TASKS and set(per_task.values()) == {1}
        outcomes = {a.task_id: a.outcome for a in attempts}
        assert outcomes[rang_out] == "no_answer"  # from the stored call
        assert {outcomes[t] for t in unfinished if t != rang_out} == {"unknown"}
        assert {outcomes[t] for t in per_task if t not in unfinished} == {"failed"}
        assert all(a.outcome is not None for a in attempts)
        assert session.scalars(select(Task).where(Task.attempts != 1)).all() == []
