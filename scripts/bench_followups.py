"""Benchmark the follow-up sweep on a clinic of N patients.

    .venv/bin/python scripts/bench_followups.py [--patients 100000] [--postgres]

Seeds N patients (one phone each, 1–8 visits spread over the last 900 days and the next 30,
a few no-shows and cancellations, personal-data consent for 90 %, marketing consent for 40 %,
0.5 % on the do-not-call list), then prints the wall and CPU time of a dry run, of the first
sweep (which opens every due follow-up at once: the first run on an existing clinic), of a
second sweep a minute later (nothing new; every task it opened is still open) and of the next
morning's sweep after the dialer closed every task (the daily steady state). SQLite gets a
temporary file; ``--postgres`` a fresh schema of the test database, dropped afterwards. No
timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text, update
from sqlalchemy.engine import make_url

from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.followups import SweepReport, sweep_followups
from callcenter.store.models import Task
from callcenter.store.models_patients import (
    ConsentRecord,
    DoNotCall,
    Patient,
    PatientPhone,
    Visit,
)
from callcenter.store.patients import phone_hash
from callcenter.tasks.schedule import ClinicSchedule

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=MSK).astimezone(UTC)
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 20_000
SERVICES = ("Консультация терапевта", "Лечение кариеса", "Пломбирование", "УЗИ малого таза")


def rows(patients: int, seed: int = 5) -> dict[Any, list[dict[str, Any]]]:
    rng = random.Random(seed)
    today = NOW.astimezone(MSK).date()
    given = NOW - timedelta(days=1000)
    tables: dict[Any, list[dict[str, Any]]] = {
        Patient: [],
        PatientPhone: [],
        Visit: [],
        ConsentRecord: [],
        DoNotCall: [],
    }
    for pid in range(1, patients + 1):
        phone = f"+7916{pid:07d}"
        tables[Patient].append({"id": pid, "full_name": f"Пациент {pid}"})
        tables[PatientPhone].append({"patient_id": pid, "phone": phone})
        for _ in range(rng.randint(1, 8)):
            day = today + timedelta(days=rng.randint(-900, 30))
            if day > today:
                status = "scheduled"
            else:
                status = rng.choices(["completed", "no_show", "cancelled"], [90, 5, 5])[0]
            tables[Visit].append(
                {
                    "patient_id": pid,
                    "visit_date": day,
                    "status": status,
                    "service": rng.choice(SERVICES),
                    "booked_at": None,
                }
            )
        if rng.random() < 0.9:
            tables[ConsentRecord].append(
                {"patient_id": pid, "kind": "pd", "action": "given", "at": given}
            )
        if rng.random() < 0.4:
            tables[ConsentRecord].append(
                {"patient_id": pid, "kind": "marketing", "action": "given", "at": given}
            )
        if rng.random() < 0.005:
            tables[DoNotCall].append({"phone_hash": phone_hash(phone), "at": given, "by": "bench"})
    return tables


def seed(url: str, patients: int) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            for model, values in rows(patients).items():
                for start in range(0, len(values), BATCH):
                    connection.execute(insert(model.__table__), values[start : start + BATCH])
    finally:
        engine.dispose()


def timed_sweep(url: str, *, now: datetime, dry_run: bool) -> tuple[float, float, SweepReport]:
    """Return (wall seconds, this process's CPU seconds, report) of one sweep with its commit.

    The CPU figure is the one to read on a busy machine: other processes do not inflate it
    (for SQLite it includes the database work, which runs in this process)."""
    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    try:
        with sessions() as session:
            session.connection()  # connect (and set up SQLite) outside the timing
            started, cpu = time.perf_counter(), time.process_time()
            report = sweep_followups(session, now=now, schedule=ClinicSchedule(), dry_run=dry_run)
            if dry_run:
                session.rollback()
            else:
                session.commit()
            return time.perf_counter() - started, time.process_time() - cpu, report
    finally:
        engine.dispose()


def describe(report: SweepReport) -> str:
    opened: dict[str, int] = {}
    for item in report.opened:
        opened[item.reason] = opened.get(item.reason, 0) + 1
    return f"opened {len(report.opened)} {opened}, skipped {report.skipped_by_why}"


def run(url: str, patients: int) -> None:
    upgrade(url)
    started = time.perf_counter()
    seed(url, patients)
    print(f"seeded {patients} patients in {time.perf_counter() - started:.1f} s")
    for label, now, dry_run in (
        ("dry run", NOW, True),
        ("first sweep", NOW, False),
        ("second sweep", NOW + timedelta(minutes=1), False),
        ("next day", NOW + timedelta(days=1), False),
    ):
        if label == "next day":
            close_open_tasks(url, at=NOW + timedelta(hours=8))  # the dialer called them all
        seconds, cpu, report = timed_sweep(url, now=now, dry_run=dry_run)
        print(f"{label:<13} {seconds:6.2f} s wall {cpu:6.2f} s CPU  {describe(report)}")


def close_open_tasks(url: str, *, at: datetime) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Task)
                .where(Task.status == "open")
                .values(status="closed", closed_at=at, close_reason="reached")
            )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    if args.patients < 1:
        parser.error("--patients must be at least 1")
    if not args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            print("SQLite")
            run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.patients)
        return
    schema = f"bench_followups_{secrets.token_hex(4)}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        print("PostgreSQL")
        run(url.render_as_string(hide_password=False), args.patients)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
