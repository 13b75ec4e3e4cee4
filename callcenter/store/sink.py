"""The store behind the dispatcher's ``CallSink`` port: finished calls, tasks, link gaps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from callcenter.calls.model import CallRecord
from callcenter.dispatch import StoreUnavailable
from callcenter.notify import TaskNotice
from callcenter.store import queries
from callcenter.store.db import create_db_engine, create_session_factory, upgrade


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


def open_call_sink(url: str) -> SqlCallSink:
    """Migrate the database if needed and return a sink writing to it."""
    upgrade(url)
    return SqlCallSink(url)


def list_open_task_rows(url: str) -> list[dict[str, Any]]:
    """Return the open callback tasks as plain dicts, most urgent first."""
    sink = SqlCallSink(url)
    try:
        with sink.sessions() as session:
            return [queries.task_row(task) for task in queries.list_open_tasks(session)]
    finally:
        sink.close()
