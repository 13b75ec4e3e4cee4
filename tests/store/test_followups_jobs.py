"""The follow-up sweep on Huey and from the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.cli import main
from callcenter.config import Settings
from callcenter.followup_jobs import register_followup_tasks
from callcenter.jobs import build_huey
from callcenter.store.dialer import save_clinic_schedule
from callcenter.store.followups import sweep_followups
from callcenter.store.models import Task
from callcenter.store.models_followups import FollowupRecord
from callcenter.store.models_patients import ConsentRecord, Patient, PatientPhone, Visit
from callcenter.tasks.schedule import ClinicSchedule

MSK = ZoneInfo("Europe/Moscow")
MONDAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=MSK).astimezone(UTC)


def add_no_show(sessions: sessionmaker[Session], phone: str, day: date) -> None:
    with sessions.begin() as session:
        patient = Patient(full_name="Петров Павел")
        patient.phones = [PatientPhone(phone=phone)]
        session.add(patient)
        session.flush()
        session.add(Visit(patient_id=patient.id, visit_date=day, status="no_show"))
        session.add(
            ConsentRecord(
                patient_id=patient.id,
                kind="pd",
                action="given",
                at=datetime(2025, 1, 1, tzinfo=UTC),
            )
        )


def open_tasks(sessions: sessionmaker[Session]) -> list[Task]:
    with sessions() as session:
        return list(session.scalars(select(Task).where(Task.status == "open")))


def test_the_followup_sweep_is_a_periodic_task_every_ten_minutes(tmp_path) -> None:
    """The follow-up sweep is registered as a periodic Huey task, every ten minutes."""
    huey = build_huey(Settings(database_url=f"sqlite:///{tmp_path / 'cc.db'}"))
    tasks = register_followup_tasks(huey, Settings())
    (periodic,) = huey._registry._periodic_tasks
    assert periodic.__name__ == tasks.sweep.name == "followup_sweep"
    base = datetime(2026, 11, 23, 9, 0)
    fires = [m for m in range(30) if periodic().validate_datetime(base + timedelta(minutes=m))]
    assert fires == [0, 10, 20]


def test_the_periodic_sweep_opens_once_with_the_clinic_schedule_in_force(
    session_factory: sessionmaker[Session], tmp_path
) -> None:
    """The Huey task sweeps with the schedule saved in the database (a holiday today moves the
    due time to the next working morning), and running it again opens nothing new."""
    add_no_show(session_factory, "+79161239001", MONDAY)
    with session_factory.begin() as session:
        save_clinic_schedule(
            session,
            schedule=ClinicSchedule(holidays=frozenset({MONDAY})),
            changed_by="test",
            at=NOW - timedelta(days=1),
        )
    huey = build_huey(Settings(database_url=f"sqlite:///{tmp_path / 'cc.db'}"))
    tasks = register_followup_tasks(
        huey, Settings(), session_factory=session_factory, clock=lambda: NOW
    )
    first = tasks.sweep.call_local()
    assert first["opened"] == 1
    (task,) = open_tasks(session_factory)
    assert task.reason == "no_show"
    assert task.due_at == datetime(2026, 11, 24, 9, 0, tzinfo=MSK).astimezone(UTC)
    again = tasks.sweep.call_local()
    assert again["opened"] == 0
    tasks.close()


def test_cli_followups_dry_run_then_for_real(db_url: str, session_factory, capsys) -> None:
    """`callcenter followups --dry-run --json` reports what it would open and writes nothing;
    without --dry-run it opens the task, and a second run opens nothing."""
    today = datetime.now(MSK).date()
    add_no_show(session_factory, "+79161239002", today)

    assert main(["followups", "--dry-run", "--json", "--db", db_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True
    assert [(o["phone"], o["reason"], o["task_id"]) for o in report["opened"]] == [
        ("+79161239002", "no_show", None)
    ]
    assert open_tasks(session_factory) == []

    assert main(["followups", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "opened 1 follow-up task(s)" in out and "no_show" in out
    assert [t.phone for t in open_tasks(session_factory)] == ["+79161239002"]
    assert main(["followups", "--db", db_url]) == 0
    assert "opened 0 follow-up task(s)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["followups", "--limit", "3"], ["followups", "extra"]])
def test_cli_followups_refuses_unknown_arguments(argv: list[str], capsys) -> None:
    """Bad input: unknown options or arguments are a usage error (exit 2), not a sweep."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_two_sweeps_at_once_open_each_follow_up_once(
    session_factory: sessionmaker[Session],
) -> None:
    """Sweeps on several machines at once are safe: they serialize on one lock, so each due
    follow-up is opened exactly once."""
    for n in range(20):
        add_no_show(session_factory, f"+7916124{n:04d}", MONDAY)
    barrier = threading.Barrier(2)
    opened: list[int] = []
    errors: list[BaseException] = []

    def one_sweep() -> None:
        try:
            with session_factory() as session:
                barrier.wait(timeout=10)
                report = sweep_followups(session, now=NOW, schedule=ClinicSchedule())
                session.commit()
                opened.append(len(report.opened))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one_sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(opened) == [0, 20]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 20
        assert session.scalar(select(func.count()).select_from(FollowupRecord)) == 20


def test_cli_followups_on_a_database_not_migrated_says_so(tmp_path, capsys) -> None:
    """Bad input: a database without the tables is a clear error (exit 2), not a traceback."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["followups", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "database error" in err and "callcenter db upgrade" in err
