"""The wallboard when the listener runs in another process: its board is shared through Redis."""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest

from callcenter.calls.effects import CallStarted, OperatorStateChanged, OperatorStatus
from callcenter.calls.model import Direction, Disposition
from callcenter.config import Settings
from callcenter.store import queries
from tests.web.conftest import PASSWORD, csrf_of, login
from web import create_app, notifier_for
from web.realtime import board_store
from web.realtime.board import LiveBoard, age_snapshot
from web.realtime.notifier import build_queue_notifier
from web.server import start_web_in_thread

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TS = 1795369641.0


@pytest.fixture
def redis_url(monkeypatch):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    # A key of this test's own: parallel runs never read each other's board.
    key = f"callcenter:test-wallboard:{secrets.token_hex(6)}"
    monkeypatch.setattr(board_store, "BOARD_KEY", key)
    board_store.store_for.cache_clear()
    yield REDIS_URL
    redis.Redis.from_url(REDIS_URL).delete(key)
    board_store.store_for.cache_clear()


def test_an_old_snapshot_is_aged_to_now():
    snapshot = {
        "taken_at": 1000.0,
        "threshold_s": 20.0,
        "link": {"up": True, "reason": None},
        "waiting": [
            {"linkedid": "a", "wait_s": 15.0, "over": False},
            {"linkedid": "ghost", "wait_s": 1795.0, "over": True},
        ],
        "operators": [
            {"agent": "101", "status": "wrap_up", "state_s": 1.0, "wrap_left_s": 1.0},
            {"agent": "102", "status": "on_call", "state_s": 30.0, "wrap_left_s": None},
        ],
        "today": None,
    }
    aged = age_snapshot(snapshot, now=1010.0)
    assert aged["taken_at"] == 1010.0
    assert aged["waiting"] == [{"linkedid": "a", "wait_s": 25.0, "over": True}]
    ops = {o["agent"]: o for o in aged["operators"]}
    assert (ops["101"]["status"], ops["101"]["state_s"], ops["101"]["wrap_left_s"]) == (
        "free",
        9.0,
        None,
    )
    assert (ops["102"]["status"], ops["102"]["state_s"]) == ("on_call", 40.0)


@pytest.mark.timeout(60)
def test_a_web_server_starts_wallboards_from_the_listeners_board(
    redis_url, web_db_url, factory, make_call
):
    now = time.time()
    with factory.begin() as s:
        queries.persist_call(
            s, call=make_call(start_ts=now - 600, disposition=Disposition.ANSWERED)
        )
    # The listener's process: its notifier emits through Redis and keeps its board there.
    remote = build_queue_notifier(
        redis_url=redis_url, session_factory=factory, timezone="Europe/Moscow"
    )
    app = create_app(
        Settings(database_url=web_db_url, redis_url=redis_url, demo=True),
        session_factory=factory,
        testing=True,
    )
    try:
        remote.call_started(
            CallStarted("7.1", Direction.INBOUND, "+79990001122", None, "74951234500", TS)
        )
        remote.operator_state(OperatorStateChanged("101", "Анна", OperatorStatus.ON_CALL, TS))
        assert remote.flush()
        assert not notifier_for(app).board.fed  # nothing reaches the web process's own board

        http = app.test_client()
        login(http, "vera")
        page = http.get("/supervisor/wallboard").get_data(as_text=True)
        data = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', page)
        assert data
        board = json.loads(data.group(1))
        assert [w["caller"] for w in board["waiting"]] == ["+79990001122"]
        assert [(o["agent"], o["status"]) for o in board["operators"]] == [("101", "on_call")]
        assert (board["today"]["inbound"], board["today"]["answered"]) == (1, 1)

    finally:
        remote.close()
        notifier_for(app).close()


def test_without_redis_the_wallboard_still_opens_from_this_process(caplog):
    board = LiveBoard()
    snapshot = board_store.wallboard_snapshot(board, redis_url="redis://127.0.0.1:1/0")
    assert snapshot["waiting"] == [] and snapshot["operators"] == []
    assert "could not be read from Redis" in caplog.text


@pytest.mark.timeout(60)
def test_a_wallboard_socket_gets_the_listeners_board_on_connect(redis_url, web_db_url, factory):
    requests = pytest.importorskip("requests")  # python-socketio's HTTP client transport
    import socketio as socketio_client

    remote = build_queue_notifier(redis_url=redis_url, session_factory=factory)
    app = create_app(
        Settings(database_url=web_db_url, redis_url=redis_url, demo=True), session_factory=factory
    )
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    http = requests.Session()
    boards: list[dict] = []
    client = socketio_client.Client(http_session=http, reconnection=False)
    client.on("board", boards.append, namespace="/supervisor")
    try:
        remote.call_started(CallStarted("8.1", Direction.INBOUND, "+79990003344", None, None, TS))
        assert remote.flush()
        page = http.get(f"{server.url}/auth/login", timeout=5).text
        http.post(
            f"{server.url}/auth/login",
            data={"username": "vera", "password": PASSWORD, "csrf_token": csrf_of(page)},
            timeout=5,
        )
        client.connect(
            server.url,
            namespaces=["/supervisor"],
            transports=["polling"],
            auth={"board": True},
            wait_timeout=10,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not boards:
            time.sleep(0.05)
        assert boards, "no board on connect"
        assert [w["caller"] for w in boards[0]["waiting"]] == ["+79990003344"]
        # Then the listener's changes arrive through the message queue.
        remote.operator_state(OperatorStateChanged("102", None, OperatorStatus.PAUSED, TS))
        assert remote.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(boards) < 2:
            time.sleep(0.05)
        assert [(o["agent"], o["status"]) for o in boards[-1]["operators"]] == [("102", "paused")]
    finally:
        remote.close()
        client.disconnect()
        http.close()
        server.stop()
        notifier_for(app).close()
