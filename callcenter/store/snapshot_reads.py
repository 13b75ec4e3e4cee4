"""Run a request's independent reads side by side on PostgreSQL, all on one snapshot.

The dashboard's parts (call figures, objections, drops) are independent queries plus Python;
on PostgreSQL they run in worker threads, each on its own connection, so the database and
Python overlap. The caller's transaction exports its snapshot (``pg_export_snapshot``) and
every worker imports it (``SET TRANSACTION SNAPSHOT``) before its first query: together they
see the database exactly as one transaction would, however long they run.

Workers connect through a companion engine without a pool (``NullPool``): a connection per
part, closed after it, so a burst of dashboards never holds idle connections and never waits
on the application's pool while holding one of its connections. Elsewhere (SQLite, a session
bound to a connection) the parts run one after the other in the caller's session.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

T = TypeVar("T")

#: Parts run at once at most; the dashboard has four.
MAX_WORKERS = 4
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")
_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def _worker_engine(engine: Engine) -> Engine:
    """Return the pool-less REPEATABLE READ companion of ``engine`` (made once)."""
    with _engines_lock:
        worker = _engines.get(engine)
        if worker is None:
            worker = create_engine(
                engine.url, poolclass=NullPool, isolation_level="REPEATABLE READ"
            )
            _engines[engine] = worker
        return worker


def run_parts(
    session: Session,
    parts: Mapping[str, Callable[[Session], T]],
    *,
    setup: tuple[str, ...] = (),
) -> dict[str, T]:
    """Run each part with a session and return its result by name.

    ``setup``: statements each worker's transaction runs first (``SET LOCAL …``); the caller
    has run them in its own. A part's exception is raised here, after every part finished.
    """
    bind = session.get_bind()
    if len(parts) < 2 or not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return {name: part(session) for name, part in parts.items()}
    snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    if not _SNAPSHOT_ID.fullmatch(snapshot):  # it is inlined below: SET takes no parameters
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    worker = _worker_engine(bind)

    def run(part: Callable[[Session], T]) -> T:
        with worker.connect() as connection:
            connection.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            for statement in setup:
                connection.execute(text(statement))
            with Session(bind=connection) as part_session:
                result = part(part_session)
            connection.rollback()  # read-only: nothing to keep
            return result

    with ThreadPoolExecutor(
        max_workers=min(MAX_WORKERS, len(parts)), thread_name_prefix="report-part"
    ) as pool:
        futures = {name: pool.submit(run, part) for name, part in parts.items()}
        return {name: future.result() for name, future in futures.items()}
