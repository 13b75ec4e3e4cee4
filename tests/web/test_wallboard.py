"""The live wallboard: its state (LiveBoard), the snapshot on connect, live updates, the page."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest

from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallQueued,
    CallStarted,
    OperatorStateChanged,
    OperatorStatus,
)
from callcenter.calls.model import Direction, Disposition
from callcenter.notify import TaskNotice
from callcenter.reports.figures import CallRow, ReportOptions
from callcenter.store import queries
from tests.web.conftest import login, socket_for
from web import notifier_for
from web.extensions import socketio
from web.realtime.board import LiveBoard

TS = 1795369641.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def started(linkedid: str, *, direction=Direction.INBOUND, caller="89039556279"):
    return CallStarted(linkedid, direction, caller, None, "74951234500", TS)


def ringing(linkedid: str, agent: str):
    return AgentRinging(linkedid, agent, None, "89039556279", "Иванова", "reception", TS + 5)


def state(agent: str, status: OperatorStatus, *, until=None):
    return OperatorStateChanged(agent, f"Админ {agent}", status, TS, until)


# -- LiveBoard on its own --------------------------------------------------------------------


def test_a_caller_waits_from_the_call_start_until_answered_and_the_alert_follows_the_wait():
    clock = FakeClock(1000.0)
    board = LiveBoard(clock=clock, options=ReportOptions(service_level_s=20.0))
    board.call_started(started("a"))
    clock.now += 5
    board.call_started(started("b", caller=None))
    board.call_ringing(ringing("a", "101"))
    board.call_ringing(ringing("a", "102"))
    board.agent_stopped_ringing("a", "102")
    clock.now += 17
    snap = board.snapshot()
    assert [(w["linkedid"], w["wait_s"], w["over"]) for w in snap["waiting"]] == [
        ("a", 22.0, True),
        ("b", 17.0, False),
    ]
    assert snap["waiting"][0]["ringing"] == ["101"]
    assert snap["waiting"][0]["queue"] == "reception"
    assert snap["waiting"][1]["caller"] is None
    board.call_answered("a")
    assert [w["linkedid"] for w in board.snapshot()["waiting"]] == ["b"]


def test_a_queued_callers_wait_counts_from_queue_entry_like_the_reports():
    """The greeting before the queue is not waiting for an administrator: from QueueCallerJoin
    on the wait (and the service-level alert) counts as the reports' queue wait does."""
    clock = FakeClock(1000.0)
    board = LiveBoard(clock=clock, options=ReportOptions(service_level_s=20.0))
    board.call_started(started("a"))
    clock.now += 4  # the greeting
    board.call_queued(CallQueued("a", "reception", "89039556279", 1, TS + 4))
    clock.now += 18
    board.call_queued(CallQueued("a", "reception", "89039556279", 1, TS + 22))  # no restart
    (waiting,) = board.snapshot()["waiting"]
    assert (waiting["wait_s"], waiting["over"], waiting["queue"]) == (18.0, False, "reception")
    clock.now += 3
    assert board.snapshot()["waiting"][0]["over"] is True
    # A queue join for a call the board never saw start (a callback) adds nobody.
    board.call_queued(CallQueued("cb", "reception", None, None, TS))
    assert [w["linkedid"] for w in board.snapshot()["waiting"]] == ["a"]


def test_an_outbound_call_never_waits_even_when_first_reported_inbound():
    board = LiveBoard(clock=FakeClock(0.0))
    board.call_started(started("cb"))
    board.call_started(started("cb", direction=Direction.OUTBOUND))
    board.call_ringing(ringing("cb", "101"))
    assert board.snapshot()["waiting"] == []


def test_an_ended_call_leaves_the_waiting_list(make_call):
    board = LiveBoard(clock=FakeClock(TS))
    board.call_started(started("x"))
    board.call_ended(make_call(linkedid="x"))
    assert board.snapshot()["waiting"] == []


def test_callers_seen_before_an_ami_gap_leave_the_board_when_the_link_is_back():
    clock = FakeClock(100.0)
    board = LiveBoard(clock=clock)
    board.link_state(up=True, reason=None)
    board.call_started(started("before"))
    clock.now += 5
    board.link_state(up=False, reason="connection lost")
    snap = board.snapshot()
    assert snap["link"] == {"up": False, "reason": "connection lost"}
    assert [w["linkedid"] for w in snap["waiting"]] == ["before"]  # unknown yet: kept
    clock.now += 5
    board.link_state(up=False, reason="reconnect failed")  # still down: no new gap
    clock.now += 5
    board.link_state(up=True, reason=None)
    board.call_started(started("after"))
    snap = board.snapshot()
    assert snap["link"]["up"] is True
    assert [w["linkedid"] for w in snap["waiting"]] == ["after"]


def test_a_caller_waiting_longer_than_any_queue_allows_is_dropped():
    clock = FakeClock(0.0)
    board = LiveBoard(clock=clock)
    board.call_started(started("ghost"))
    clock.now += 29 * 60
    assert [w["linkedid"] for w in board.snapshot()["waiting"]] == ["ghost"]
    clock.now += 2 * 60
    assert board.snapshot()["waiting"] == []


def test_wrap_up_turns_free_when_its_time_is_over():
    clock = FakeClock(500.0)
    board = LiveBoard(clock=clock)
    board.operator_state(agent="101", agent_name="Анна", status="on_call", ts=TS, until=None)
    board.operator_state(agent="101", agent_name=None, status="wrap_up", ts=TS, until=TS + 2)
    board.operator_state(agent="102", agent_name="Мария", status="paused", ts=TS, until=None)
    clock.now += 1
    ops = {o["agent"]: o for o in board.snapshot()["operators"]}
    assert (ops["101"]["status"], ops["101"]["wrap_left_s"]) == ("wrap_up", 1.0)
    assert ops["101"]["agent_name"] == "Анна"  # kept from the earlier state
    assert ops["102"]["status"] == "paused"
    clock.now += 1.5
    ops = {o["agent"]: o for o in board.snapshot()["operators"]}
    assert (ops["101"]["status"], ops["101"]["wrap_left_s"]) == ("free", None)
    assert ops["101"]["state_s"] == 0.5  # free since the wrap-up ended, not since it began


def test_todays_figures_count_stored_and_live_calls_once_and_only_todays(make_call):
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
    yesterday = now - 86400
    stored = [
        CallRow(
            linkedid="s1",
            direction="inbound",
            disposition="answered",
            started_at=datetime.fromtimestamp(now - 3600, UTC),
            queue_wait_s=3.0,
        ),
        CallRow(
            linkedid="live1",
            direction="inbound",
            disposition="abandoned",
            started_at=datetime.fromtimestamp(now - 60, UTC),
            queue_wait_s=30.0,
        ),
    ]
    loads = []

    def loader(period):
        loads.append(period)
        return stored

    board = LiveBoard(clock=FakeClock(now), rows_loader=loader, timezone="Europe/Moscow")
    # The same call, live and already stored: counted once.
    board.call_ended(
        make_call(linkedid="live1", disposition=Disposition.ABANDONED, start_ts=now - 60)
    )
    board.call_ended(
        make_call(linkedid="old", disposition=Disposition.ANSWERED, start_ts=yesterday)
    )
    board.call_ended(
        make_call(
            linkedid="live2",
            disposition=Disposition.ANSWERED,
            start_ts=now - 30,
            queue_wait_s=25.0,
        )
    )
    today = board.snapshot()["today"]
    assert today["day"] == "2026-11-23"
    assert (today["inbound"], today["answered"], today["abandoned"]) == (3, 2, 1)
    assert today["service_level"] == pytest.approx(1 / 3)  # one of three answered within 20 s
    board.snapshot()
    assert len(loads) == 1  # the store is read once a day


def test_without_a_time_zone_the_board_has_no_figures_for_today():
    assert LiveBoard(clock=FakeClock(0.0)).snapshot()["today"] is None


# -- over Socket.IO ----------------------------------------------------------------------------


def _received(sio, name):
    return [e["args"][0] for e in sio.get_received("/supervisor") if e["name"] == name]


def _wallboard_socket(app):
    http = app.test_client()
    login(http, "vera")
    return socketio.test_client(
        app, namespace="/supervisor", flask_test_client=http, auth={"board": True}
    )


def test_a_wallboard_connecting_mid_traffic_gets_the_live_state_at_once(app):
    notifier = notifier_for(app)
    notifier.call_started(started("1795369641.7"))
    notifier.call_ringing(ringing("1795369641.7", "101"))
    notifier.operator_state(state("101", OperatorStatus.RINGING))
    notifier.operator_state(state("102", OperatorStatus.ON_CALL))
    notifier.call_started(started("1795369641.9", caller="anonymous"))
    assert notifier.flush()
    sio = _wallboard_socket(app)
    assert sio.is_connected("/supervisor")
    [board] = _received(sio, "board")
    assert [w["linkedid"] for w in board["waiting"]] == ["1795369641.7", "1795369641.9"]
    assert board["waiting"][0]["ringing"] == ["101"]
    assert {o["agent"]: o["status"] for o in board["operators"]} == {
        "101": "ringing",
        "102": "on_call",
    }
    assert board["threshold_s"] == ReportOptions().service_level_s
    # Then every change sends the whole board again.
    notifier.call_answered(CallAnswered("1795369641.7", "101", None, TS + 9))
    notifier.agent_stopped_ringing(AgentStoppedRinging("1795369641.9", "103", "no_answer", TS))
    assert notifier.flush()
    boards = _received(sio, "board")
    assert [w["linkedid"] for w in boards[-1]["waiting"]] == ["1795369641.9"]
    sio.disconnect("/supervisor")


def test_board_updates_go_to_wallboards_only_and_tasks_reach_every_operator(app):
    http = app.test_client()
    login(http, "vera")
    plain = socket_for(app, http, "/supervisor")
    board_sio = _wallboard_socket(app)
    operators = []
    for name in ("anna", "boris"):
        op_http = app.test_client()
        login(op_http, name)
        operators.append(socket_for(app, op_http, "/operator"))
    for sio in [plain, board_sio, *operators]:
        sio.get_received("/supervisor" if sio in (plain, board_sio) else "/operator")
    notifier = notifier_for(app)
    notifier.call_started(started("1.1"))
    notifier.task_changed(TaskNotice(7, "+79261112233", "abandoned_call", "opened", "1.1"))
    assert notifier.flush()
    assert [e["name"] for e in plain.get_received("/supervisor")] == [
        "call_started",
        "task_changed",
    ]
    assert [e["name"] for e in board_sio.get_received("/supervisor")] == [
        "call_started",
        "board",
        "task_changed",
    ]
    for sio in operators:
        got = sio.get_received("/operator")
        assert [(e["name"], e["args"][0]["task_id"]) for e in got] == [("task_changed", 7)]


def test_an_operator_cannot_join_the_wallboard(app):
    http = app.test_client()
    login(http, "anna")
    sio = socketio.test_client(
        app, namespace="/supervisor", flask_test_client=http, auth={"board": True}
    )
    assert not sio.is_connected("/supervisor")


def test_todays_figures_tick_as_calls_end(app, make_call):
    sio = _wallboard_socket(app)
    [first] = _received(sio, "board")
    assert first["today"]["inbound"] == 0
    notifier = notifier_for(app)
    now = time.time()
    notifier.call_ended(make_call(start_ts=now - 40, disposition=Disposition.QUEUE_TIMEOUT))
    notifier.call_ended(
        make_call(start_ts=now - 20, end_ts=now, disposition=Disposition.ANSWERED, agent="101")
    )
    assert notifier.flush()
    today = _received(sio, "board")[-1]["today"]
    assert (today["inbound"], today["answered"], today["missed"]) == (2, 1, 1)
    sio.disconnect("/supervisor")


# -- the page ----------------------------------------------------------------------------------


def test_the_wallboard_page_starts_from_the_stored_and_live_state(app, factory, make_call):
    with factory.begin() as s:
        queries.persist_call(
            s, call=make_call(start_ts=time.time() - 300, disposition=Disposition.ANSWERED)
        )
    notifier = notifier_for(app)
    notifier.call_started(started("1795369641.5", caller="+79990001122"))
    assert notifier.flush()
    http = app.test_client()
    login(http, "vera")
    page = http.get("/supervisor/wallboard").get_data(as_text=True)
    assert "<h1>Табло</h1>" in page
    data = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', page)
    assert data
    board = json.loads(data.group(1))
    assert [w["caller"] for w in board["waiting"]] == ["+79990001122"]
    assert (board["today"]["inbound"], board["today"]["answered"]) == (1, 1)
    assert 'href="/supervisor/wallboard"' in http.get("/supervisor/").get_data(as_text=True)


def test_an_operator_gets_403_on_the_wallboard(operator_client):
    assert operator_client.get("/supervisor/wallboard").status_code == 403


def test_a_caller_name_with_markup_is_escaped_in_the_embedded_board(app, supervisor_client):
    notifier = notifier_for(app)
    notifier.call_ringing(
        AgentRinging("9.9", "101", None, "8903", "</script><b>x</b>", "reception", TS)
    )
    notifier.call_started(
        CallStarted("9.9", Direction.INBOUND, "8903", "</script><b>x</b>", None, TS)
    )
    assert notifier.flush()
    page = supervisor_client.get("/supervisor/wallboard").get_data(as_text=True)
    assert "</script><b>" not in page
