"""A Ping answered late because a burst of events is queued before it is not a stalled link."""

from __future__ import annotations

import asyncio
import time

import pytest

from callcenter.ami import client as client_module
from callcenter.ami.client import AmiClient
from callcenter.ami.events import AmiEvent
from callcenter.ami.simulator import AmiSimulator, load_trace

SECRET = "busy-link-secret"


class SlowListener:
    """Takes about a millisecond per event, as a loaded machine might."""

    def __init__(self) -> None:
        self.events = 0
        self.downs: list[str] = []

    def on_event(self, event: AmiEvent) -> None:
        self.events += 1
        time.sleep(0.001)

    def on_link_up(self, *, at: float) -> None:
        pass

    def on_link_down(self, *, at: float, reason: str) -> None:
        self.downs.append(reason)

    def on_resync(self, *, channels, queue_entries, at: float) -> None:
        pass


def play_burst_to_a_slow_listener(*, ping_timeout: float) -> tuple[SlowListener, int]:
    listener = SlowListener()
    frames = len(load_trace("burst").block.frames)

    async def scenario() -> None:
        async with AmiSimulator(traces=["burst"], speed=0, port=0, secret=SECRET) as sim:
            client = AmiClient(
                host="127.0.0.1",
                port=sim.port,
                username="callcenter",
                secret=SECRET,
                listener=listener,
                ping_interval=0.2,
                ping_timeout=ping_timeout,
                backoff_initial=5.0,
                backoff_max=5.0,
            )
            await client.start()
            try:
                deadline = time.monotonic() + 60
                while (
                    listener.events < frames and not listener.downs and time.monotonic() < deadline
                ):
                    await asyncio.sleep(0.05)
            finally:
                await client.stop()

    asyncio.run(scenario())
    return listener, frames


@pytest.mark.timeout(120)
def test_a_busy_link_is_kept_while_events_keep_arriving():
    # About 3 s of events are queued before the first Pong: well past one ping_timeout, within
    # PING_BUSY_FACTOR of them.
    listener, frames = play_burst_to_a_slow_listener(ping_timeout=1.0)
    assert listener.downs == [] or listener.downs == ["stopped"]
    # FullyBooted comes on top of the trace's events.
    assert listener.events >= frames


@pytest.mark.timeout(120)
def test_without_the_extra_time_the_same_burst_looked_like_a_stall(monkeypatch):
    """The check above can fail: with one ping_timeout only, the link is dropped."""
    monkeypatch.setattr(client_module, "PING_BUSY_FACTOR", 1)
    listener, frames = play_burst_to_a_slow_listener(ping_timeout=0.5)
    assert listener.downs and listener.downs[0].startswith("no reply to Ping within 0.5s")
    assert listener.events < frames
