"""Two writers, one number: still exactly one open task."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store import queries
from callcenter.store.models import Task
from callcenter.tasks.rules import RecordRepeatDrop

PHONE = "+79039556279"


def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.02)


class Writer(threading.Thread):
    """Persist one call in its own session and commit, recording the result or the error."""

    def __init__(self, sessions: sessionmaker[Session], call) -> None:
        super().__init__(daemon=True)
        self.sessions = sessions
        self.call = call
        self.backend_pid: int | None = None
        self.result: queries.PersistResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.sessions() as session:
                if session.get_bind().dialect.name == "postgresql":
                    self.backend_pid = session.scalar(text("SELECT pg_backend_pid()"))
                self.result = queries.persist_call(session, call=self.call)
                session.commit()
        except BaseException as exc:  # handed to the test thread, which re-raises it
            self.error = exc

    def finish(self) -> queries.PersistResult:
        self.join(timeout=30)
        assert not self.is_alive(), "writer still blocked"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def is_waiting_for_a_lock(sessions: sessionmaker[Session], writer: Writer) -> bool:
    if writer.backend_pid is None:
        return False
    with sessions() as observer:
        waiting = observer.scalar(
            text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"),
            {"pid": writer.backend_pid},
        )
    return bool(waiting)


def open_tasks(sessions: sessionmaker[Session]) -> list[Task]:
    with sessions() as session:
        return list(session.scalars(select(Task).where(Task.status == "open")))


def test_two_sessions_dropping_one_number_open_exactly_one_task(session_factory, make_call):
    """Rule: one open task per number, also when two writers persist drops of that number at
    once: exactly one task opens, the other call is recorded on it as a repeat drop."""
    first = make_call(caller="89039556279", start_ts=1000.0)
    second = make_call(caller="+79039556279", start_ts=1001.0)
    with session_factory() as holder:
        queries.persist_call(holder, call=first)  # task opened, not yet committed
        writer = Writer(session_factory, second)
        writer.start()
        if holder.get_bind().dialect.name == "postgresql":
            # Prove the race really happened: the second writer waits for the first.
            wait_until(lambda: is_waiting_for_a_lock(session_factory, writer))
        holder.commit()
    result = writer.finish()

    assert isinstance(result.decision, RecordRepeatDrop)
    (task,) = open_tasks(session_factory)
    assert (task.phone, task.dropped_calls) == (PHONE, 2)


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_unique_index_turns_a_lost_insert_into_a_repeat_drop(session_factory, make_call):
    """Rule: one open task per number, even against a writer that skips the per-number lock:
    the partial unique index refuses the second open task and the drop becomes a repeat."""
    opened = datetime(2026, 11, 22, 17, 47, tzinfo=UTC)
    with session_factory() as rogue:
        rogue.add(
            Task(
                phone=PHONE,
                reason="missed_call",
                kind="service",
                status="open",
                opened_at=opened,
                due_at=opened,
                dropped_calls=1,
                last_drop_started_ts=1000.0,
            )
        )
        rogue.flush()  # holds the index entry for PHONE until commit
        writer = Writer(session_factory, make_call(caller="89039556279", start_ts=2000.0))
        writer.start()
        wait_until(lambda: is_waiting_for_a_lock(session_factory, writer))
        rogue.commit()
    result = writer.finish()

    (task,) = open_tasks(session_factory)
    assert isinstance(result.decision, RecordRepeatDrop)
    assert (result.decision.task_id, result.decision.drop_started_at) == (task.id, 2000.0)
    assert (task.dropped_calls, task.last_drop_started_ts) == (2, 2000.0)


def test_two_sessions_storing_one_linkedid_store_it_once(session_factory, make_call):
    """Idempotency by linkedid holds when two writers replay the same call at once."""
    call = make_call()
    with session_factory() as holder:
        queries.persist_call(holder, call=call)
        writer = Writer(session_factory, call)
        writer.start()
        if holder.get_bind().dialect.name == "postgresql":
            wait_until(lambda: is_waiting_for_a_lock(session_factory, writer))
        holder.commit()
    assert writer.finish() == queries.PersistResult(stored=False, call_id=None, decision=None)
    (task,) = open_tasks(session_factory)
    assert task.dropped_calls == 1
