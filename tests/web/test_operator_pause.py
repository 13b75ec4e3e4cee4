"""Queue pause from the panel: the AMI command port, the simulator's QueuePause, the routes.

The state the operator sees comes back from Asterisk's QueueMemberPause (through the tracker),
never from the button: the command port only reports whether Asterisk accepted the action.
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.ami.client import AmiClient
from callcenter.ami.commands import (
    AmiRejected,
    AmiUnavailable,
    HueyCommands,
    LiveClientCommands,
    PauseCommand,
    build_queue_pause,
    send_once,
)
from callcenter.ami.events import AmiEvent
from callcenter.ami.simulator import AmiSimulator
from callcenter.calls.effects import OperatorStateChanged, OperatorStatus
from callcenter.calls.tracker import CallTracker
from callcenter.config import Settings
from callcenter.jobs import build_huey
from tests.web.conftest import csrf_of
from web.operator.live import OperatorStates, install_live_panel

SECRET = "pause-test-secret"


class TrackingRecorder:
    """An AMI listener feeding a real tracker; keeps events and the operators' states."""

    def __init__(self) -> None:
        self.tracker = CallTracker()
        self.events: list[AmiEvent] = []
        self.states: list[OperatorStateChanged] = []
        self.up = asyncio.Event()

    def on_event(self, event: AmiEvent) -> None:
        self.events.append(event)
        for effect in self.tracker.feed(event):
            if isinstance(effect, OperatorStateChanged):
                self.states.append(effect)

    def on_link_up(self, *, at: float) -> None:
        self.up.set()

    def on_link_down(self, *, at: float, reason: str) -> None:
        self.up.clear()

    def on_resync(self, *, channels, queue_entries, at: float) -> None:
        self.tracker.resync(channels=channels, queue_entries=queue_entries, at=at)


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def client_for(port: int, listener) -> AmiClient:
    return AmiClient(
        host="127.0.0.1",
        port=port,
        username="callcenter",
        secret=SECRET,
        listener=listener,
        backoff_initial=0.05,
        backoff_max=0.2,
        jitter=False,
    )


def test_pause_goes_through_the_live_client_and_the_state_comes_back_from_asterisk():
    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            recorder = TrackingRecorder()
            client = client_for(sim.port, recorder)
            await client.start()
            try:
                await asyncio.wait_for(recorder.up.wait(), 5)
                commands = LiveClientCommands(timeout=3)
                commands.bind(client)
                # The web thread blocks on the answer; the loop carries the action.
                await asyncio.to_thread(
                    commands.queue_pause, extension="102", paused=True, reason="Обед"
                )
                await wait_until(lambda: any(e.name == "QueueMemberPause" for e in recorder.events))
                [event] = [e for e in recorder.events if e.name == "QueueMemberPause"]
                assert event["Interface"] == "Local/102@agents/n"
                assert event["MemberName"] == "Петрова Мария"
                assert (event["Paused"], event["PausedReason"]) == ("1", "Обед")
                assert event["Queue"] == "reception"
                # Same fields, same order as the recorded QueueMemberStatus.
                assert [k for k, _ in event.fields][3:] == [
                    "Queue", "MemberName", "Interface", "StateInterface", "Membership",
                    "Penalty", "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall",
                    "Status", "Paused", "PausedReason", "Ringinuse", "Wrapuptime",
                ]  # fmt: skip
                assert recorder.states[-1].agent == "102"
                assert recorder.states[-1].status is OperatorStatus.PAUSED
                assert sim.pause_requests[-1]["Reason"] == "Обед"

                await asyncio.to_thread(commands.queue_pause, extension="102", paused=False)
                await wait_until(lambda: recorder.states[-1].status is not OperatorStatus.PAUSED)
                assert recorder.states[-1].status is OperatorStatus.FREE  # free in the snapshot

                # Asterisk refuses an interface that is no queue member: nothing changes.
                count = len(recorder.events)
                with pytest.raises(AmiRejected, match="Interface not found"):
                    await asyncio.to_thread(commands.queue_pause, extension="199", paused=True)
                await asyncio.sleep(0.1)
                assert not any(e.name == "QueueMemberPause" for e in recorder.events[count:])
            finally:
                await client.stop()

    asyncio.run(scenario())


def test_pause_refused_without_a_link():
    commands = LiveClientCommands(timeout=0.5)
    with pytest.raises(AmiUnavailable, match="Нет связи с АТС"):
        commands.queue_pause(extension="101", paused=True)

    async def scenario() -> None:
        recorder = TrackingRecorder()
        # Nobody listens there: the client keeps reconnecting, never logged in.
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            port = sim.port
        client = client_for(port, recorder)
        await client.start()
        try:
            commands.bind(client)
            with pytest.raises(AmiUnavailable, match="Нет связи с АТС"):
                await asyncio.to_thread(commands.queue_pause, extension="101", paused=True)
        finally:
            await client.stop()

    asyncio.run(scenario())


def test_pause_with_a_stalled_asterisk_reports_no_answer():
    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            recorder = TrackingRecorder()
            client = client_for(sim.port, recorder)
            await client.start()
            try:
                await asyncio.wait_for(recorder.up.wait(), 5)
                sim.stall()
                commands = LiveClientCommands(timeout=0.3)
                commands.bind(client)
                with pytest.raises(AmiUnavailable, match="не ответила"):
                    await asyncio.to_thread(commands.queue_pause, extension="101", paused=True)
                assert sim.pause_requests == []  # never carried out
            finally:
                sim.resume()  # so that the Logoff is answered
                await client.stop()

    asyncio.run(scenario())


def test_simulator_refuses_a_queue_pause_without_its_required_fields():
    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            settings = Settings(ami_port=sim.port, ami_secret=SECRET, demo=True)
            no_interface = {"Action": "QueuePause", "ActionID": "qp-x", "Paused": "true"}
            reply = await send_once(settings, no_interface)
            assert reply["Response"] == "Error"
            assert reply["Message"] == "Need 'Interface' parameter."
            no_paused = {"Action": "QueuePause", "ActionID": "qp-y", "Interface": "PJSIP/1"}
            reply = await send_once(settings, no_paused)
            assert reply["Message"] == "Need 'Paused' parameter."
            ok = build_queue_pause(
                interface="Local/102@agents/n", paused=True, action_id="qp-z", queue="reception"
            )
            reply = await send_once(settings, ok)
            assert (reply["Response"], reply["Message"]) == (
                "Success",
                "Interface paused successfully",
            )
            assert sim.queue_pauses == {("reception", "Local/102@agents/n"): (True, "")}

    asyncio.run(scenario())


def test_played_member_status_keeps_a_pause_asked_for():
    sim = AmiSimulator(port=0, secret=SECRET)
    sim.pause_member(interface="Local/101@agents/n", paused=True, queue=None, reason="Обед")
    raw = (
        "Event: QueueMemberStatus\r\nQueue: reception\r\nInterface: Local/101@agents/n\r\n"
        "Status: 1\r\nPaused: 0\r\nPausedReason: \r\nWrapuptime: 0\r\n\r\n"
    )
    out = sim.with_pause_state(raw)
    assert "\r\nPaused: 1\r\nPausedReason: Обед\r\n" in out
    other = raw.replace("101", "102")
    assert sim.with_pause_state(other) == other


def test_queue_status_after_a_pause_lists_the_member_paused():
    """A client that re-syncs (QueueStatus) after a pause sees it, as Asterisk would say."""

    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            settings = Settings(ami_port=sim.port, ami_secret=SECRET, demo=True)
            pause = build_queue_pause(
                interface="Local/103@agents/n", paused=True, action_id="qp-1", reason="Обед"
            )
            assert (await send_once(settings, pause))["Response"] == "Success"
            recorder = TrackingRecorder()
            items: list[AmiEvent] = []
            recorder.on_resync = lambda *, channels, queue_entries, at: items.extend(queue_entries)
            client = client_for(sim.port, recorder)
            await client.start()
            try:
                await wait_until(lambda: bool(items))
            finally:
                await client.stop()
            members = {e["Location"]: e for e in items if e.name == "QueueMember"}
            assert (
                members["Local/103@agents/n"]["Paused"],
                members["Local/103@agents/n"]["PausedReason"],
            ) == ("1", "Обед")
            assert members["Local/102@agents/n"]["Paused"] == "0"

    asyncio.run(scenario())


def test_huey_commands_run_by_a_worker_and_without_one(tmp_path):
    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            settings = Settings(
                database_url=f"sqlite:///{tmp_path / 'cc.db'}",
                ami_port=sim.port,
                ami_secret=SECRET,
                demo=True,
            )
            # immediate=True: Huey runs the job in the caller, as a worker would.
            worker = HueyCommands(huey=build_huey(settings, immediate=True), settings=settings)
            await asyncio.to_thread(worker.queue_pause, extension="103", paused=True)
            assert sim.queue_pauses[("reception", "Local/103@agents/n")] == (True, "")
            with pytest.raises(AmiRejected, match="Interface not found"):
                await asyncio.to_thread(worker.queue_pause, extension="555", paused=True)

            # Nobody consumes the queue: a clear refusal, and the job expires unrun.
            nobody = HueyCommands(huey=build_huey(settings), settings=settings, timeout=0.3)
            with pytest.raises(AmiUnavailable, match="callcenter worker"):
                await asyncio.to_thread(nobody.queue_pause, extension="101", paused=True)
            assert ("reception", "Local/101@agents/n") not in sim.queue_pauses

            # A worker that cannot reach Asterisk says so.
            down = settings.with_overrides(ami_port=1)
            unreachable = HueyCommands(huey=build_huey(down, immediate=True), settings=down)
            with pytest.raises(AmiUnavailable, match="Нет связи с АТС"):
                await asyncio.to_thread(unreachable.queue_pause, extension="101", paused=True)

    asyncio.run(scenario())


# -- the routes ------------------------------------------------------------------------------


class FakeCommands:
    """The command port as the routes see it; raises ``error`` when set."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.error: Exception | None = None

    def queue_pause(self, *, extension, paused, reason=None, queue=None) -> None:
        if self.error is not None:
            raise self.error
        self.calls.append({"extension": extension, "paused": paused, "reason": reason})


@pytest.fixture
def fake(app):
    commands = FakeCommands()
    live = install_live_panel(app, commands=commands)
    commands.states = live.states
    return commands


def _token(client) -> str:
    return csrf_of(client.get("/operator/").get_data(as_text=True))


def test_pause_route_sends_the_operators_own_extension(fake, operator_client):
    token = _token(operator_client)
    r = operator_client.post(
        "/operator/pause",
        data={"paused": "1", "reason": "lunch", "csrf_token": token, "extension": "102"},
    )
    assert r.status_code == 202, r.get_json()
    assert fake.calls == [{"extension": "101", "paused": True, "reason": "Обед"}]
    r = operator_client.post("/operator/pause", data={"paused": "0", "csrf_token": token})
    assert r.status_code == 202
    assert fake.calls[-1] == {"extension": "101", "paused": False, "reason": None}


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (AmiUnavailable("Нет связи с АТС: команда не отправлена."), 503, "Нет связи с АТС"),
        (AmiRejected("АТС отклонила команду QueuePause: Interface not found"), 502, "отклонила"),
    ],
)
def test_pause_route_failures_say_why_in_russian(fake, operator_client, error, status, text):
    fake.error = error
    r = operator_client.post(
        "/operator/pause",
        data={"paused": "1", "csrf_token": _token(operator_client)},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == status
    assert text in r.get_json()["message"]


def test_pause_route_refuses_bad_forms(fake, operator_client, supervisor_client):
    token = _token(operator_client)
    r = operator_client.post("/operator/pause", data={"paused": "yes", "csrf_token": token})
    assert r.status_code == 400
    assert "паузу" in r.get_json()["message"]
    r = operator_client.post(
        "/operator/pause", data={"paused": "1", "reason": "nap", "csrf_token": token}
    )
    assert r.status_code == 400
    assert r.get_json()["message"] == "Неизвестная причина паузы."
    r = operator_client.post(
        "/operator/pause", data={"paused": "1"}, headers={"Accept": "application/json"}
    )
    assert r.status_code == 400  # no CSRF token
    r = supervisor_client.post("/operator/pause", data={"paused": "1"})
    assert r.status_code in (400, 403)
    assert fake.calls == []


def test_panel_shows_the_state_asterisk_reported(fake, operator_client):
    page = operator_client.get("/operator/").get_data(as_text=True)
    assert 'data-status="unknown"' in page
    assert operator_client.get("/operator/state").get_json() == {"state": None}
    fake.states.operator_state(
        OperatorStateChanged("101", "Иванова Анна", OperatorStatus.PAUSED, 1795369350.0)
    )
    fake.states.operator_state(
        OperatorStateChanged("102", "Петрова Мария", OperatorStatus.ON_CALL, 1795369351.0)
    )
    page = operator_client.get("/operator/").get_data(as_text=True)
    assert 'data-status="paused"' in page
    assert ">Пауза</strong>" in page
    assert operator_client.get("/operator/state").get_json()["state"]["status"] == "paused"


def test_state_board_keeps_the_last_state_per_operator():
    states = OperatorStates()
    assert states.get("101") is None
    states.operator_state(OperatorStateChanged("101", None, OperatorStatus.RINGING, 1.0))
    states.operator_state(OperatorStateChanged("101", None, OperatorStatus.WRAP_UP, 2.0, 17.0))
    assert states.get("101") == {
        "agent": "101",
        "agent_name": None,
        "status": "wrap_up",
        "ts": 2.0,
        "until": 17.0,
    }


def test_web_alone_pauses_through_a_worker_consuming_the_queue(tmp_path):
    """``callcenter web`` enqueues; a consumer (as ``callcenter worker`` runs it, on its own
    Huey instance with ``register_command_tasks``) opens a short AMI link and sends it."""
    from callcenter.ami.commands import register_command_tasks
    from callcenter.consumers import EmbeddedConsumer

    async def scenario() -> None:
        async with AmiSimulator(port=0, secret=SECRET) as sim:
            settings = Settings(
                database_url=f"sqlite:///{tmp_path / 'cc.db'}",
                ami_port=sim.port,
                ami_secret=SECRET,
                demo=True,
            )
            worker_huey = build_huey(settings)
            register_command_tasks(worker_huey, settings)
            consumer = EmbeddedConsumer(worker_huey, workers=1, worker_type="thread")
            consumer.start()
            try:
                web = HueyCommands(huey=build_huey(settings), settings=settings)
                await asyncio.to_thread(web.queue_pause, extension="102", paused=True)
                assert sim.queue_pauses[("reception", "Local/102@agents/n")] == (True, "")
                assert sim.stats.logins == 1  # one short link, logged off again
                await wait_until(lambda: not sim.live_sessions)
            finally:
                await asyncio.to_thread(consumer.stop, graceful=True)

    asyncio.run(scenario())


def test_pause_names_the_member_as_the_configured_queue_does(web_db_url, factory):
    """QUEUE_MEMBER_INTERFACE: a PJSIP queue's members are paused by their PJSIP name."""
    from web import create_app, notifier_for

    app = create_app(
        Settings(database_url=web_db_url, demo=True, queue_member_interface="PJSIP/{extension}"),
        session_factory=factory,
        testing=True,
    )
    try:
        live = install_live_panel(app)
        assert live.commands.interface_template == "PJSIP/{extension}"
        action = PauseCommand(extension="101", paused=True).action(
            interface_template=live.commands.interface_template
        )
        assert action["Interface"] == "PJSIP/101"
    finally:
        notifier_for(app).close()
