"""Task status ``refused`` (consent does not allow the call) and ``callcenter tasks`` listing it.

The rule (issue "Callback queue"): consent is checked when the task is opened and again before
the call; "a refused task records why". A refused task has status ``refused``, its
``close_reason`` is the consent's reason, and it is no longer an open task.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from callcenter import cli
from callcenter.store import callbacks, dialer, queries
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task, TaskEvent
from callcenter.tasks.schedule import CloseReasonDialer

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def add_task(session_factory, *, phone, reason="missed_call", due_at=None, opened_at=None):
    opened_at = opened_at or NOW - timedelta(minutes=10)
    with session_factory.begin() as session:
        task = Task(
            phone=phone,
            reason=reason,
            kind="service",
            status="open",
            opened_at=opened_at,
            due_at=due_at or opened_at,
            attempts=0,
        )
        session.add(task)
        session.flush()
        return task.id


def refuse(session_factory, task_id, why="do_not_call", at=NOW):
    with session_factory.begin() as session:
        return dialer.close_task_for(
            session,
            task_id=task_id,
            reason=CloseReasonDialer.REFUSED,
            detail=why,
            at=at,
            worker_id="w1",
        )


def four_kinds(session_factory):
    """One task of each state: due, scheduled, refused, closed."""
    due = add_task(session_factory, phone="+79030000001")
    scheduled = add_task(session_factory, phone="+79030000002", due_at=NOW + timedelta(hours=2))
    refused = add_task(session_factory, phone="+79030000003")
    assert refuse(session_factory, refused, why="no_marketing_consent")
    closed = add_task(session_factory, phone="+79030000004")
    with session_factory.begin() as session:
        callbacks.close_task_by_operator(
            session, closed, reason="wrong_number", by="anna", now=NOW + timedelta(minutes=1)
        )
    return due, scheduled, refused, closed


def test_a_refused_task_frees_the_number_for_a_new_task(session_factory):
    """Not open any more: the one-open-task-per-number index lets a new task open."""
    task_id = add_task(session_factory, phone="+79031110000")
    assert refuse(session_factory, task_id)
    assert not refuse(session_factory, task_id)  # only an open task is refused
    second = add_task(session_factory, phone="+79031110000")
    with session_factory() as session:
        assert queries.find_open_task(session, phone="+79031110000").id == second
        first = session.get(Task, task_id)
        assert (first.status, first.close_reason) == ("refused", "do_not_call")


def test_refused_and_closed_tasks_are_not_offered_to_operators_or_dialled(session_factory):
    due, scheduled, refused, closed = four_kinds(session_factory)
    with session_factory() as session:
        items = callbacks.list_operator_callbacks(session, extension="101", now=NOW)
        assert [i.task_id for i in items] == [due, scheduled]
        assert [t.id for t in queries.list_open_tasks(session)] == [due, scheduled]
        with pytest.raises(callbacks.TaskUnavailable, match="refused"):
            callbacks.take_task(session, refused, extension="101", by="anna", now=NOW)
    with session_factory.begin() as session:
        claimed = dialer.claim_due_tasks(session, worker_id="w", now=NOW, lease_s=60, limit=10)
    assert [c.task_id for c in claimed] == [due]


def test_the_database_refuses_an_unknown_status(session_factory):
    task_id = add_task(session_factory, phone="+79031110001")
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.execute(text("UPDATE tasks SET status = 'lost' WHERE id = :id"), {"id": task_id})


def test_list_task_rows_shows_each_state_with_its_reason(session_factory):
    due, scheduled, refused, closed = four_kinds(session_factory)
    with session_factory() as session:
        rows = dialer.list_task_rows(session, now=NOW, status="all")
        assert [(r["id"], r["state"]) for r in rows] == [
            (due, "due"),
            (scheduled, "scheduled"),
            (refused, "refused"),
            (closed, "closed"),
        ]
        assert rows[2]["close_reason"] == "no_marketing_consent"
        assert rows[3]["close_reason"] == "wrong_number"
        for status, expected in [
            ("open", [due, scheduled]),
            ("due", [due]),
            ("scheduled", [scheduled]),
            ("refused", [refused]),
            ("closed", [closed]),
        ]:
            got = [r["id"] for r in dialer.list_task_rows(session, now=NOW, status=status)]
            assert got == expected, status
        assert [
            r["id"] for r in dialer.list_task_rows(session, now=NOW, status="all", limit=3)
        ] == [
            due,
            scheduled,
            refused,
        ]
        with pytest.raises(ValueError, match="unknown task status"):
            dialer.list_task_rows(session, now=NOW, status="lost")
        with pytest.raises(ValueError, match="limit"):
            dialer.list_task_rows(session, now=NOW, limit=0)


def test_refused_event_keeps_the_reason_in_words(session_factory):
    task_id = add_task(session_factory, phone="+79031110002")
    why = "no_pd_consent: the patient withdrew it by phone"
    assert refuse(session_factory, task_id, why=why)
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert task.close_reason == why[:32]
        (event,) = session.query(TaskEvent).filter_by(task_id=task_id).all()
        assert (event.kind, event.detail) == ("refused", why)


# -- callcenter tasks -------------------------------------------------------------------------


@pytest.fixture
def cli_db(db_url):
    upgrade(db_url)
    engine = create_db_engine(db_url)
    sessions = create_session_factory(engine)
    # The command uses the real clock: place the tasks around now.
    now = datetime.now(UTC)
    due = add_task(sessions, phone="+79030000011", opened_at=now - timedelta(minutes=5))
    later = add_task(sessions, phone="+79030000012", due_at=now + timedelta(hours=2))
    refused = add_task(sessions, phone="+79030000013")
    assert refuse(sessions, refused, why="do_not_call", at=now)
    with sessions.begin() as session:
        callbacks.take_task(session, due, extension="104", by="anna", now=now)
    yield db_url, {"due": due, "scheduled": later, "refused": refused}
    engine.dispose()


def test_cli_tasks_json_filters_by_status(cli_db, capsys):
    url, ids = cli_db
    assert cli.main(["tasks", "--json", "--status", "all", "--db", url]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["state"]) for r in rows] == [
        (ids["due"], "due"),
        (ids["scheduled"], "scheduled"),
        (ids["refused"], "refused"),
    ]
    assert rows[0]["assigned_extension"] == "104"
    assert rows[2]["close_reason"] == "do_not_call"
    assert cli.main(["tasks", "--json", "--status", "refused", "--db", url]) == 0
    refused = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in refused] == [ids["refused"]]
    # Default: the open ones (due and scheduled), as before.
    assert cli.main(["tasks", "--json", "--db", url]) == 0
    default = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in default] == [ids["due"], ids["scheduled"]]


def test_cli_tasks_table_shows_state_and_why(cli_db, capsys):
    url, ids = cli_db
    assert cli.main(["tasks", "--status", "all", "--db", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "state" in lines[0] and "why" in lines[0]
    refused_line = next(line for line in lines if line.split()[0] == str(ids["refused"]))
    assert " refused " in refused_line and refused_line.endswith("do_not_call")
    due_line = next(line for line in lines if line.split()[0] == str(ids["due"]))
    assert " due " in due_line and due_line.endswith("104")
    assert cli.main(["tasks", "--status", "closed", "--db", url]) == 0
    assert capsys.readouterr().out.strip() == "no closed tasks"


@pytest.mark.parametrize("argv", [["--status", "lost"], ["--limit", "0"], ["--limit", "x"]])
def test_cli_tasks_refuses_bad_options(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        cli.main(["tasks", *argv, "--db", f"sqlite:///{tmp_path / 'cc.db'}"])
    assert exited.value.code == 2
    assert "tasks" in capsys.readouterr().err


def test_migration_0008_keeps_existing_tasks_and_their_history(db_url):
    """Upgrading a database with tasks keeps every row (no table rebuild cascading deletes)."""
    upgrade(db_url, revision="0003_dialer")
    engine = create_db_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tasks (id, phone, reason, kind, status, opened_at, due_at,"
                    " attempts, dropped_calls) VALUES (1, '+79030000099', 'missed_call',"
                    " 'service', 'open', :at, :at, 0, 1)"
                ),
                {"at": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO task_events (task_id, at, kind, detail)"
                    " VALUES (1, :at, 'opened', 'missed_call')"
                ),
                {"at": NOW},
            )
        upgrade(db_url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM task_events")).scalar() == 1
            connection.execute(text("UPDATE tasks SET status = 'refused' WHERE id = 1"))
            row = connection.execute(
                text("SELECT status, assigned_extension FROM tasks WHERE id = 1")
            ).one()
            assert tuple(row) == ("refused", None)
    finally:
        engine.dispose()
