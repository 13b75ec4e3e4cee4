"""AmiClient against the simulator over loopback: login, re-sync, events, Originate, and the
failure modes (rejected login, drop mid-frame, Shutdown, stall) each ending in a reconnect."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callcenter.ami.client import (
    FORGETABLE_ACTIONS,
    AmiClient,
    AmiNoReply,
    AmiNotConnected,
    backoff_delay,
)
from callcenter.ami.events import AmiEvent
from callcenter.ami.simulator import AmiSimulator, OriginateRequest
from tests.replay.aio_helpers import RecordingListener, wait_until
from tests.replay.test_simulator import playable

pytestmark = pytest.mark.timeout(60)

SECRET = "client-test-secret"


def make_client(port: int, listener: RecordingListener, **overrides) -> AmiClient:
    options = dict(
        host="127.0.0.1",
        port=port,
        username="callcenter",
        secret=SECRET,
        listener=listener,
        # Relaxed unless a test is about the watchdog: a busy test machine must not trip it.
        ping_interval=1.0,
        ping_timeout=2.0,
        backoff_initial=0.02,
        backoff_max=0.2,
        connect_timeout=2.0,
        action_timeout=2.0,
        jitter=False,
    )
    options.update(overrides)
    return AmiClient(**options)


@asynccontextmanager
async def running(sim_options: dict | None = None, **client_options) -> AsyncIterator[tuple]:
    listener = RecordingListener()
    async with AmiSimulator(port=0, secret=SECRET, speed=0, **(sim_options or {})) as sim:
        client = make_client(sim.port, listener, **client_options)
        await client.start()
        try:
            yield sim, client, listener
        finally:
            await client.stop()


def own_events(listener: RecordingListener) -> list[AmiEvent]:
    """Events of the played trace: without FullyBooted and our own re-sync list items."""
    return [
        e
        for e in listener.events
        if e.name != "FullyBooted" and not (e.action_id or "").startswith(("core", "queue"))
    ]


def test_logs_in_reports_link_up_then_resyncs_in_order():
    async def body() -> RecordingListener:
        async with running() as (sim, client, listener):
            await wait_until(lambda: listener.resyncs, what="re-sync")
            assert client.logged_in and client.connected
            assert sim.stats.actions["login"] == 1
        return listener

    listener = asyncio.run(body())
    assert listener.log[:2] == ["up", "event:FullyBooted"]
    channels, queue, _at = listener.resyncs[0]
    assert [e.name for e in channels] == ["CoreShowChannel"] * 8
    assert [e.name for e in queue] == ["QueueParams"] + ["QueueMember"] * 3 + ["QueueEntry"] * 2
    [channels_id] = {e.action_id for e in channels}
    [queue_id] = {e.action_id for e in queue}
    assert channels_id.startswith("coreshowchannels-") and channels_id != "coreshowchannels-5"
    assert queue_id.startswith("queuestatus-") and queue_id != "queuestatus-3"
    assert channels[0]["Linkedid"] == "1795369604.82"
    # on_resync comes right after the last *Complete, before anything later.
    resync_at = listener.log.index("resync")
    assert listener.log[resync_at - 1].endswith("Complete")
    assert listener.log[-1] == "down"
    assert listener.downs[-1][1] == "stopped"


def test_every_event_of_a_fast_trace_reaches_the_listener_verbatim():
    expected = playable("burst")

    async def body() -> list[str]:
        async with running({"traces": ["burst"]}) as (sim, client, listener):
            await wait_until(lambda: len(own_events(listener)) >= len(expected), 30)
            assert client.stats.malformed == 0
            assert client.stats.events == len(listener.events)
            return [e.raw for e in own_events(listener)]

    assert asyncio.run(body()) == expected


def test_rejected_login_is_retried_with_growing_delays_without_crashing(caplog):
    async def body() -> tuple[list[float], RecordingListener, AmiClient]:
        async with running({"reject_logins": True}, backoff_initial=0.1, backoff_max=0.8) as (
            sim,
            client,
            listener,
        ):
            await wait_until(lambda: sim.stats.login_failures >= 5, 20)
            attempts = list(sim.stats.login_attempts)
            assert not client.logged_in and not listener.ups
            sim.reject_logins = False
            await wait_until(lambda: client.logged_in, 5)
            return attempts, listener, client

    with caplog.at_level(logging.ERROR, logger="callcenter.ami.client"):
        attempts, listener, client = asyncio.run(body())
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    # Waits 0.1, 0.2, 0.4, 0.8 (the cap), plus a connect and a Login each time.
    for gap, wait in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=False):
        assert gap >= wait * 0.99
    assert gaps[0] < gaps[1] < gaps[2] < gaps[3] < 0.8 + 1.0
    assert client.stats.login_failures >= 5
    assert listener.ups and listener.downs == [(listener.downs[0][0], "stopped")]
    rejected = [r for r in caplog.records if "rejected: Authentication failed" in r.getMessage()]
    assert len(rejected) >= 5 and all(r.levelno == logging.ERROR for r in rejected)


def test_unreachable_asterisk_is_retried():
    async def body() -> AmiClient:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: nothing listens there
        client = make_client(port, RecordingListener())
        await client.start()
        try:
            await wait_until(lambda: client.stats.reconnects >= 3, 10)
            assert not client.connected
        finally:
            await client.stop()
        return client

    stats = asyncio.run(body()).stats
    assert stats.connects == 0 and "cannot connect" in (stats.last_error or "")


@pytest.mark.parametrize(
    ("failure", "reason", "client_options"),
    [
        ("drop_mid_frame", "connection closed by Asterisk", {}),
        ("send_shutdown", "Asterisk sent Shutdown (Shutdown: Cleanly, Restart: True)", {}),
        ("stall", "no reply to Ping within 0.3s", {"ping_interval": 0.1, "ping_timeout": 0.3}),
    ],
)
def test_link_failure_is_reported_and_the_client_reconnects_and_resyncs(
    failure, reason, client_options
):
    async def body() -> tuple[AmiSimulator, AmiClient, RecordingListener]:
        async with running({"traces": ["answered"]}, **client_options) as (sim, client, listener):
            await wait_until(lambda: listener.resyncs, what="first re-sync")
            getattr(sim, failure)()
            await wait_until(lambda: len(listener.resyncs) == 2, 10, what="second re-sync")
            return sim, client, listener

    sim, client, listener = asyncio.run(body())
    assert listener.log.count("up") == 2
    assert listener.downs[0][1] == reason
    assert listener.log.index("down") < listener.log.index("up", 1)
    assert sim.stats.logins == 2 and client.stats.logins == 2
    assert client.stats.reconnects == 1 and client.stats.link_downs == 2  # + the final stop
    if failure == "drop_mid_frame":
        assert client.stats.malformed == 1  # the truncated frame, counted and logged
    if failure == "send_shutdown":
        assert "event:Shutdown" in listener.log


def outcome_by_number(request: OriginateRequest) -> str:
    return {"79990000003": "no_answer", "79990000005": "busy"}.get(
        request.patient_number, "answered"
    )


def test_originate_returns_the_first_response_and_the_outcome_reaches_the_listener():
    async def body() -> tuple[list[AmiEvent], RecordingListener]:
        async with running({"outcome_rule": outcome_by_number}) as (sim, client, listener):
            await wait_until(lambda: client.logged_in)
            replies = []
            for number, style in (
                ("79990000004", "patient_first"),
                ("79990000003", "patient_first"),
                ("79990000005", "patient_first"),
                ("79990000006", "operator_first"),
            ):
                replies.append(
                    await client.originate(
                        style=style,
                        extension="103",
                        patient_number=number,
                        task_id=f"task-{number[-1]}",
                        caller_id='"Клиника" <74951234500>',
                        timeout_s=20,
                    )
                )
            await wait_until(lambda: len(listener.named("OriginateResponse")) == 4)
            return replies, listener

    replies, listener = asyncio.run(body())
    assert [(r.name, r["Message"]) for r in replies] == [
        ("Success", "Originate successfully queued")
    ] * 4
    ids = [r.action_id for r in replies]
    assert all(i and i.startswith("cb-task-") for i in ids) and len(set(ids)) == 4
    outcomes = {e.action_id: e for e in listener.named("OriginateResponse")}
    assert [outcomes[i]["Reason"] for i in ids] == ["4", "3", "5", "4"]
    assert outcomes[ids[3]]["Channel"].startswith("Local/103@operator-")
    variables = [e for e in listener.named("VarSet") if e["Variable"] == "CALLBACK_TASK"]
    assert {e["Value"] for e in variables} == {"task-4", "task-3", "task-5", "task-6"}


def test_originate_is_never_resent_after_a_reconnect():
    assert "originate" in FORGETABLE_ACTIONS

    async def body() -> AmiSimulator:
        async with running(action_timeout=5.0, ping_interval=0.1, ping_timeout=0.3) as (
            sim,
            client,
            listener,
        ):
            await wait_until(lambda: listener.resyncs)
            sim.stall()  # the Originate reaches the server but is never answered
            with pytest.raises(AmiNoReply, match="link lost before the reply"):
                await client.originate(
                    style="patient_first",
                    extension="101",
                    patient_number="79990000001",
                    task_id="77",
                )
            await wait_until(lambda: len(listener.resyncs) == 2, 10, what="new link")
            # Everything sent on the new link before this Ping has reached the server.
            pong = await client.send_action({"Action": "Ping"})
            assert pong["Ping"] == "Pong"
            return sim

    sim = asyncio.run(body())
    assert sim.stats.actions["originate"] == 1
    assert sim.stats.logins == 2


def test_originate_without_a_link_raises_and_sends_nothing():
    async def body() -> None:
        client = make_client(1, RecordingListener())
        with pytest.raises(AmiNotConnected):
            await client.originate(
                style="patient_first", extension="101", patient_number="7999", task_id="1"
            )
        with pytest.raises(ValueError, match="task_id"):
            await client.originate(
                style="patient_first", extension="101", patient_number="7999", task_id="1,2"
            )

    asyncio.run(body())


def test_stop_logs_off_and_closes_everything():
    async def body() -> tuple[AmiSimulator, AmiClient]:
        async with running({"traces": ["answered"], "loop_forever": True}) as (
            sim,
            client,
            listener,
        ):
            await wait_until(lambda: listener.resyncs)
            await client.stop()
            assert not client.connected and not client.logged_in
            await wait_until(lambda: not sim.live_sessions, what="server side closed")
            events = len(listener.events)
            await client.stop()  # idempotent
            assert len(listener.events) == events
            return sim, client

    sim, client = asyncio.run(body())
    assert sim.stats.actions["logoff"] == 1
    assert client.stats.last_error is None


def test_a_listener_bug_stops_the_client_loudly(caplog):
    class Broken(RecordingListener):
        def on_event(self, event: AmiEvent) -> None:
            super().on_event(event)
            if event.name == "Newchannel":
                raise RuntimeError("tracker bug")

    async def body() -> Broken:
        listener = Broken()
        async with AmiSimulator(port=0, secret=SECRET, speed=0, traces=["answered"]) as sim:
            client = make_client(sim.port, listener)
            await client.start()
            try:
                with pytest.raises(RuntimeError, match="tracker bug"):
                    await asyncio.wait_for(client.wait_stopped(), 5)
                assert not client.connected
            finally:
                await client.stop()
        return listener

    with caplog.at_level(logging.ERROR, logger="callcenter.ami.client"):
        listener = asyncio.run(body())
    assert listener.named("Newchannel") and len(listener.named("Newchannel")) == 1
    assert any("listener on_event failed" in r.getMessage() for r in caplog.records)


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half():
    delays = [backoff_delay(n, initial=0.5, maximum=30, rand=None) for n in range(8)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(10_000, initial=0.5, maximum=30, rand=None) == 30
    for r in (0.0, 0.5, 0.999):
        assert 15 <= backoff_delay(6, initial=0.5, maximum=30, rand=r) < 30
