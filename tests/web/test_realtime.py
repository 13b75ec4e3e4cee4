"""Screen pops over Socket.IO: the right rooms only, ring-all withdrawal, sync after reload."""

from __future__ import annotations

import pytest

from callcenter.calls.effects import AgentRinging, AgentStoppedRinging, CallAnswered
from callcenter.calls.model import Disposition
from callcenter.notify import TaskNotice
from tests.web.conftest import login, socket_for
from web import notifier_for


def ring(agent: str, *, linkedid: str = "1795369641.7", queue: str | None = None, name=None):
    return AgentRinging(linkedid, agent, None, "89039556279", name, queue, 1795369641.0)


def events(sio, namespace="/operator"):
    return [(e["name"], e["args"][0]) for e in sio.get_received(namespace)]


@pytest.fixture
def sockets(app):
    """Logged-in Socket.IO clients: operators 101 and 102, and a supervisor."""
    clients = {}
    for name, key, ns in [
        ("anna", "101", "/operator"),
        ("boris", "102", "/operator"),
        ("vera", "sup", "/supervisor"),
    ]:
        http = app.test_client()
        login(http, name)
        sio = socket_for(app, http, ns)
        assert sio.is_connected(ns)
        sio.get_received(ns)
        clients[key] = sio
    yield clients
    for key, sio in clients.items():
        sio.disconnect("/supervisor" if key == "sup" else "/operator")


def test_direct_line_ringing_101_never_reaches_102(app, sockets):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101", name="Иванова"))
    assert notifier.flush()
    got_101 = events(sockets["101"])
    assert [name for name, _ in got_101] == ["pop"]
    pop = got_101[0][1]
    assert pop["state"] == "ringing"
    assert pop["caller_name"] == "Иванова"
    assert pop["card"]["phone"] == "+79039556279"
    assert pop["card"]["known"] is False
    assert pop["script"]["lines"]  # the playbook's script for an unknown caller
    assert events(sockets["102"]) == []
    assert [name for name, _ in events(sockets["sup"], "/supervisor")] == ["call_ringing"]


def test_ring_all_card_is_withdrawn_from_the_others_when_one_answers(app, sockets):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101", queue="reception"))
    notifier.call_ringing(ring("102", queue="reception"))
    notifier.call_answered(CallAnswered("1795369641.7", "101", None, 1795369650.0))
    notifier.agent_stopped_ringing(
        AgentStoppedRinging("1795369641.7", "102", "cancelled", 1795369650.0)
    )
    assert notifier.flush()
    got_101 = events(sockets["101"])
    assert [(n, p["state"]) for n, p in got_101] == [("pop", "ringing"), ("pop", "live")]
    got_102 = events(sockets["102"])
    assert [n for n, _ in got_102] == ["pop", "pop_withdrawn"]
    assert got_102[1][1] == {"linkedid": "1795369641.7", "reason": "answered_elsewhere"}


def test_a_reloaded_panel_gets_its_live_pops_back(app, sockets):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101"))
    notifier.call_answered(CallAnswered("1795369641.7", "101", None, 1795369650.0))
    assert notifier.flush()
    reply_101 = sockets["101"].emit("sync", {}, namespace="/operator", callback=True)
    assert [(p["linkedid"], p["state"]) for p in reply_101["pops"]] == [("1795369641.7", "live")]
    reply_102 = sockets["102"].emit("sync", {}, namespace="/operator", callback=True)
    assert reply_102["pops"] == []


def test_call_end_keeps_the_card_for_the_outcome_and_tells_supervisors(app, sockets, make_call):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101"))
    notifier.call_answered(CallAnswered("1795369641.7", "101", None, 1795369650.0))
    call = make_call(linkedid="1795369641.7", disposition=Disposition.ANSWERED, agent="101")
    notifier.call_ended(call)
    assert notifier.flush()
    last = events(sockets["101"])[-1]
    assert last[0] == "pop" and last[1]["state"] == "ended"
    assert last[1]["disposition"] == "answered"
    sup = events(sockets["sup"], "/supervisor")
    assert sup[-1] == ("call_ended", sup[-1][1])
    assert sup[-1][1]["linkedid"] == "1795369641.7"


def test_unanswered_call_end_withdraws_every_ringing_card(app, sockets, make_call):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101"))
    notifier.call_ringing(ring("102"))
    notifier.call_ended(make_call(linkedid="1795369641.7"))
    assert notifier.flush()
    for ext in ("101", "102"):
        assert [n for n, _ in events(sockets[ext])] == ["pop", "pop_withdrawn"]
    assert sockets["101"].emit("sync", {}, namespace="/operator", callback=True)["pops"] == []


def test_task_notices_reach_supervisors_and_every_operators_callback_list(app, sockets):
    notifier = notifier_for(app)
    notifier.task_changed(TaskNotice(7, "+79261112233", "abandoned_call", "opened", "1.1"))
    assert notifier.flush()
    assert [n for n, _ in events(sockets["sup"], "/supervisor")] == ["task_changed"]
    for ext in ("101", "102"):
        assert [(n, p["task_id"]) for n, p in events(sockets[ext])] == [("task_changed", 7)]


def test_sockets_refuse_anonymous_and_wrong_roles(app):
    from web.extensions import socketio

    anonymous = socketio.test_client(app, namespace="/operator")
    assert not anonymous.is_connected("/operator")
    supervisor_http = app.test_client()
    login(supervisor_http, "vera")
    assert not socket_for(app, supervisor_http, "/operator").is_connected("/operator")
    operator_http = app.test_client()
    login(operator_http, "anna")
    assert not socket_for(app, operator_http, "/supervisor").is_connected("/supervisor")


def test_a_broken_card_still_pops_the_number(app, sockets):
    from web.extensions import socketio
    from web.realtime.notifier import SocketIONotifier, emitter_for

    def broken(caller, now, outbound):
        raise RuntimeError("database down")

    notifier = SocketIONotifier(emit=emitter_for(socketio), content_loader=broken)
    try:
        notifier.call_ringing(ring("101"))
        assert notifier.flush()
    finally:
        notifier.close()
    [(name, pop)] = events(sockets["101"])
    assert name == "pop" and pop["card"] is None and pop["caller"] == "89039556279"


def test_a_transfer_target_sees_the_card_ringing_while_the_first_operator_keeps_it_live(
    app, sockets
):
    notifier = notifier_for(app)
    notifier.call_ringing(ring("101"))
    notifier.call_answered(CallAnswered("1795369641.7", "101", None, 1795369650.0))
    notifier.call_ringing(ring("102"))  # 101 transfers the caller to 102
    assert notifier.flush()
    [(name, pop)] = events(sockets["102"])
    assert (name, pop["state"], pop["answered_by"]) == ("pop", "ringing", "101")
    sync_102 = sockets["102"].emit("sync", {}, namespace="/operator", callback=True)
    assert [p["state"] for p in sync_102["pops"]] == ["ringing"]
    sync_101 = sockets["101"].emit("sync", {}, namespace="/operator", callback=True)
    assert [p["state"] for p in sync_101["pops"]] == ["live"]
