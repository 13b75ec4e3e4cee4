"""Real panoramisk ``Manager`` + our ``AmiProtocol`` over loopback TCP: every recorded message
arrives byte for byte, at any chunking; stock panoramisk does not.

The server writes each trace's verbatim ``.ami`` bytes in pieces of 1, 7, 4096 or random sizes,
one write per loop turn, so the client's reads break exactly there: inside header names, inside
the ``\\r\\n\\r\\n``, inside two-byte Cyrillic letters, and (at 4096) many events in one read.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager

from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import FrameParser, ParserStats
from callcenter.ami.protocol import AmiProtocol
from callcenter.ami.traces import TRACES_DIR, TraceRecord, list_traces, read_jsonl_records
from tests.replay.aio_helpers import ByteServer, split_stream, wait_until

pytestmark = pytest.mark.timeout(120)

#: Traces small enough to also send one byte per write (a 1-byte read each) in a few seconds;
#: tests/unit/test_parser.py covers random boundaries of every trace in memory.
ONE_BYTE_TRACES = [n for n in list_traces() if (TRACES_DIR / f"{n}.ami").stat().st_size < 110_000]


def records(name: str) -> list[TraceRecord]:
    return read_jsonl_records(TRACES_DIR / f"{name}.jsonl")


async def receive(pieces: list[bytes], *, until: int, stats: ParserStats) -> list[AmiEvent]:
    """Serve ``pieces`` to a real panoramisk Manager using our protocol; return what arrived."""
    got: list[AmiEvent] = []
    async with ByteServer(pieces) as server:
        manager = Manager(
            loop=asyncio.get_running_loop(),
            host="127.0.0.1",
            port=server.port,
            protocol_factory=functools.partial(AmiProtocol, sink=got.append, stats=stats),
            ping_delay=3600,
        )
        await manager.connect()
        try:
            await wait_until(lambda: len(got) >= until, 90, what=f"{until} messages")
            await server.sent_all.wait()
        finally:
            manager.close()
    return got


CASES = [(name, chunk) for name in list_traces() for chunk in (7, 4096, "random")] + [
    pytest.param(name, 1, marks=pytest.mark.slow) for name in ONE_BYTE_TRACES
]


@pytest.mark.parametrize(("name", "chunk"), CASES)
def test_every_message_arrives_byte_for_byte(name, chunk):
    expected = records(name)
    data = (TRACES_DIR / f"{name}.ami").read_bytes()
    stats = ParserStats()

    got = asyncio.run(receive(split_stream(data, chunk), until=len(expected), stats=stats))

    assert [m.raw for m in got] == [r.raw for r in expected]
    assert got[0].kind == "banner"
    assert stats.malformed == 0
    assert stats.messages == len(expected) - 1  # the banner is not a frame


def _expected_fields(raw: str) -> list[tuple[str, str]]:
    [event] = FrameParser(expect_banner=False).feed(raw.encode())
    return list(event.fields)


def test_stock_panoramisk_damages_burst():
    """The same check fails with panoramisk's own protocol: this test can fail."""

    async def body() -> list:
        got: list = []
        expected_events = [r for r in records("burst") if r.raw.startswith("Event:")]
        data = (TRACES_DIR / "burst.ami").read_bytes()
        async with ByteServer(split_stream(data, 7)) as server:
            manager = Manager(
                loop=asyncio.get_running_loop(),
                host="127.0.0.1",
                port=server.port,
                protocol_factory=AMIProtocol,
                ping_delay=3600,
            )
            manager.register_event("*", lambda _manager, message: got.append(message))
            await manager.connect()
            try:
                await wait_until(lambda: len(got) >= len(expected_events), 60, what="events")
            finally:
                manager.close()
        return list(zip(expected_events, got, strict=True))

    pairs = asyncio.run(body())
    lost_empty_last = 0
    damaged_values = 0
    for record, message in pairs:
        fields = _expected_fields(record.raw)
        key, value = fields[-1]
        if value == "" and key not in message:
            lost_empty_last += 1
        for k, v in fields:
            if k in message and isinstance(message[k], str) and message[k] != v:
                damaged_values += 1
    assert lost_empty_last == 518  # every message whose last header is empty
    assert damaged_values > 0  # Cyrillic letters split between two reads vanish


def test_malformed_frames_mid_stream_are_counted_and_the_rest_arrives(caplog):
    expected = records("answered")
    good = [r.raw.encode() for r in expected]
    bad = [
        b"Foo: a frame without Event or Response\r\n\r\n",
        b"Event: Broken\r\nthis header line has no colon\r\nUniqueid: 1.1\r\n\r\n",
        "Event: BadBytes\r\nCallerIDName: Ив".encode() + b"\xd0\r\n\r\n",
    ]
    stream = b"".join(good[:50] + bad + good[50:])
    stats = ParserStats()

    with caplog.at_level(logging.WARNING, logger="callcenter.ami.parser"):
        got = asyncio.run(receive(split_stream(stream, 7), until=len(expected) + 2, stats=stats))

    names = [m.name for m in got]
    assert names[50:52] == ["Broken", "BadBytes"]
    assert got[50].headers == {"Event": "Broken", "Uniqueid": "1.1"}
    assert got[51]["CallerIDName"] == "Ив\ufffd"
    assert [m.raw for m in got[:50] + got[52:]] == [r.raw for r in expected]
    assert stats.malformed == 3
    assert stats.errors_by_kind == {
        "no_event_or_response": 1,
        "bad_header_line": 1,
        "invalid_utf8": 1,
    }
    warnings = [r.getMessage() for r in caplog.records if "malformed AMI input" in r.getMessage()]
    assert len(warnings) == 3
