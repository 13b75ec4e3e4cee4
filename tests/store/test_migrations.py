"""The Alembic migrations build exactly the schema the models describe, on both back-ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from callcenter.store.db import alembic_config, upgrade
from callcenter.store.models import Task
from callcenter.store.schema import metadata

#: The spine's tables; each later part adds its own (patients, dialer, web, playbook).
SPINE_TABLES = {"calls", "call_legs", "tasks", "task_events", "task_attempts", "ami_gaps"}
EXPECTED_TABLES = set(metadata.tables)


def script_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_migrated_schema_matches_models(engine: Engine) -> None:
    """Alembic finds nothing to autogenerate after `upgrade head`: models and migrations agree."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


def test_upgrade_creates_all_tables(engine: Engine) -> None:
    """All tables exist, plus Alembic's own version table at every branch head."""
    tables = set(inspect(engine).get_table_names())
    assert SPINE_TABLES <= EXPECTED_TABLES
    assert tables == EXPECTED_TABLES | {"alembic_version"}
    with engine.connect() as connection:
        versions = set(
            connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )
    assert versions == script_heads()
    assert "0001" not in versions  # every part builds on the spine's first revision


def test_upgrade_twice_is_a_no_op(db_url: str, engine: Engine) -> None:
    """Running the migrations again (every process start does) changes nothing."""
    upgrade(db_url)
    assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES | {"alembic_version"}


def _task(*, phone: str, status: str) -> Task:
    now = datetime(2026, 11, 22, 17, 47, tzinfo=UTC)
    return Task(
        phone=phone,
        reason="missed_call",
        kind="service",
        status=status,
        opened_at=now,
        due_at=now,
        closed_at=None if status == "open" else now,
    )


def test_database_refuses_second_open_task_for_a_number(session_factory) -> None:
    """One open task per number, enforced by the partial unique index itself."""
    with session_factory.begin() as session:
        session.add(_task(phone="+79039556279", status="open"))
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.add(_task(phone="+79039556279", status="open"))


def test_database_allows_many_closed_tasks_for_a_number(session_factory) -> None:
    """The unique index covers open tasks only: closed history may repeat a number."""
    with session_factory.begin() as session:
        session.add_all(
            [
                _task(phone="+79039556279", status="closed"),
                _task(phone="+79039556279", status="closed"),
                _task(phone="+79039556279", status="open"),
            ]
        )
    with session_factory() as session:
        assert session.query(Task).count() == 3


def test_downgrade_to_base_drops_every_table(engine: Engine) -> None:
    """The initial revision's downgrade removes what its upgrade created."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
