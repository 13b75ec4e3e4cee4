"""Every shared trace through the TCP simulator, cut at random sizes, gives the replay's calls.

The path is the listener's: simulator socket → panoramisk Manager with our protocol → AmiClient
→ tracker. Calls must equal `callcenter replay` of the same trace (which agrees with
expected.json, see test_tracker_traces.py).
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.ami.client import AmiClient
from callcenter.ami.simulator import AmiSimulator
from callcenter.ami.traces import list_traces
from callcenter.calls.effects import CallEnded
from callcenter.calls.tracker import CallTracker
from callcenter.replay import replay_trace
from tests.replay.aio_helpers import RecordingListener, wait_until

SECRET = "tcp-tracker-secret"


class TrackerListener(RecordingListener):
    """Feed events to a tracker as they arrive; keep the finished calls."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = CallTracker()
        self.calls: list = []

    def on_event(self, event) -> None:
        super().on_event(event)
        for effect in self.tracker.feed(event):
            if isinstance(effect, CallEnded):
                self.calls.append(effect.call)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("chunk", ["random", 7])
@pytest.mark.parametrize("name", list_traces())
def test_trace_over_tcp_in_any_chunking_gives_the_replay_calls(name, chunk):
    expected = [c.to_contract() for c in replay_trace(name)]
    listener = TrackerListener()

    async def scenario() -> None:
        async with AmiSimulator(
            traces=[name], speed=0, port=0, secret=SECRET, chunk_size=chunk, seed=11
        ) as sim:
            client = AmiClient(
                host="127.0.0.1",
                port=sim.port,
                username="callcenter",
                secret=SECRET,
                listener=listener,
                jitter=False,
            )
            await client.start()
            try:
                await sim.wait_done()
                await wait_until(
                    lambda: len(listener.calls) >= len(expected), 60, what=f"{name} calls"
                )
            finally:
                await client.stop()

    asyncio.run(scenario())
    got = sorted((c.to_contract() for c in listener.calls), key=lambda c: c["linkedid"])
    assert got == sorted(expected, key=lambda c: c["linkedid"])
