"""Re-sync ordering: events after Asterisk's snapshot reach the tracker after the snapshot."""

from __future__ import annotations

import asyncio
import io
import threading

from callcenter.ami.client import _ResyncCollector
from callcenter.ami.events import AmiEvent
from callcenter.notify import ConsoleNotifier, TaskNotice


def msg(**headers: str) -> AmiEvent:
    return AmiEvent.from_fields(list(headers.items()), 0.0)


def test_events_after_the_channel_snapshot_are_held_until_the_resync_is_complete():
    """A call that begins after the snapshot must not be 'lost' by the re-sync."""

    async def scenario() -> None:
        c = _ResyncCollector(
            channels_id="c-1", queue_id="q-1", done=asyncio.get_running_loop().create_future()
        )
        before = msg(Event="Newchannel", Uniqueid="1.1", Linkedid="1.1")
        assert not c.hold(before)  # before Asterisk answered: older than the snapshot
        assert not c.feed(msg(Response="Success", ActionID="c-1", EventList="start"))
        after = msg(Event="Newchannel", Uniqueid="1.2", Linkedid="1.2")
        assert c.hold(after)
        item = msg(Event="CoreShowChannel", ActionID="c-1", Uniqueid="1.1", Linkedid="1.1")
        assert not c.hold(item)  # the snapshot's own items are collected, not held
        assert not c.feed(item)
        assert not c.feed(msg(Event="CoreShowChannelsComplete", ActionID="c-1"))
        assert not c.feed(msg(Response="Success", ActionID="q-1"))
        assert c.feed(msg(Event="QueueStatusComplete", ActionID="q-1"))
        assert c.held == [after]
        assert c.items["c-1"] == [item]

    asyncio.run(scenario())


def test_console_lines_from_two_threads_never_interleave():
    """Calls print from the event loop, tasks from the store writer: each line stays whole."""
    out = io.StringIO()
    console = ConsoleNotifier(out)

    def tasks() -> None:
        for n in range(500):
            console.task_changed(TaskNotice(n, "+79990000000", "missed_call", "opened", None))

    thread = threading.Thread(target=tasks)
    thread.start()
    for _ in range(500):
        console.link_state(up=True, at=0.0, reason=None)
    thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1000
    assert all(line == "AMI    link up" or line.endswith("(missed_call)") for line in lines)
