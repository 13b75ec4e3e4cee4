"""Benchmark the supervisor's reports: dashboard figures and the call list's first page.

    .venv/bin/python scripts/bench_reports.py [--db URL] [--calls 100000] [--repeat 3]

Seeds N inbound calls spread over the last 400 days (one administrator leg each, a third
dropped with a callback task and attempts), then prints the wall time of the dashboard
figures for a 30-day and a 365-day period and of the call list's first page (all, and
filtered by administrator). ``--calls 1000000`` is the issue's figure. No timing is asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from callcenter.reports.figures import parse_period
from callcenter.store import reports
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Call, CallLeg, Task, TaskAttempt, TaskEvent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TIMEZONE = "Europe/Moscow"
DAYS = 400
BATCH = 20_000
AGENTS = ("101", "102", "103", "104", "105")
DISPOSITIONS = ("answered",) * 6 + ("abandoned", "queue_timeout", "no_answer", "ivr_abandoned")


def seed(url: str, *, calls: int) -> None:
    """Store ``calls`` calls with legs, and a task with attempts per dropped call."""
    upgrade(url)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    rng = random.Random(7)
    start = NOW - timedelta(days=DAYS)
    span = DAYS * 86400
    with factory() as session:
        if session.scalar(select(func.count()).select_from(Call)):
            print("database already seeded; reusing it")
            engine.dispose()
            return
    done = 0
    task_id = 0
    while done < calls:
        n = min(BATCH, calls - done)
        call_rows: list[dict[str, Any]] = []
        leg_rows: list[dict[str, Any]] = []
        task_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        attempt_rows: list[dict[str, Any]] = []
        for i in range(done, done + n):
            at = start + timedelta(seconds=span * i / calls + rng.random())
            ts = at.timestamp()
            disposition = rng.choice(DISPOSITIONS)
            agent = rng.choice(AGENTS)
            answered = disposition == "answered"
            queue_wait = None if disposition == "ivr_abandoned" else rng.uniform(0, 40)
            linkedid = f"{ts:.3f}.{i}"
            phone = f"+7916{i % 9_000_000:07d}"
            call_rows.append(
                {
                    "id": i + 1,
                    "linkedid": linkedid,
                    "direction": "inbound",
                    "disposition": disposition,
                    "caller": phone,
                    "phone": phone,
                    "queue": "reception",
                    "agent": agent if answered else None,
                    "last_agent": agent if answered else None,
                    "wait_s": queue_wait or 5.0,
                    "talk_s": rng.uniform(20, 300) if answered else 0.0,
                    "queue_wait_s": queue_wait,
                    "started_at": at,
                    "ended_at": at + timedelta(seconds=60),
                    "start_ts": ts,
                    "end_ts": ts + 60,
                    "transfers": [],
                }
            )
            if disposition != "ivr_abandoned":
                leg_rows.append(
                    {
                        "call_id": i + 1,
                        "agent": agent,
                        "rang_at": at,
                        "answered_at": at + timedelta(seconds=5) if answered else None,
                        "ended_at": at + timedelta(seconds=60),
                        "outcome": "answered" if answered else "no_answer",
                    }
                )
            if not answered:
                task_id += 1
                opened = at + timedelta(seconds=60)
                reached = rng.random() < 0.6
                task_rows.append(
                    {
                        "id": task_id,
                        "phone": phone,
                        "reason": "missed_call",
                        "kind": "service",
                        "status": "closed",
                        "opened_at": opened,
                        "due_at": opened,
                        "closed_at": opened + timedelta(hours=2),
                        "close_reason": "reached" if reached else "unreachable",
                        "attempts": 2,
                        "first_call_linkedid": linkedid,
                        "dropped_calls": 1,
                    }
                )
                event_rows.append(
                    {"task_id": task_id, "at": opened, "kind": "opened", "call_linkedid": linkedid}
                )
                for k, outcome in enumerate(("no_answer", "answered" if reached else "busy")):
                    attempt_rows.append(
                        {
                            "task_id": task_id,
                            "started_at": opened + timedelta(hours=k + 1),
                            "ended_at": opened + timedelta(hours=k + 1, seconds=30),
                            "outcome": outcome,
                        }
                    )
        with factory.begin() as session:
            session.execute(insert(Call), call_rows)
            if leg_rows:
                session.execute(insert(CallLeg), leg_rows)
            if task_rows:
                session.execute(insert(Task), task_rows)
                session.execute(insert(TaskEvent), event_rows)
                session.execute(insert(TaskAttempt), attempt_rows)
        done += n
        print(f"  seeded {done:,} calls", end="\r", flush=True)
    print()
    engine.dispose()


def timed(fn: Callable[[], object], *, repeat: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench_reports.db'}"
        began = time.perf_counter()
        seed(url, calls=args.calls)
        print(f"seeding: {time.perf_counter() - began:.1f} s ({args.calls:,} calls)")
        engine = create_db_engine(url)
        factory = create_session_factory(engine)
        today = NOW.date()
        for days in (30, 365):
            period = parse_period(
                (today - timedelta(days=days - 1)).isoformat(),
                today.isoformat(),
                today=today,
                timezone=TIMEZONE,
            )

            def figures(period: Any = period) -> object:
                with factory() as s:
                    return reports.load_figures(s, period=period, now=NOW)

            seconds, result = timed(figures, repeat=args.repeat)
            inbound = result.totals.inbound  # type: ignore[attr-defined]
            print(f"dashboard {days:>3} days: {seconds * 1000:9.1f} ms ({inbound:,} calls)")
        period = parse_period(None, today.isoformat(), today=today, timezone=TIMEZONE)
        for label, filters in (
            ("call list, first page", reports.CallFilter(period=period)),
            ("call list, agent 103", reports.CallFilter(period=period, agent="103")),
            (
                "call list, abandoned",
                reports.CallFilter(period=period, disposition="abandoned"),
            ),
        ):

            def first_page(filters: reports.CallFilter = filters) -> object:
                with factory() as s:
                    return reports.list_calls_page(s, filters=filters, limit=50)

            seconds, _ = timed(first_page, repeat=args.repeat)
            print(f"{label:<24} {seconds * 1000:9.1f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
