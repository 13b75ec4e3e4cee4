"""Benchmark: N dialer processes draining M due callback tasks from one database.

Every process runs the real ``Dialer`` (claims with a lease — SKIP LOCKED on PostgreSQL, one
writer on SQLite — hours, consent, attempt rows) with an in-memory originator whose calls fail
at once, so the numbers measure the queue, not Asterisk. It reports tasks dialled per second
and checks that every task was dialled exactly once.

    .venv/bin/python scripts/bench_dialer.py --tasks 2000 --processes 4 \\
        --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python scripts/bench_dialer.py --tasks 500 --processes 1   # temporary SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from callcenter.ami.events import AmiEvent
from callcenter.dialer.worker import Dialer, DialerConfig, Permission
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task, TaskAttempt
from callcenter.store.models_dialer import TaskLease
from callcenter.tasks.schedule import ClinicSchedule

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
PHONE_PREFIX = "+7999"  # bench tasks only; removed before and after


class FailingOriginator:
    """Every Originate is queued, then fails at once (OriginateResponse Reason 8)."""

    def __init__(self) -> None:
        self.dialer: Dialer | None = None
        self.sent = 0

    async def originate(self, **kwargs: object) -> AmiEvent:
        self.sent += 1
        action_id = str(kwargs["action_id"])
        asyncio.get_running_loop().call_soon(self._respond, action_id)
        return AmiEvent.from_fields([("Response", "Success"), ("ActionID", action_id)], 0.0)

    def _respond(self, action_id: str) -> None:
        assert self.dialer is not None
        event = AmiEvent.from_fields(
            [("Event", "OriginateResponse"), ("ActionID", action_id), ("Reason", "8")], 0.0
        )
        self.dialer.observe(event, [])


def allow(*, phone: str, kind: str, at: datetime) -> Permission:
    return Permission(True, "bench")


def drain(db_url: str, worker: int, concurrent: int) -> tuple[int, float]:
    """Sweep until nothing is due; return (calls placed, seconds)."""
    engine = create_db_engine(db_url)
    originator = FailingOriginator()
    dialer = Dialer(
        config=DialerConfig(
            worker_id=f"bench-{worker}",
            operators=tuple(str(1000 + n) for n in range(concurrent)),
            max_concurrent=concurrent,
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

    start = time.perf_counter()
    try:
        asyncio.run(sweeps())
    finally:
        engine.dispose()
    return originator.sent, time.perf_counter() - start


def seed(db_url: str, tasks: int) -> None:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine).begin() as session:
            clear(session)
            session.add_all(
                Task(
                    phone=f"{PHONE_PREFIX}{n:07d}",
                    reason="missed_call",
                    kind="service",
                    status="open",
                    opened_at=NOW - timedelta(minutes=5),
                    due_at=NOW - timedelta(seconds=1),
                    attempts=0,
                )
                for n in range(tasks)
            )
    finally:
        engine.dispose()


def clear(session: object) -> None:
    ids = select(Task.id).where(Task.phone.like(f"{PHONE_PREFIX}%"))
    for model in (TaskAttempt, TaskLease):
        session.execute(delete(model).where(model.task_id.in_(ids)))  # type: ignore[attr-defined]
    session.execute(delete(Task).where(Task.phone.like(f"{PHONE_PREFIX}%")))  # type: ignore[attr-defined]


def check(db_url: str, tasks: int) -> bool:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine).begin() as session:
            ids = select(Task.id).where(Task.phone.like(f"{PHONE_PREFIX}%"))
            per_task = Counter(
                session.scalars(select(TaskAttempt.task_id).where(TaskAttempt.task_id.in_(ids)))
            )
            ok = len(per_task) == tasks and set(per_task.values()) == {1}
            clear(session)
            return ok
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrent", type=int, default=20, help="originates per process")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(db_url)
        seed(db_url, args.tasks)
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            results = pool.starmap(
                drain, [(db_url, n, args.concurrent) for n in range(args.processes)]
            )
        wall = time.perf_counter() - start
        exactly_once = check(db_url, args.tasks)
    placed = [sent for sent, _ in results]
    print(
        f"{args.tasks} tasks, {args.processes} process(es) × {args.concurrent} originates: "
        f"{wall:.2f}s wall, {args.tasks / wall:.0f} tasks/s; per process {placed}; "
        f"exactly once: {'yes' if exactly_once else 'NO'}"
    )
    return 0 if exactly_once else 1


if __name__ == "__main__":
    sys.exit(main())
