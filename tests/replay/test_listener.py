"""`callcenter listen` end to end: simulator over TCP → client → tracker → store, both databases."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.notify import RecordingNotifier
from callcenter.runtime import build_listener
from callcenter.store import queries
from callcenter.store.db import create_db_engine, create_session_factory
from tests.replay.aio_helpers import wait_until

INBOUND = ["answered", "abandoned", "queue_timeout", "direct_noanswer", "busy"]
SECRET = "listener-test-secret"


def settings_for(db_url: str, port: int) -> Settings:
    return Settings(
        database_url=db_url,
        ami_port=port,
        ami_secret=SECRET,
        ami_backoff_initial_s=0.05,
        ami_backoff_max_s=0.2,
        ami_ping_interval_s=0.5,
        ami_ping_timeout_s=0.5,
    )


def open_tasks(db_url: str) -> list[dict]:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            return [queries.task_row(t) for t in queries.list_open_tasks(session)]
    finally:
        engine.dispose()


def gaps(db_url: str) -> list:
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            return [(g.started_at, g.ended_at, g.reason) for g in queries.list_gaps(session)]
    finally:
        engine.dispose()


@pytest.mark.timeout(60)
def test_listener_stores_calls_and_opens_tasks_for_dropped_callers(db_url):
    """Every missed or abandoned inbound caller becomes one open callback task."""
    notifier = RecordingNotifier()

    async def scenario() -> None:
        async with AmiSimulator(traces=INBOUND, speed=0, port=0, secret=SECRET) as sim:
            process = build_listener(settings_for(db_url, sim.port), notifier=notifier)
            await process.start()
            try:
                await wait_until(lambda: len(notifier.of("call_ended")) == 5, 30, what="5 calls")
            finally:
                await process.stop()

    asyncio.run(scenario())
    dispositions = [c.disposition for c in notifier.of("call_ended")]
    assert dispositions == ["answered", "abandoned", "queue_timeout", "no_answer", "busy"]
    tasks = open_tasks(db_url)
    assert sorted(t["phone"] for t in tasks) == [
        "+79035554433",  # queue timeout
        "+79164445566",  # busy direct line
        "+79261112233",  # abandoned in the queue
        "+79857776655",  # direct line rang out
    ]
    # Task notices reach the screens only after the store committed them.
    assert len(notifier.of("task_changed")) == 4


@pytest.mark.timeout(60)
def test_a_dropped_link_is_stored_as_a_gap_and_the_listener_carries_on(db_url):
    """A lost call is never silent: the time the AMI link was down is stored as a gap."""
    notifier = RecordingNotifier()

    async def scenario() -> None:
        async with AmiSimulator(
            traces=["answered"], speed=0, port=0, secret=SECRET, loop_forever=True
        ) as sim:
            process = build_listener(settings_for(db_url, sim.port), notifier=notifier)
            await process.start()
            try:
                await wait_until(lambda: len(notifier.of("call_ended")) >= 1, 30, what="a call")
                sim.drop_mid_frame()
                await wait_until(
                    lambda: [up for up, _, _ in notifier.of("link_state")][-2:] == [False, True],
                    30,
                    what="reconnect",
                )
                seen = len(notifier.of("call_ended"))
                await wait_until(
                    lambda: len(notifier.of("call_ended")) > seen, 30, what="calls after reconnect"
                )
            finally:
                await process.stop()

    asyncio.run(scenario())
    stored = gaps(db_url)
    assert len(stored) >= 1
    started, ended, reason = stored[0]
    assert ended is not None and started <= ended
    assert reason
