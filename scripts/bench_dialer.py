"""Benchmark: 1 and N dialer processes against the AMI simulator at full speed, on PostgreSQL.

A complete cycle is: claim (lease) → consent and working-hours check → Originate over AMI →
OriginateResponse → attempt stored → task closed or rescheduled. Each dialer process is the
real ``callcenter worker`` dialer (``build_dialer_process``: AMI client, tracker, store, the
real consent lookup); the simulator (its own process, ``speed=0``) answers every Originate
from the recorded ``outbound_callback_*`` traces (busy / no answer by default, so operators
stay free and the cycle ends at the OriginateResponse). Every task's number called the clinic
yesterday (a stored inbound call), so consent allows the callback as the caller's own request.

It prints complete cycles per second for each process count, and the duplicates: Originates
the simulator received more than once for one task, and tasks with more than one attempt row.
Both must be 0. Nothing is asserted on time anywhere.

    .venv/bin/python scripts/bench_dialer.py                       # 1 and 4 dialers, 2000 tasks
    .venv/bin/python scripts/bench_dialer.py --tasks 5000 --processes 1 4 --concurrent 40
    .venv/bin/python scripts/bench_dialer.py --db postgresql+psycopg://user@host/db

PostgreSQL only (SQLite has one writer: several dialers there measure the lock). Each run uses
a fresh schema ``bench_dialer_<random>`` of the database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from callcenter.config import Settings
from callcenter.dialer.worker import DialerConfig, build_dialer_process
from callcenter.notify import NullNotifier
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Call, Task, TaskAttempt
from callcenter.tasks.schedule import ClinicSchedule

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-dialer-secret-0123456789"
PHONE_PREFIX = "+7999"
ALWAYS_OPEN = ClinicSchedule(
    hours=((datetime.min.time(), datetime.max.time().replace(microsecond=0)),) * 7
)


# -- the simulator process ------------------------------------------------------------------


def simulator_main(outcomes: list[str], port_out: Connection, stop: EventType) -> None:
    """Serve AMI until ``stop``; send the port, then the Originates received per task."""
    from callcenter.ami.simulator import AmiSimulator

    cycle = iter(range(1 << 62))

    def rule(request: Any) -> str:
        return outcomes[next(cycle) % len(outcomes)]

    async def serve() -> Counter[str]:
        async with AmiSimulator(
            port=0, secret=SECRET, speed=0, status="live", outcome_rule=rule
        ) as sim:
            port_out.send(sim.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)
            return Counter(r.task_id or "" for r in sim.originate_requests)

    sent = dict(asyncio.run(serve()))
    port_out.send((sent, time.process_time()))


# -- a dialer process -----------------------------------------------------------------------


def dialer_main(
    db_url: str, port: int, worker: int, concurrent: int, ready: Any, go: EventType
) -> tuple[int, float, float, float]:
    """Connect, wait for ``go``, sweep until nothing is due; return (cycles, start, end, CPU s)."""
    settings = Settings(
        database_url=db_url,
        ami_port=port,
        ami_secret=SECRET,
        ami_backoff_initial_s=0.05,
        ami_backoff_max_s=0.5,
        ami_ping_interval_s=30.0,
        ami_ping_timeout_s=30.0,
    )
    config = DialerConfig(
        worker_id=f"bench-{worker}",
        style="patient_first",
        # Each process has its own operators, as each would on its own desk group.
        operators=tuple(str(2000 + 100 * worker + n) for n in range(concurrent)),
        max_concurrent=concurrent,
        originate_timeout_s=5.0,
        outcome_grace_s=5.0,
        answer_wait_s=5.0,
        lease_s=60.0,
    )

    async def run() -> tuple[int, float, float, float]:
        process = build_dialer_process(
            settings,
            notifier=NullNotifier(),
            store_calls=False,
            config=config,
            schedule=ALWAYS_OPEN,
        )
        await process.start()
        try:
            if not await process.wait_ready(30):
                raise RuntimeError(f"dialer {worker}: AMI link not ready")
            ready.wait()
            await asyncio.to_thread(go.wait)
            start = time.monotonic()
            cpu = time.process_time()
            # What one periodic sweep of ``callcenter worker`` does (``run_sweep``).
            results = await process.dialer.drain()
            cycles = sum(1 for r in results if r.action == "dialled")
            return cycles, start, time.monotonic(), time.process_time() - cpu
        finally:
            await process.stop()

    return asyncio.run(run())


def dialer_entry(out: Any, *args: Any) -> None:
    """Run ``dialer_main`` and put its result (or what went wrong) on ``out``."""
    try:
        out.put(dialer_main(*args))
    except Exception as exc:  # reported by the parent, which stops the run
        out.put(f"dialer {args[2]}: {exc!r}")


# -- the database ---------------------------------------------------------------------------


def seed(db_url: str, tasks: int) -> None:
    """Open ``tasks`` due tasks; each number called yesterday (stored inbound calls)."""
    engine = create_db_engine(db_url)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    try:
        with create_session_factory(engine).begin() as session:
            phones = [f"{PHONE_PREFIX}{n:07d}" for n in range(tasks)]
            session.execute(
                insert(Call),
                [
                    {
                        "linkedid": f"bench.{n}",
                        "direction": "inbound",
                        "disposition": "queue_timeout",
                        "caller": phone,
                        "phone": phone,
                        "wait_s": 20.0,
                        "talk_s": 0.0,
                        "started_at": yesterday,
                        "ended_at": yesterday,
                        "start_ts": yesterday.timestamp(),
                        "end_ts": yesterday.timestamp(),
                        "transfers": [],
                    }
                    for n, phone in enumerate(phones)
                ],
            )
            session.execute(
                insert(Task),
                [
                    {
                        "phone": phone,
                        "reason": "missed_call",
                        "kind": "service",
                        "status": "open",
                        "opened_at": yesterday + timedelta(seconds=n % 3600),
                        "due_at": now - timedelta(seconds=1),
                        "attempts": 0,
                        "dropped_calls": 1,
                    }
                    for n, phone in enumerate(phones)
                ],
            )
    finally:
        engine.dispose()


def count_attempts(db_url: str) -> tuple[int, int, int]:
    """Return (tasks with one finished attempt, tasks with more than one, unfinished)."""
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            per_task = Counter(session.scalars(select(TaskAttempt.task_id)))
            unfinished = session.scalar(select(func.count()).where(TaskAttempt.outcome.is_(None)))
            return (
                sum(1 for n in per_task.values() if n == 1),
                sum(1 for n in per_task.values() if n > 1),
                int(unfinished or 0),
            )
    finally:
        engine.dispose()


def fresh_schema(base_url: str) -> tuple[str, str]:
    schema = f"bench_dialer_{secrets.token_hex(4)}"
    admin = create_db_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base_url: str, schema: str) -> None:
    admin = create_db_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


# -- one run --------------------------------------------------------------------------------


def run(
    base_url: str,
    *,
    tasks: int,
    processes: int,
    concurrent: int,
    outcomes: list[str],
    simulators: int = 1,
) -> int:
    """Seed, start the simulator and the dialers, time the drain; return duplicates found."""
    db_url, schema = fresh_schema(base_url)
    ctx = multiprocessing.get_context("spawn")
    try:
        upgrade(db_url)
        seed(db_url, tasks)
        stop = ctx.Event()
        sims = []
        for _ in range(min(simulators, processes)):
            parent, child = ctx.Pipe()
            sim = ctx.Process(target=simulator_main, args=(outcomes, child, stop), daemon=True)
            sim.start()
            sims.append((sim, parent, parent.recv()))
        ready = ctx.Barrier(processes + 1)
        go = ctx.Event()
        out: Any = ctx.Queue()
        dialers = [
            ctx.Process(
                target=dialer_entry,
                args=(out, db_url, sims[n % len(sims)][2], n, concurrent, ready, go),
            )
            for n in range(processes)
        ]
        for each in dialers:
            each.start()
        ready.wait(timeout=120)  # every dialer logged in and re-synced
        go.set()
        results = [out.get(timeout=3600) for _ in dialers]
        for each in dialers:
            each.join(30)
        if any(isinstance(r, str) for r in results):
            raise RuntimeError("; ".join(r for r in results if isinstance(r, str)))
        stop.set()
        sent_per_task: Counter[str] = Counter()
        sim_cpu: list[float] = []
        for sim, parent, _ in sims:
            sent, cpu = parent.recv()
            sent_per_task.update(sent)
            sim_cpu.append(round(cpu, 1))
            sim.join(10)
        start = min(r[1] for r in results)
        wall = max(r[2] for r in results) - start
        cycles = sum(r[0] for r in results)
        once, more, unfinished = count_attempts(db_url)
        dup_originates = sum(n - 1 for n in sent_per_task.values() if n > 1)
        print(
            f"{processes} dialer(s) × {concurrent} originates: {cycles} cycles in {wall:.2f}s "
            f"= {cycles / wall:.0f} cycles/s; per process {[r[0] for r in results]}; "
            f"originates {sum(sent_per_task.values())} for {len(sent_per_task)} tasks; "
            f"duplicates: {dup_originates} originates, {more} tasks with 2+ attempts; "
            f"unfinished attempts {unfinished}; tasks with one attempt {once}/{tasks}; "
            f"CPU s: dialers {[round(r[3], 1) for r in results]}, "
            f"simulator(s) {sim_cpu} (whole run)",
            flush=True,
        )
        return dup_originates + more + (tasks - once)
    finally:
        drop_schema(base_url, schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help=f"PostgreSQL URL (default {DEFAULT_DB})")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--concurrent", type=int, default=40, help="originates per dialer")
    parser.add_argument(
        "--simulators",
        type=int,
        default=1,
        help="simulator processes, dialers spread over them (default 1: one Asterisk); the "
        "simulator is one Python process, more of them stand for Asterisk's own threads",
    )
    parser.add_argument(
        "--outcomes",
        default="busy,no_answer",
        help="recorded outcomes the simulator plays in turn (busy, no_answer, answered)",
    )
    args = parser.parse_args(argv)
    if make_url(args.db).get_backend_name() != "postgresql":
        parser.error("the dialer benchmark needs PostgreSQL (--db postgresql+psycopg://…)")
    if min(args.tasks, args.concurrent, args.simulators, *args.processes) < 1:
        parser.error("--tasks, --concurrent, --processes and --simulators must be at least 1")
    outcomes = [o.strip() for o in args.outcomes.split(",") if o.strip()]
    bad = set(outcomes) - {"busy", "no_answer", "answered"}
    if not outcomes or bad:
        parser.error(f"--outcomes: unknown {sorted(bad)}; use busy, no_answer, answered")
    problems = 0
    for processes in args.processes:
        problems += run(
            args.db,
            tasks=args.tasks,
            processes=processes,
            concurrent=args.concurrent,
            outcomes=outcomes,
            simulators=args.simulators,
        )
    print("exactly once: " + ("yes" if problems == 0 else f"NO ({problems} problems)"))
    return 0 if problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
