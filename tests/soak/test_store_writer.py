"""The store writer holds writes while the store is unreachable and writes them, in order, after."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from callcenter.dispatch import StoreUnavailable, StoreWriter
from callcenter.store.sink import SqlCallSink


class FlakyStore:
    """Refuses the first ``outages`` attempts, then records what it is given."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.attempts = 0
        self.written: list[int] = []
        self.lock = threading.Lock()

    def write(self, n: int) -> None:
        with self.lock:
            self.attempts += 1
            if self.outages > 0:
                self.outages -= 1
                raise StoreUnavailable("connection refused")
            self.written.append(n)


def test_writes_are_held_while_the_store_is_unreachable_then_written_in_order(caplog):
    store = FlakyStore(outages=4)
    writer = StoreWriter(retry_initial=0.01, retry_max=0.02)
    with caplog.at_level(logging.WARNING, logger="callcenter.dispatch"):
        for n in range(10):
            writer.submit(lambda n=n: store.write(n), what=f"job {n}")
        assert writer.flush(10)
    stats = writer.stats
    writer.stop()
    assert store.written == list(range(10))
    assert (stats.retries, stats.failures, stats.dropped, stats.backlog) == (4, 0, 0, 0)
    assert stats.unavailable_since is None
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("store unreachable (connection refused): holding") for m in messages)
    assert any(m.startswith("store reachable again after") for m in messages)


def test_the_backlog_counts_held_writes_while_the_store_is_down():
    store = FlakyStore(outages=10**9)
    writer = StoreWriter(retry_initial=0.01, retry_max=0.02)
    for n in range(5):
        writer.submit(lambda n=n: store.write(n))
    assert not writer.flush(0.3)
    stats = writer.stats
    assert stats.backlog == 6  # five writes and the flush marker
    assert stats.unavailable_since is not None and stats.retries > 0
    store.outages = 0
    assert writer.flush(10)
    writer.stop()
    assert store.written == list(range(5))


def test_stop_gives_up_on_a_store_that_stays_down_and_names_each_dropped_write(caplog):
    store = FlakyStore(outages=10**9)
    writer = StoreWriter(retry_initial=0.01, retry_max=0.05)
    for n in range(3):
        writer.submit(lambda n=n: store.write(n), what=f"call 1795.{n}")
    with caplog.at_level(logging.ERROR, logger="callcenter.dispatch"):
        writer.stop(timeout=0.3)
    assert writer.stats.dropped == 3
    assert store.written == []
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert [m.rsplit(": dropping ", 1)[1] for m in dropped] == [f"call 1795.{n}" for n in range(3)]


def test_other_errors_fail_the_job_and_the_next_one_runs():
    writer = StoreWriter()
    done: list[int] = []

    def broken() -> None:
        raise ValueError("a bug")

    writer.submit(broken)
    writer.submit(lambda: done.append(1))
    assert writer.flush(5)
    writer.stop()
    assert (writer.stats.failures, writer.stats.retries, done) == (1, 0, [1])


def test_retry_settings_are_checked():
    with pytest.raises(ValueError, match="retry_initial"):
        StoreWriter(retry_initial=2.0, retry_max=1.0)


def test_the_sql_sink_reports_a_refused_connection_as_store_unavailable(make_call):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = SqlCallSink(f"postgresql+psycopg://callcenter@127.0.0.1:{port}/callcenter")
    try:
        with pytest.raises(StoreUnavailable, match="OperationalError"):
            sink.save_call(make_call())
        with pytest.raises(StoreUnavailable):
            sink.open_gap(at=1_795_369_641.0, reason="test")
    finally:
        sink.close()
