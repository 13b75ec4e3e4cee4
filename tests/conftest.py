"""Shared fixtures: a database per test on SQLite and PostgreSQL, and a CallRecord factory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from callcenter.calls.model import CallRecord, Direction, Disposition
from callcenter.store.db import create_db_engine, create_session_factory, upgrade

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """Return the PostgreSQL URL, skipping (or failing on CI) when the server is unreachable."""
    url = _postgres_url()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {make_url(url)!r} (set TEST_POSTGRES_URL): {exc}"
        # On CI a silent skip would hide that half the store tests never ran.
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """Return the URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callcenter.db'}"
        return
    base_url = request.getfixturevalue("postgres_base_url")
    # A schema per test, so parallel runs and leftovers from a crashed run never collide.
    schema = f"cc_{secrets.token_hex(6)}"
    admin = create_db_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Return an engine on a database migrated to the latest revision."""
    upgrade(db_url)
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory for the migrated database."""
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """Return a session on the migrated database; uncommitted work is rolled back."""
    with session_factory() as session:
        yield session


CallFactory = Callable[..., CallRecord]


@pytest.fixture
def make_call() -> CallFactory:
    """Return a factory for CallRecords: a dropped inbound call unless told otherwise."""
    counter = iter(range(1, 1_000_000))

    def build(**overrides: Any) -> CallRecord:
        start_ts = overrides.pop("start_ts", 1_795_369_641.0)
        fields: dict[str, Any] = {
            "linkedid": f"1795369641.{next(counter)}",
            "caller": "89039556279",
            "direction": Direction.INBOUND,
            "disposition": Disposition.QUEUE_TIMEOUT,
            "queue": "reception",
            "agent": None,
            "wait_s": 26.0,
            "talk_s": 0.0,
            "queue_wait_s": 20.0,
            "start_ts": start_ts,
            "end_ts": start_ts + 26.0,
            "recording": None,
            "callback_task": None,
        }
        fields.update(overrides)
        return CallRecord(**fields)

    return build
