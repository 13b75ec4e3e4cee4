"""The AMI simulator, driven by a real panoramisk ``Manager`` (with our protocol) over loopback."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from panoramisk.manager import Manager

from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import ParserStats
from callcenter.ami.protocol import AmiMessage, AmiProtocol
from callcenter.ami.simulator import (
    AmiSimulator,
    OriginateRequest,
    build_parser,
    is_id_header,
    main,
)
from callcenter.ami.traces import TRACES_DIR, read_jsonl_records
from tests.replay.aio_helpers import wait_until

pytestmark = pytest.mark.timeout(60)

SECRET = "test-secret"


class Client:
    """A panoramisk Manager using AmiProtocol; every message it receives is kept."""

    def __init__(self, manager: Manager, messages: list[AmiEvent], stats: ParserStats) -> None:
        self.manager = manager
        self.messages = messages
        self.stats = stats

    @property
    def events(self) -> list[AmiEvent]:
        return [m for m in self.messages if m.kind == "event"]

    async def action(self, action: dict, **kw) -> AmiMessage:
        return await asyncio.wait_for(self.manager.send_action(action, **kw), 5)


@asynccontextmanager
async def manager_client(
    sim: AmiSimulator, *, secret: str = SECRET, login: bool = True
) -> AsyncIterator[Client]:
    messages: list[AmiEvent] = []
    stats = ParserStats()
    manager = Manager(
        loop=asyncio.get_running_loop(),
        host="127.0.0.1",
        port=sim.port,
        username="callcenter",
        secret=secret,
        protocol_factory=functools.partial(AmiProtocol, sink=messages.append, stats=stats),
        ping_delay=3600,
        reconnect_timeout=3600,  # no automatic reconnect inside a test
    )
    await manager.connect()
    client = Client(manager, messages, stats)
    try:
        if login:
            reply = await asyncio.wait_for(manager.authenticated_future, 5)
            assert reply.success, reply
        yield client
    finally:
        manager.close()


def playable(name: str) -> list[str]:
    """The events of a recorded trace a client should get: minus the lab's own replies."""
    recs = read_jsonl_records(TRACES_DIR / f"{name}.jsonl")
    sent = read_jsonl_records(TRACES_DIR / f"{name}.sent.jsonl")
    lab_ids = {m.group(1) for r in sent if (m := re.search(r"ActionID: ([^\r]+)", r.raw))}
    out = []
    for r in recs[1:]:
        m = re.search(r"\r\nActionID: ([^\r]+)\r\n", r.raw)
        if r.raw.startswith("Response:"):
            continue
        if m and m.group(1) in lab_ids and not r.raw.startswith("Event: OriginateResponse"):
            continue
        if not out and r.raw.startswith(("Event: FullyBooted", "Event: SuccessfulAuth")):
            continue
        out.append(r.raw)
    return out


def test_login_ping_logoff():
    async def body() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                login = client.messages[1]
                assert (login.name, login["Message"]) == ("Success", "Authentication accepted")
                assert client.messages[0].raw == "Asterisk Call Manager/11.0.0\r\n"
                await wait_until(lambda: client.events, what="FullyBooted")
                assert client.events[0].name == "FullyBooted"

                pong = await client.action({"Action": "Ping", "ActionID": "my-ping-1"})
                assert (pong.response, pong.ping, pong.actionid) == ("Success", "Pong", "my-ping-1")
                assert float(pong.timestamp) == pytest.approx(time.time(), abs=60)

                bye = await client.action({"Action": "Logoff"})
                assert bye.response == "Goodbye"
                await wait_until(lambda: not sim.live_sessions, what="session closed")
            assert sim.stats.logins == 1
            assert sim.stats.actions == {"login": 1, "ping": 1, "logoff": 1}

    asyncio.run(body())


def test_login_rejected_with_a_wrong_secret_or_when_switched_to_reject():
    async def body() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            async with manager_client(sim, secret="wrong", login=False) as client:
                reply = await asyncio.wait_for(client.manager.authenticated_future, 5)
                assert (reply.response, reply.message) == ("Error", "Authentication failed")
                await wait_until(lambda: not sim.live_sessions, what="Asterisk hangs up")

            sim.reject_logins = True
            async with manager_client(sim, login=False) as client:
                reply = await asyncio.wait_for(client.manager.authenticated_future, 5)
                assert reply.response == "Error"

            sim.reject_logins = False
            async with manager_client(sim) as client:
                pass
            assert (sim.stats.login_failures, sim.stats.logins) == (2, 1)
            assert len(sim.stats.login_attempts) == 3

    asyncio.run(body())


def test_actions_before_login_are_refused():
    async def body() -> bytes:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
            try:
                await reader.readuntil(b"\r\n")  # banner
                writer.write(b"Action: QueueStatus\r\nActionID: early-1\r\n\r\n")
                return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            finally:
                writer.close()
                await writer.wait_closed()

    reply = asyncio.run(body())
    assert reply == b"Response: Error\r\nActionID: early-1\r\nMessage: Permission denied\r\n\r\n"


@pytest.mark.parametrize(
    ("name", "chunk"), [("answered", None), ("burst", None), ("burst", "random"), ("busy", 1)]
)
def test_plays_a_trace_fast_and_every_event_arrives_verbatim(name, chunk):
    expected = playable(name)

    async def body() -> list[str]:
        async with AmiSimulator(
            traces=[name], speed=0, port=0, secret=SECRET, chunk_size=chunk, seed=3
        ) as sim:
            async with manager_client(sim) as client:
                await wait_until(lambda: len(client.events) >= len(expected) + 1, 30)
                await sim.wait_done()
                assert client.stats.malformed == 0
                assert sim.stats.plays_completed == 1
                assert sim.stats.events_sent == len(expected) + 1  # + FullyBooted
            return [e.raw for e in client.events]

    got = asyncio.run(body())
    assert got[0].startswith("Event: FullyBooted")
    assert got[1:] == expected


def test_speed_scales_the_recorded_gaps():
    # direct_noanswer spans 10.0 s of recorded time.
    async def body() -> float:
        async with AmiSimulator(traces=["direct_noanswer"], speed=20, port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                await wait_until(lambda: len(client.events) >= 2, what="first event")
                start = time.monotonic()
                await asyncio.wait_for(sim.wait_done(), 10)
                return time.monotonic() - start

    elapsed = asyncio.run(body())
    assert 0.4 <= elapsed < 3.0


def _by_play(events: list[AmiEvent], per_play: int, plays: int) -> list[list[AmiEvent]]:
    assert len(events) == per_play * plays
    return [events[i * per_play : (i + 1) * per_play] for i in range(plays)]


@pytest.mark.parametrize("name", ["answered", "transfer"])
def test_each_loop_play_is_new_calls(name):
    expected = playable(name)
    n = len(expected)

    async def body() -> list[AmiEvent]:
        async with AmiSimulator(
            traces=[name], speed=0, plays=3, loop_gap_s=0, port=0, secret=SECRET
        ) as sim:
            async with manager_client(sim) as client:
                await wait_until(lambda: len(client.events) >= 1 + 3 * n, 30)
                await sim.wait_done()
                return client.events[1:]

    first, *later = _by_play(asyncio.run(body()), n, 3)
    assert [e.raw for e in first] == expected  # the first play is verbatim

    def ids(play: list[AmiEvent]) -> list[str]:
        return [v for e in play for k, v in e.fields if is_id_header(k) and "." in v]

    recorded_ids = set(ids(first))
    seen = set(recorded_ids)
    for play in later:
        assert [e.name for e in play] == [e.name for e in first]
        new_ids = ids(play)
        assert not set(new_ids) & seen, "a Uniqueid/Linkedid repeats across plays"
        seen |= set(new_ids)
        # Renumbering is consistent: the same recorded id always becomes the same new id.
        mapping = dict(zip(ids(first), new_ids, strict=True))
        assert len(set(mapping.values())) == len(mapping)
        assert {e["Linkedid"] for e in play if "Linkedid" in e.headers} != {
            e["Linkedid"] for e in first if "Linkedid" in e.headers
        }
        # Timestamps moved to now; channel names renumbered; file names follow the ids.
        stamps = [float(e["Timestamp"]) for e in play if "Timestamp" in e.headers]
        assert stamps[0] == pytest.approx(time.time(), abs=120)
        channels = {e["Channel"] for e in play if "Channel" in e.headers}
        assert not channels & {e["Channel"] for e in first if "Channel" in e.headers}
        bridges = [e["BridgeUniqueid"] for e in play if "BridgeUniqueid" in e.headers]
        first_bridges = {e["BridgeUniqueid"] for e in first if "BridgeUniqueid" in e.headers}
        assert len(set(bridges)) == len(first_bridges) and not set(bridges) & first_bridges
        files = [e["Value"] for e in play if e.get("Variable") == "MIXMONITOR_FILENAME"]
        assert files and all(any(i in f for i in new_ids) for f in files)


def test_loop_forever_keeps_playing():
    async def body() -> None:
        async with AmiSimulator(
            traces=["busy"], speed=0, loop_forever=True, loop_gap_s=0, port=0, secret=SECRET
        ) as sim:
            async with manager_client(sim) as client:
                await wait_until(lambda: sim.stats.plays_completed >= 4, 20)
                await wait_until(lambda: len(client.events) > 4 * len(playable("busy")))

    asyncio.run(body())


def test_queue_status_and_core_show_channels_are_answered_from_the_snapshot():
    async def body() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                queue = await client.action({"Action": "QueueStatus", "ActionID": "qs-77"})
                channels = await client.action({"Action": "CoreShowChannels", "ActionID": "c-8"})
        assert [m.event or m.response for m in queue] == [
            "Success",
            "QueueParams",
            "QueueMember",
            "QueueMember",
            "QueueMember",
            "QueueEntry",
            "QueueEntry",
            "QueueStatusComplete",
        ]
        assert {m.actionid for m in queue} == {"qs-77"}
        assert [m.event for m in channels[1:]] == ["CoreShowChannel"] * 8 + [
            "CoreShowChannelsComplete"
        ]
        assert {m.actionid for m in channels} == {"c-8"}
        assert queue[2].ami_event.raw.count("Сидорова Елена") == 1

    asyncio.run(body())


def test_status_replies_follow_the_calls_being_played():
    # queue_timeout: the caller joins the queue after ~4.3 s and waits 20 s (×10 here).
    async def body() -> None:
        async with AmiSimulator(traces=["queue_timeout"], speed=10, port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                await wait_until(lambda: any(e.name == "QueueCallerJoin" for e in client.events))
                join = next(e for e in client.events if e.name == "QueueCallerJoin")

                queue = await client.action({"Action": "QueueStatus", "ActionID": "q1"})
                entries = [m for m in queue if m.event == "QueueEntry"]
                assert [(m.uniqueid, m.position, m.actionid) for m in entries] == [
                    (join["Uniqueid"], "1", "q1")
                ]
                assert entries[0]["CallerIDNum"] == join["CallerIDNum"]
                [params] = [m for m in queue if m.event == "QueueParams"]
                assert params.calls == "1"
                assert queue[-1].listitems == str(len(queue) - 2)

                channels = await client.action({"Action": "CoreShowChannels", "ActionID": "c1"})
                rows = {m.uniqueid: m for m in channels if m.event == "CoreShowChannel"}
                caller = rows[join["Uniqueid"]]
                assert (caller.channel, caller.linkedid) == (join["Channel"], join["Linkedid"])
                assert caller.application == "Queue"
                assert channels[-1].listitems == str(len(rows))

                await asyncio.wait_for(sim.wait_done(), 10)
                await wait_until(lambda: client.events[-1].name != "QueueCallerJoin")
                channels = await client.action({"Action": "CoreShowChannels"})
                assert [m.event for m in channels[1:]] == ["CoreShowChannelsComplete"]
                queue = await client.action({"Action": "QueueStatus"})
                assert not [m for m in queue if m.event == "QueueEntry"]

    asyncio.run(body())


def test_unknown_action_gets_an_error():
    async def body() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                reply = await client.action({"Action": "DBGet", "Family": "x", "Key": "y"})
                assert (reply.response, reply.message) == ("Error", "Invalid/unknown command")

    asyncio.run(body())


def originate(number: str, task: str, action_id: str) -> dict[str, str]:
    return {
        "Action": "Originate",
        "ActionID": action_id,
        "Channel": f"Local/{number}@pstn/n",
        "Context": "callback",
        "Exten": "102",
        "Priority": "1",
        "CallerID": '"Клиника" <74951234500>',
        "Timeout": "20000",
        "Variable": f"PATIENT={number},CALLBACK_TASK={task}",
        "Async": "true",
    }


RULE_NUMBERS = {"79990000003": "no_answer", "79990000005": "busy"}


def outcome_by_number(request: OriginateRequest) -> str:
    return RULE_NUMBERS.get(request.patient_number, "answered")


def test_originate_plays_the_outcome_the_rule_picks_with_our_ids():
    calls = [("79990000004", "T-4", "cb-a"), ("79990000003", "T-3", "cb-b")]
    calls.append(("79990000005", "T-5", "cb-c"))

    async def body() -> tuple[list, list[AmiEvent], AmiSimulator]:
        async with AmiSimulator(
            port=0, secret=SECRET, speed=0, outcome_rule=outcome_by_number
        ) as sim:
            async with manager_client(sim) as client:
                replies = [
                    await client.action(originate(n, t, a), as_list=False) for n, t, a in calls
                ]
                await wait_until(
                    lambda: sum(e.name == "OriginateResponse" for e in client.events) == 3
                )
                return replies, client.events, sim

    replies, events, sim = asyncio.run(body())
    assert [(r.response, r.message, r.actionid) for r in replies] == [
        ("Success", "Originate successfully queued", a) for _, _, a in calls
    ]
    results = {e.action_id: e for e in events if e.name == "OriginateResponse"}
    assert {a: results[a]["Reason"] for _, _, a in calls} == {"cb-a": "4", "cb-b": "3", "cb-c": "5"}
    assert results["cb-a"]["Exten"] == "102"
    assert results["cb-b"]["Channel"] == "Local/79990000003@pstn/n"
    tasks = [e["Value"] for e in events if e.get("Variable") == "CALLBACK_TASK"]
    assert set(tasks) == {"T-4", "T-3", "T-5"}
    text = "".join(e.raw for e in events)
    for lab_value in ("79031234567", "79265550102", "cb-1002", "Value: 1102", "Local/101@"):
        assert lab_value not in text
    assert "Local/102@agents-" in text  # the answered call reached our extension
    uniqueids = [e["Uniqueid"] for e in events if e.name == "Newchannel"]
    assert len(uniqueids) == len(set(uniqueids))
    assert [r.patient_number for r in sim.originate_requests] == [n for n, _, _ in calls]


def test_failure_modes_drop_mid_frame_shutdown_and_stall():
    async def body() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            async with manager_client(sim) as client:
                sim.drop_mid_frame()
                await wait_until(lambda: client.manager.protocol.closed, what="drop")
                assert client.stats.errors_by_kind == {"truncated_frame": 1}

            async with manager_client(sim) as client:
                sim.send_shutdown()
                await wait_until(lambda: client.manager.protocol.closed, what="shutdown")
                assert client.events[-1].name == "Shutdown"
                assert client.events[-1]["Restart"] == "True"

            async with manager_client(sim) as client:
                session = await sim.wait_for_client(logins=3)
                session.stall()
                ping = client.manager.send_action({"Action": "Ping"})
                await asyncio.sleep(0.3)  # a stalled server must stay silent this long
                assert not ping.done()
                session.resume()
                pong = await client.action({"Action": "Ping"})
                assert pong.ping == "Pong"
                assert not ping.done()  # the Ping sent while stalled is never answered

    asyncio.run(body())


def test_command_line_options():
    args = build_parser().parse_args(
        ["--port", "0", "--speed", "0", "--loop", "--trace", "busy", "burst", "--chunk", "7"]
    )
    assert (args.port, args.speed, args.loop, args.trace, args.chunk) == (
        0,
        0.0,
        True,
        ["busy", "burst"],
        7,
    )
    assert build_parser().parse_args(["--chunk", "random"]).chunk == "random"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--chunk", "0"])


def test_command_line_reports_an_unknown_trace(capsys):
    assert main(["--port", "0", "--trace", "no-such-trace"]) == 2
    assert "no such trace: no-such-trace" in capsys.readouterr().out
