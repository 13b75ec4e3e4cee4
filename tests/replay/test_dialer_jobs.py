"""Huey: the instance from settings, the periodic dialer sweep, one sweep against the simulator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from huey import RedisHuey, SqliteHuey

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.jobs import build_huey, huey_path, register_dialer_tasks, sweep_due_callbacks
from callcenter.store import dialer, queries
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task
from callcenter.tasks.rules import OpenTask
from callcenter.tasks.schedule import AttemptOutcome, ClinicSchedule

SECRET = "dialer-jobs-secret"
ALWAYS_OPEN = ClinicSchedule(hours=((time(0, 0), time(23, 59)),) * 7)


def test_embedded_huey_is_sqlite_next_to_the_database(tmp_path):
    """Embedded default: SqliteHuey in a file next to the SQLite database."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'callcenter.db'}")
    huey = build_huey(settings)
    assert isinstance(huey, SqliteHuey)
    assert huey_path(settings) == tmp_path / "callcenter-huey.db"


def test_redis_url_selects_redis_huey(tmp_path):
    """Distributed mode: RedisHuey when REDIS_URL is set (no connection needed to build it)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'cc.db'}", redis_url="redis://127.0.0.1:6379/0"
    )
    assert isinstance(build_huey(settings), RedisHuey)


def test_the_dialer_sweep_is_a_periodic_task_every_minute(tmp_path):
    """The due-callback sweep is registered as a periodic Huey task."""
    huey = build_huey(Settings(database_url=f"sqlite:///{tmp_path / 'cc.db'}"))
    tasks = register_dialer_tasks(huey, Settings())
    (periodic,) = huey._registry._periodic_tasks
    assert periodic.__name__ == tasks.sweep.name == "dialer_sweep"
    now = datetime(2026, 11, 23, 9, 0)
    assert all(periodic().validate_datetime(now + timedelta(minutes=m)) for m in range(3))


@pytest.mark.timeout(60)
def test_one_sweep_dials_a_due_task_and_closes_it_when_answered(db_url, make_call):
    """A sweep connects, claims the due task, checks consent (the caller's own request: the
    number called us), originates, and records the answered outcome."""
    upgrade(db_url)
    engine = create_db_engine(db_url)
    sessions = create_session_factory(engine)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        dialer.save_clinic_schedule(session, schedule=ALWAYS_OPEN, changed_by="test", at=now)
        missed = make_call(caller="89031234567", start_ts=now.timestamp() - 600)
        result = queries.persist_call(session, call=missed)
        assert isinstance(result.decision, OpenTask)
        (task_id,) = [t.id for t in queries.list_open_tasks(session)]
    results = []

    async def scenario() -> None:
        async with AmiSimulator(
            port=0,
            secret=SECRET,
            speed=0,
            status="live",  # no recorded calls keep operator 101 busy
            outcome_rule=lambda r: "answered",
        ) as sim:
            settings = Settings(
                database_url=db_url,
                ami_port=sim.port,
                ami_secret=SECRET,
                ami_backoff_initial_s=0.05,
                ami_backoff_max_s=0.2,
            )
            results.extend(await asyncio.to_thread(sweep_due_callbacks, settings))
            assert sim.stats.originates == 1

    try:
        asyncio.run(scenario())
        assert [(r.task_id, r.outcome, r.task_state) for r in results] == [
            (task_id, AttemptOutcome.ANSWERED, "closed")
        ]
        with sessions() as session:
            stored = session.get(Task, task_id)
            assert (stored.status, stored.close_reason, stored.attempts) == ("closed", "reached", 1)
    finally:
        engine.dispose()
