"""The store behind the dispatcher's ``CallSink`` port: finished calls, tasks, link gaps."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from callcenter.calls.model import CallRecord
from callcenter.config import ConfigError
from callcenter.dispatch import StoreUnavailable
from callcenter.notify import TaskNotice
from callcenter.store import queries
from callcenter.store.db import create_db_engine, create_session_factory, upgrade

log = logging.getLogger(__name__)

#: How often a starting listener tries to reach its database, and the longest wait between
#: two tries (the waits double from half a second): about 40 s in all, long enough for a
#: database container started at the same time.
START_ATTEMPTS = 10
START_DELAY_MAX_S = 5.0


class StoreUnreachable(ConfigError):
    """The database did not answer at start, after every retry."""


class SqlCallSink:
    """The store behind the dispatcher's ``CallSink`` port."""

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)
        self.sessions = create_session_factory(self.engine)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction; a lost or refused connection becomes ``StoreUnavailable``.

        The failed connection is invalidated by SQLAlchemy, and ``pool_pre_ping`` checks the
        next one out, so a retry after the database is back gets a fresh connection.
        """
        try:
            with self.sessions() as session, session.begin():
                yield session
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                raise StoreUnavailable(_first_line(exc)) from exc
            raise

    def save_call(self, call: CallRecord) -> list[TaskNotice]:
        """Store a finished call and apply the task rules; return what changed on tasks."""
        with self._session() as session:
            result = queries.persist_call(session, call=call)
            return [
                TaskNotice(
                    task_id=change.task_id,
                    phone=change.phone,
                    reason=change.reason,
                    status=change.status,
                    linkedid=call.linkedid,
                )
                for change in result.task_changes
            ]

    def open_gap(self, *, at: float, reason: str) -> int:
        """Record the start of a period without AMI events."""
        with self._session() as session:
            return queries.open_gap(session, started_at=queries.to_utc(at), reason=reason)

    def close_gap(self, *, gap_id: int, at: float) -> None:
        """Record the end of that period."""
        with self._session() as session:
            queries.close_gap(session, gap_id=gap_id, ended_at=queries.to_utc(at))

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    """Return the error's type and first line (no SQL, no parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def open_call_sink(
    url: str,
    *,
    attempts: int | None = None,
    delay_max: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SqlCallSink:
    """Migrate the database if needed and return a sink writing to it.

    An unreachable database is retried ``attempts`` times (default ``START_ATTEMPTS``), with
    waits doubling from 0.5 s up to ``delay_max`` (default ``START_DELAY_MAX_S``).

    :raises StoreUnreachable: when the database still does not answer, naming it (without the
        password) and the last error.
    """
    attempts = START_ATTEMPTS if attempts is None else attempts
    delay_max = START_DELAY_MAX_S if delay_max is None else delay_max
    shown = make_url(url).render_as_string(hide_password=True)
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            upgrade(url)
            break
        except (OperationalError, InterfaceError) as exc:
            error = _first_line(exc)
            if attempt == attempts:
                raise StoreUnreachable(
                    f"database unreachable at {shown} after {attempts} attempt(s) ({error}); "
                    "check DATABASE_URL and that the database server is up"
                ) from exc
            log.warning(
                "database unreachable at %s (%s); retrying in %.1fs (attempt %d of %d)",
                shown,
                error,
                delay,
                attempt,
                attempts,
            )
            sleep(delay)
            delay = min(delay_max, delay * 2)
    return SqlCallSink(url)


def list_open_task_rows(url: str) -> list[dict[str, Any]]:
    """Return the open callback tasks as plain dicts, most urgent first."""
    sink = SqlCallSink(url)
    try:
        with sink.sessions() as session:
            return [queries.task_row(task) for task in queries.list_open_tasks(session)]
    finally:
        sink.close()
