"""Benchmark the supervisor's reports: dashboard figures and the call list's first page.

    .venv/bin/python scripts/bench_reports.py [--db URL] [--calls 100000] [--repeat 3]
    .venv/bin/python scripts/bench_reports.py --postgres --calls 1000000

Seeds N inbound calls spread over the last 400 days (one administrator leg each, a third
dropped with a callback task and two attempts, a quarter of the answered ones tagged, some
booked), then prints the wall time of the dashboard figures for a 30-day and a 365-day period
and of the call list's first page (all, and filtered by disposition, administrator, tag and
phone). ``--postgres`` seeds the dedicated schema ``bench_reports`` of the test database
(COPY, about a minute per million calls) and reuses it on the next run; SQLite gets a
temporary file (executemany). ``--calls 1000000`` is the issue's figure; ``--compare`` also
times the rows-in-Python reference (the dashboard before SQL aggregation) and checks both give
the same figures. On PostgreSQL the dashboard reads hourly rollups: the first read of a
period computes its hours (printed apart), later reads take the median. Targets: dashboard
over 30 days < 300 ms, a call-list page < 100 ms. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import make_url

from callcenter.reports.figures import parse_period
from callcenter.store import reports
from callcenter.store.db import create_db_engine, create_session_factory, is_sqlite, upgrade
from callcenter.store.models import Call, CallLeg, Task, TaskAttempt, TaskEvent
from callcenter.store.models_speech import CallTag
from callcenter.store.models_web import CallOutcome

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TIMEZONE = "Europe/Moscow"
DAYS = 400
BATCH = 50_000
AGENTS = ("101", "102", "103", "104", "105")
DISPOSITIONS = ("answered",) * 6 + ("abandoned", "queue_timeout", "no_answer", "ivr_abandoned")
TAGS = ("price_objection", "booked", "thinking", "fear", "no_time", "insurance")
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_SCHEMA = "bench_reports"

CALL_COLUMNS = (
    "id linkedid direction disposition caller phone queue agent last_agent wait_s talk_s "
    "queue_wait_s started_at ended_at start_ts end_ts transfers"
).split()
LEG_COLUMNS = "call_id agent rang_at answered_at ended_at outcome".split()
TASK_COLUMNS = (
    "id phone reason kind status opened_at due_at closed_at close_reason attempts "
    "first_call_linkedid dropped_calls"
).split()
EVENT_COLUMNS = "task_id at kind call_linkedid".split()
ATTEMPT_COLUMNS = "task_id started_at ended_at outcome".split()
TAG_COLUMNS = "linkedid tag source created_at".split()
OUTCOME_COLUMNS = "linkedid operator outcome at".split()


class Batch:
    """One batch of generated rows, table by table (column order as the *_COLUMNS above)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.legs: list[tuple[Any, ...]] = []
        self.tasks: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.attempts: list[tuple[Any, ...]] = []
        self.tags: list[tuple[Any, ...]] = []
        self.outcomes: list[tuple[Any, ...]] = []


def generate(calls: int) -> Iterator[Batch]:
    """Yield the rows of ``calls`` calls in batches (deterministic: seeded random)."""
    rng = random.Random(7)
    start = NOW - timedelta(days=DAYS)
    span = DAYS * 86400
    task_id = 0
    for first in range(0, calls, BATCH):
        batch = Batch()
        for i in range(first, min(first + BATCH, calls)):
            at = start + timedelta(seconds=span * i / calls + rng.random())
            ts = at.timestamp()
            disposition = rng.choice(DISPOSITIONS)
            agent = rng.choice(AGENTS)
            answered = disposition == "answered"
            queue_wait = None if disposition == "ivr_abandoned" else rng.uniform(0, 40)
            linkedid = f"{ts:.3f}.{i}"
            # A caller calls again now and then: 300,000 distinct numbers.
            phone = f"+7916{i % 300_000:07d}"
            end = at + timedelta(seconds=60)
            batch.calls.append(
                (
                    i + 1,
                    linkedid,
                    "inbound",
                    disposition,
                    phone,
                    phone,
                    "reception",
                    agent if answered else None,
                    agent if answered else None,
                    queue_wait or 5.0,
                    rng.uniform(20, 300) if answered else 0.0,
                    queue_wait,
                    at,
                    end,
                    ts,
                    ts + 60,
                    "[]",
                )
            )
            if disposition != "ivr_abandoned":
                batch.legs.append(
                    (
                        i + 1,
                        agent,
                        at,
                        at + timedelta(seconds=5) if answered else None,
                        end,
                        "answered" if answered else "no_answer",
                    )
                )
            if answered:
                if rng.random() < 0.25:
                    batch.tags.append((linkedid, rng.choice(TAGS), "tagger", end))
                if rng.random() < 0.1:
                    batch.outcomes.append((linkedid, "anna", "booked", end))
                continue
            task_id += 1
            opened = end
            reached = rng.random() < 0.6
            batch.tasks.append(
                (
                    task_id,
                    phone,
                    "missed_call",
                    "service",
                    "closed",
                    opened,
                    opened,
                    opened + timedelta(hours=2),
                    "reached" if reached else "unreachable",
                    2,
                    linkedid,
                    1,
                )
            )
            batch.events.append((task_id, opened, "opened", linkedid))
            for k, outcome in enumerate(("no_answer", "answered" if reached else "busy")):
                began = opened + timedelta(hours=k + 1)
                batch.attempts.append((task_id, began, began + timedelta(seconds=30), outcome))
        yield batch


def _tables(batch: Batch) -> list[tuple[Any, list[str], list[tuple[Any, ...]]]]:
    return [
        (Call, CALL_COLUMNS, batch.calls),
        (CallLeg, LEG_COLUMNS, batch.legs),
        (Task, TASK_COLUMNS, batch.tasks),
        (TaskEvent, EVENT_COLUMNS, batch.events),
        (TaskAttempt, ATTEMPT_COLUMNS, batch.attempts),
        (CallTag, TAG_COLUMNS, batch.tags),
        (CallOutcome, OUTCOME_COLUMNS, batch.outcomes),
    ]


def seed(url: str, *, calls: int) -> None:
    """Store ``calls`` calls with legs, tasks, attempts, tags and bookings (once per database)."""
    upgrade(url)
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            if connection.scalar(select(func.count()).select_from(Call)):
                print("database already seeded; reusing it")
                return
        if is_sqlite(url):
            _seed_sqlite(engine, calls)
        else:
            _seed_postgres(engine, calls)
    finally:
        engine.dispose()


def _seed_sqlite(engine: Engine, calls: int) -> None:
    done = 0
    for batch in generate(calls):
        with engine.begin() as connection:
            for model, columns, rows in _tables(batch):
                if rows:
                    values = [dict(zip(columns, row, strict=True)) for row in rows]
                    if model is Call:
                        for value in values:
                            value["transfers"] = json.loads(value["transfers"])
                    connection.execute(insert(model), values)
        done += len(batch.calls)
        print(f"  seeded {done:,} calls", end="\r", flush=True)
    print()


def _seed_postgres(engine: Engine, calls: int) -> None:
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        done = 0
        for batch in generate(calls):
            with connection.cursor() as cursor:
                for model, columns, rows in _tables(batch):
                    if not rows:
                        continue
                    sql = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(sql) as copy:
                        for row in rows:
                            copy.write_row(row)
            connection.commit()
            done += len(batch.calls)
            print(f"  seeded {done:,} calls", end="\r", flush=True)
        print()
        with connection.cursor() as cursor:
            # COPY set explicit ids: move the sequences past them for later inserts.
            for table in ("calls", "tasks"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" (SELECT max(id) FROM {table}))"
                )
        connection.commit()
        # Fresh statistics and visibility map, as autovacuum would leave them in production.
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def postgres_url(base: str) -> str:
    """Return ``base`` pointed at the bench schema (created when missing)."""
    engine = create_db_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{POSTGRES_SCHEMA}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={POSTGRES_SCHEMA}"})
    return url.render_as_string(hide_password=False)


def same_figures(a: object, b: object) -> bool:
    """Return True when two results are equal, floats up to summation-order rounding."""
    if is_dataclass(a) and is_dataclass(b):
        return type(a) is type(b) and all(
            same_figures(getattr(a, f.name), getattr(b, f.name)) for f in fields(a)
        )
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_figures(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


def timed(fn: Callable[[], object], *, repeat: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"use the schema {POSTGRES_SCHEMA!r} of {POSTGRES_URL} (seeded once, then reused)",
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time the rows-in-Python reference (the dashboard before SQL aggregation)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            url = postgres_url(args.db or POSTGRES_URL)
        else:
            url = args.db or f"sqlite:///{Path(tmp) / 'bench_reports.db'}"
        began = time.perf_counter()
        seed(url, calls=args.calls)
        print(f"seeding: {time.perf_counter() - began:.1f} s ({args.calls:,} calls)")
        engine = create_db_engine(url)
        factory = create_session_factory(engine)
        today = NOW.date()
        if not is_sqlite(url):
            # PostgreSQL reads hourly rollups (callcenter.store.report_hours): forget them, so
            # the first read of each period shows the cost of computing its hours once.
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM report_hours"))
                connection.execute(text("DELETE FROM report_stale_hours"))
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

            if not is_sqlite(url):
                began = time.perf_counter()
                figures()
                print(
                    f"dashboard {days:>3} days, first read (computes its hours): "
                    f"{(time.perf_counter() - began) * 1000:9.1f} ms"
                )
            seconds, result = timed(figures, repeat=args.repeat)
            inbound = result.totals.inbound  # type: ignore[attr-defined]
            print(f"dashboard {days:>3} days: {seconds * 1000:9.1f} ms ({inbound:,} calls)")
            if args.compare:

                def from_rows(period: Any = period) -> object:
                    with factory() as s:
                        return reports.load_figures_from_rows(s, period=period, now=NOW)

                seconds, reference = timed(from_rows, repeat=1)
                same = "equal" if same_figures(reference, result) else "DIFFERENT"
                print(f"  rows in Python:   {seconds * 1000:9.1f} ms (figures {same})")
        period = parse_period(None, today.isoformat(), today=today, timezone=TIMEZONE)
        month = parse_period(
            (today - timedelta(days=29)).isoformat(),
            today.isoformat(),
            today=today,
            timezone=TIMEZONE,
        )
        cases: list[tuple[str, reports.CallFilter]] = [
            ("call list, 7 days", reports.CallFilter(period=period)),
            ("agent 103, 30 days", reports.CallFilter(period=month, agent="103")),
            ("abandoned, 30 days", reports.CallFilter(period=month, disposition="abandoned")),
            ("tag fear, 30 days", reports.CallFilter(period=month, tag="fear")),
            ("phone, 30 days", reports.CallFilter(period=month, phone="+79160050000")),
            (
                "all four, 30 days",
                reports.CallFilter(
                    period=month,
                    disposition="answered",
                    agent="103",
                    tag="price_objection",
                    phone="+7916",
                ),
            ),
        ]
        for label, filters in cases:

            def first_page(filters: reports.CallFilter = filters) -> object:
                with factory() as s:
                    return reports.list_calls_page(s, filters=filters, limit=50)

            seconds, page = timed(first_page, repeat=args.repeat)
            rows = len(page[0])  # type: ignore[index]
            print(f"{label:<24} {seconds * 1000:9.1f} ms ({rows} rows)")
        engine.dispose()


if __name__ == "__main__":
    main()
