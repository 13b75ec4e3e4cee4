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
                # The embedded worker runs what `callcenter worker` runs.
                registered = " ".join(clinic.consumer.huey._registry._registry)
                for job in ("dialer_sweep", "dialer_dial_now", "retention", "followup"):
                    assert job in registered, registered
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


def _patient_with_consent(session, phone: str) -> None:
    """A patient who gave the personal-data consent (enough for a service call, 152-ФЗ)."""
    from datetime import date

    from callcenter.store.models_patients import Patient, PatientPhone
    from callcenter.store.patients import record_consent

    patient = Patient(full_name="Иванова Мария", birth_date=date(1984, 3, 5))
    patient.phones = [PatientPhone(phone=phone)]
    session.add(patient)
    session.flush()
    record_consent(
        session,
        patient_id=patient.id,
        kind="pd",
        action="given",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        by="reception",
        channel="paper",
    )


@pytest.mark.timeout(90)
def test_serve_dials_an_operators_click_to_call_on_its_live_link(db_url, tmp_path):
    """The panel's click-to-call enqueues ``dialer_dial_now`` (``request_dial``); the embedded
    worker dials it at once on the process's link, operator first to that operator."""
    from callcenter.dialer.on_demand import request_dial
    from callcenter.store.callbacks import request_call

    upgrade(db_url)
    _open_all_day(db_url)
    patient = "+79161234567"

    async def scenario() -> list:
        async with AmiSimulator(
            traces=[], speed=0, port=0, secret=SECRET, outcome_rule=lambda r: "answered"
        ) as sim:
            settings = Settings(
                database_url=db_url,
                ami_port=sim.port,
                ami_secret=SECRET,
                ami_backoff_initial_s=0.05,
                huey_path=str(tmp_path / "huey.db"),
                worker_threads=1,
                dialer_operators=("101", "102"),
                demo=True,
            )
            out = io.StringIO()
            async with _clinic(settings, out=out, with_web=False, transcribe=False) as clinic:
                await clinic.process.start()
                try:
                    assert await clinic.process.wait_ready(10)
                    engine = create_db_engine(db_url)
                    try:
                        with create_session_factory(engine).begin() as session:
                            _patient_with_consent(session, patient)
                            item = request_call(
                                session,
                                phone=patient,
                                extension="102",
                                by="operator102",
                                now=datetime.now(UTC),
                            )
                    finally:
                        engine.dispose()
                    request_dial(settings, item.task_id)  # what the panel's route does
                    await wait_until(
                        lambda: (
                            len(_rows(db_url, TaskAttempt)) == 1
                            and _rows(db_url, TaskAttempt)[0].outcome is not None
                        ),
                        30,
                        what="the click-to-call attempt's outcome",
                    )
                finally:
                    await clinic.stop_worker()
                    await clinic.process.stop()
            return list(sim.originate_requests)

    (request,) = asyncio.run(scenario())
    assert request.style == "operator_first"
    assert request.extension == "102"
    assert request.patient_number == patient.removeprefix("+")
    (task,) = _rows(db_url, Task)
    assert task.reason == "click_to_call" and request.task_id == str(task.id)
