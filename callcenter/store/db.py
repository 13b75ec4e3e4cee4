"""Engines, sessions and migrations; every SQLite vs PostgreSQL difference lives here.

SQLite is the embedded default (one file, one writer at a time); PostgreSQL serves any number of
processes. URLs: ``sqlite:///path/to/callcenter.db``, ``postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

#: What the database driver raises (connection refused, missing table…), for callers outside
#: the store package, which import no SQLAlchemy (tests/unit/test_import_rules.py).
DatabaseError = DBAPIError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# First key of the two-key PostgreSQL advisory locks we take, so ours never collide with another
# application's locks on the same database.
_ADVISORY_LOCK_NAMESPACE = 0x0CC0


def is_sqlite(url: str) -> bool:
    """Return True when the URL points at a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for the URL with the back-end's settings applied."""
    if is_sqlite(url):
        engine = create_engine(url, echo=echo)
        _configure_sqlite(engine)
        return engine
    # pre_ping: a clinic's database may restart overnight; stale pooled connections recover.
    return create_engine(url, echo=echo, pool_pre_ping=True)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Create the session factory every unit of work uses."""
    # expire_on_commit=False: rows returned by a committed unit of work stay readable.
    return sessionmaker(engine, expire_on_commit=False)


def lock_key(session: Session | Connection, *, key: str) -> None:
    """Hold a lock on ``key`` until the session's (or connection's) transaction ends."""
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    if dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
            {"namespace": _ADVISORY_LOCK_NAMESPACE, "key": key},
        )
    # SQLite needs nothing: every transaction already begins IMMEDIATE, so it is the only writer.


def alembic_config() -> Config:
    """Return an Alembic config for the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(url: str, *, revision: str = "heads") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: every branch head)."""
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            # The connection, not the URL: a URL in the config would go through configparser
            # interpolation, which chokes on the '%' of escaped URL options.
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, issue BEGIN: the module's implicit transactions
        # break SAVEPOINT and cannot begin IMMEDIATE (SQLAlchemy's documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            # WAL: readers (web pages) never wait for the writer (the call listener).
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front. A deferred transaction that read first and then
        # wants to write fails with SQLITE_BUSY at once when another writer committed meanwhile,
        # busy timeout or not.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class LazySessions:
    """A session factory opened on first use, one engine per process (Huey jobs: the worker
    imports and registers them before it knows whether any will run), or a given one.

    ``close()`` disposes the engine it opened (never a given factory's); the next use opens a
    new one.
    """

    def __init__(self, url: str, *, given: sessionmaker[Session] | None = None) -> None:
        self._url = url
        self._given = given
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> sessionmaker[Session]:
        """Return the session factory, opening the database the first time."""
        if self._given is not None:
            return self._given
        with self._lock:
            if self._factory is None:
                self._engine = create_db_engine(self._url)
                self._factory = create_session_factory(self._engine)
            return self._factory

    def close(self) -> None:
        """Dispose the engine this object opened, if any."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._factory = None
