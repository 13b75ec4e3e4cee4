"""`callcenter serve` / `demo` composition: one AMI link stores calls and dials callbacks, and
the embedded Huey consumer runs the callback sweep on that link.

The simulator plays the recorded ``queue_timeout`` call; its callback task opens; a sweep
queued on the embedded worker originates the callback over the same link, and the recorded
``outbound_callback_answered`` aftermath closes the task as reached.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.runtime import _clinic
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.dialer import save_clinic_schedule
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import ClinicSchedule
from tests.replay.aio_helpers import wait_until

SECRET = "serve-test-secret"
MISSED_CALLER = "79035554433"  # the queue_timeout trace's caller


def _rows(db_url: str, model: type) -> list:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            return list(session.scalars(select(model).order_by(model.id)))
    finally:
        engine.dispose()


def _open_all_day(db_url: str) -> None:
    """The clinic works around the clock, so the test does not depend on when it runs."""
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine).begin() as session:
            save_clinic_schedule(
                session,
                schedule=ClinicSchedule(hours=((time(0, 0), time(23, 59, 59)),) * 7),
                changed_by="test",
                at=datetime.now(UTC),
            )
    finally:
        engine.dispose()


@pytest.mark.timeout(90)
def test_serve_stores_the_missed_call_and_its_embedded_worker_calls_back(db_url, tmp_path):
    upgrade(db_url)
    _open_all_day(db_url)
    out = io.StringIO()

    async def scenario() -> list[str]:
        async with AmiSimulator(
            traces=["queue_timeout"],
            speed=0,
            port=0,
            secret=SECRET,
            outcome_rule=lambda r: "answered",
        ) as sim:
            settings = Settings(
                database_url=db_url,
                ami_port=sim.port,
                ami_secret=SECRET,
                ami_backoff_initial_s=0.05,
                huey_path=str(tmp_path / "huey.db"),
                worker_threads=1,
                dialer_operators=("101",),
                demo=True,
            )
            async with _clinic(settings, out=out, with_web=False, transcribe=False) as clinic:
                await clinic.process.start()
                try:
                    await wait_until(
                        lambda: any(t.status == "open" for t in _rows(db_url, Task)),
                        15,
                        what="the callback task",
                    )
                    clinic.sweep_now()  # what the scheduler does every minute
                    await wait_until(
                        lambda: _rows(db_url, Task)[0].status == "closed",
                        30,
                        what="the task closed by the answered callback",
                    )
                finally:
                    await clinic.stop_worker()
                    await clinic.process.stop()
            return [r.task_id for r in sim.originate_requests]

    originated = asyncio.run(scenario())
    (task,) = _rows(db_url, Task)
    assert task.phone == "+" + MISSED_CALLER
    assert (task.status, task.close_reason, task.attempts) == ("closed", "reached", 1)
    assert originated == [str(task.id)]  # one Originate, on the process's only link
    (attempt,) = _rows(db_url, TaskAttempt)
    assert attempt.outcome == "answered" and attempt.call_linkedid is not None
    # The console shows the missed call and the answered callback (stored by the same link).
    assert "queue_timeout" in out.getvalue()
