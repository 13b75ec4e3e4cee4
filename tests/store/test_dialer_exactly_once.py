"""Four dialer processes on one PostgreSQL database dial every due task exactly once.

Each process runs the real ``Dialer`` (claim with SKIP LOCKED and a lease, consent, hours,
attempt rows) with an in-memory originator whose every call fails (OriginateResponse Reason 8),
so each task is rescheduled after its attempt and must never be dialled a second time at the
same clock.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callcenter.ami.events import AmiEvent
from callcenter.dialer.worker import Dialer, DialerConfig, Permission
from callcenter.store.db import create_db_engine, create_session_factory
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import ClinicSchedule

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
TASKS = 300
PROCESSES = 4


class FailingOriginator:
    """Every Originate is queued, then fails (Reason 8, congestion) a moment later."""

    def __init__(self) -> None:
        self.dialer: Dialer | None = None
        self.sent = 0

    async def originate(self, **kwargs) -> AmiEvent:
        self.sent += 1
        action_id = kwargs["action_id"]
        asyncio.get_running_loop().call_later(0.001, self._respond, action_id)
        return AmiEvent.from_fields([("Response", "Success"), ("ActionID", action_id)], 0.0)

    def _respond(self, action_id: str) -> None:
        assert self.dialer is not None
        event = AmiEvent.from_fields(
            [("Event", "OriginateResponse"), ("ActionID", action_id), ("Reason", "8")], 0.0
        )
        self.dialer.observe(event, [])


def allow(*, phone: str, kind: str, at: datetime) -> Permission:
    return Permission(True, "test")


def dial_until_empty(db_url: str, worker: int) -> int:
    """Run sweeps until nothing is left to claim; return how many calls this process placed."""
    engine = create_db_engine(db_url)
    originator = FailingOriginator()
    dialer = Dialer(
        config=DialerConfig(
            worker_id=f"dialer-{worker}",
            operators=tuple(str(100 + n) for n in range(20)),
            max_concurrent=20,
            originate_timeout_s=1.0,
            outcome_grace_s=1.0,
            answer_wait_s=1.0,
            lease_s=60.0,
        ),
        session_factory=create_session_factory(engine),
        originator=originator,
        consent=allow,
        clock=lambda: NOW,
        schedule=ClinicSchedule(),
    )
    originator.dialer = dialer

    async def sweeps() -> None:
        empty = 0
        while empty < 3:
            empty = 0 if await dialer.run_once() else empty + 1

    try:
        asyncio.run(sweeps())
    finally:
        engine.dispose()
    return originator.sent


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_four_dialer_processes_dial_each_due_task_exactly_once(db_url, session_factory):
    if not db_url.startswith("postgresql"):
        pytest.skip("many dialer processes need PostgreSQL (SQLite has one writer)")
    with session_factory.begin() as session:
        session.add_all(
            Task(
                phone=f"+7903{n:07d}",
                reason="missed_call" if n % 2 else "no_show",
                kind="service",
                status="open",
                opened_at=NOW - timedelta(minutes=n % 60),
                due_at=NOW - timedelta(seconds=1),
                attempts=0,
            )
            for n in range(TASKS)
        )
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        sent = pool.starmap(dial_until_empty, [(db_url, n) for n in range(PROCESSES)])
    assert sum(sent) == TASKS
    with session_factory() as session:
        per_task = Counter(session.scalars(select(TaskAttempt.task_id)))
        assert len(per_task) == TASKS and set(per_task.values()) == {1}
        assert session.scalar(select(func.count()).where(Task.attempts == 1)) == TASKS
        assert session.scalar(select(func.count()).where(Task.status == "open")) == TASKS
