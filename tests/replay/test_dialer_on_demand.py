"""Dial now on an operator's request: Huey job → dialer → simulator's recorded Originate → task.

A missed call opens a task; operator 105 takes it; ``request_dial`` enqueues the job on the
embedded Huey; the worker side runs it. The simulator answers the Originate from the recorded
``outbound_callback_*`` traces. The call goes operator first to 105 only (not to the configured
``DIALER_OPERATORS``), and the attempt and its outcome are recorded on the task.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.dialer.on_demand import DIAL_NOW_TASK, register_on_demand_tasks, request_dial
from callcenter.jobs import build_huey
from callcenter.store import callbacks, dialer, queries
from callcenter.store.callbacks import BadTaskRequest
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import ClinicSchedule

SECRET = "dial-now-secret"
ALWAYS_OPEN = ClinicSchedule(hours=((time(0, 0), time(23, 59)),) * 7)
CALLER = "89031234567"


@pytest.fixture
def sessions(db_url):
    upgrade(db_url)
    engine = create_db_engine(db_url)
    yield create_session_factory(engine)
    engine.dispose()


def taken_missed_call(sessions, make_call, *, extension="105") -> int:
    """A missed call an hour... ten minutes ago (the caller's own request), taken by 105."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        dialer.save_clinic_schedule(session, schedule=ALWAYS_OPEN, changed_by="test", at=now)
        queries.persist_call(session, call=make_call(caller=CALLER, start_ts=now.timestamp() - 600))
        (task,) = queries.list_open_tasks(session)
        callbacks.take_task(session, task.id, extension=extension, by="anna", now=now)
        return task.id


def settings_for(db_url, port, tmp_path) -> Settings:
    return Settings(
        database_url=db_url,
        ami_port=port,
        ami_secret=SECRET,
        ami_backoff_initial_s=0.05,
        ami_backoff_max_s=0.2,
        dialer_originate_timeout_s=2.0,
        huey_path=str(tmp_path / "huey.db"),
    )


def run_the_queued_job(settings: Settings) -> object:
    """What ``callcenter worker`` does with one queued job."""
    huey = build_huey(settings)
    register_on_demand_tasks(huey, settings)
    job = huey.dequeue()
    assert job is not None and job.name.endswith(DIAL_NOW_TASK)
    return huey.execute(job)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("sim_outcome", "action", "status", "attempts", "outcome"),
    [
        ("answered", "dialled", "closed", 1, "answered"),
        # The recorded click-to-call: the operator answers, the patient does not (DialEnd
        # NOANSWER): an attempt used, due again after the first gap.
        ("no_answer", "dialled", "open", 1, "patient_no_answer"),
        # Operator first: Reason 5 on the first channel is the operator's; no attempt used.
        ("busy", "dialled", "open", 0, "operator_no_answer"),
    ],
)
def test_request_dial_rings_the_assigned_extension_and_records_the_outcome(
    db_url, sessions, make_call, tmp_path, sim_outcome, action, status, attempts, outcome
):
    task_id = taken_missed_call(sessions, make_call)
    done = []

    async def scenario() -> None:
        async with AmiSimulator(
            port=0, secret=SECRET, speed=0, status="live", outcome_rule=lambda r: sim_outcome
        ) as sim:
            settings = settings_for(db_url, sim.port, tmp_path)
            request_dial(settings, task_id)
            assert sim.stats.originates == 0  # only queued so far
            done.append(await asyncio.to_thread(run_the_queued_job, settings))
            (request,) = sim.originate_requests
            assert request.style == "operator_first"
            assert request.extension == "105"
            assert request.patient_number == CALLER.replace("8", "7", 1)
            assert request.task_id == str(task_id)
            assert request.action_id.startswith(f"cb-{task_id}-")

    asyncio.run(scenario())
    assert done == [action]
    with sessions() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.attempts, task.assigned_extension) == (status, attempts, "105")
        (attempt,) = session.scalars(select(TaskAttempt)).all()
        assert attempt.outcome == outcome
        assert attempt.action_id.startswith(f"cb-{task_id}-")


@pytest.mark.timeout(60)
def test_dial_now_of_a_closed_task_places_no_call(db_url, sessions, make_call, tmp_path):
    """The operator closed it before the worker ran the job: nothing is dialled."""
    task_id = taken_missed_call(sessions, make_call)
    with sessions.begin() as session:
        callbacks.close_task_by_operator(
            session, task_id, reason="not_interested", by="anna", now=datetime.now(UTC)
        )
    done = []

    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET, speed=0, status="live") as sim:
            settings = settings_for(db_url, sim.port, tmp_path)
            request_dial(settings, task_id)
            done.append(await asyncio.to_thread(run_the_queued_job, settings))
            assert sim.stats.originates == 0

    asyncio.run(scenario())
    assert done == ["unavailable"]
    with sessions() as session:
        assert session.scalars(select(TaskAttempt)).all() == []


@pytest.mark.parametrize("bad", [0, -3, "7", True, None])
def test_request_dial_refuses_a_bad_task_id(tmp_path, bad):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cc.db'}")
    with pytest.raises(BadTaskRequest, match="positive integer"):
        request_dial(settings, bad)
    assert not (tmp_path / "callcenter-huey.db").exists()
