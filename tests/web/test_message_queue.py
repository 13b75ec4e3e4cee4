"""A listener in another process pops screens through Redis (Flask-SocketIO's message queue)."""

from __future__ import annotations

import os
import time

import pytest

from callcenter.calls.effects import AgentRinging
from callcenter.config import Settings
from tests.web.conftest import PASSWORD, csrf_of
from web import create_app, notifier_for
from web.realtime.notifier import build_queue_notifier
from web.server import start_web_in_thread

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.mark.timeout(60)
def test_pop_emitted_by_another_process_reaches_the_ringing_operator(
    redis_url, web_db_url, factory
):
    requests = pytest.importorskip("requests")  # python-socketio's HTTP client transport
    import socketio as socketio_client

    app = create_app(
        Settings(database_url=web_db_url, redis_url=redis_url, demo=True), session_factory=factory
    )
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    http = requests.Session()
    page = http.get(f"{server.url}/auth/login", timeout=5).text
    http.post(
        f"{server.url}/auth/login",
        data={"username": "anna", "password": PASSWORD, "csrf_token": csrf_of(page)},
        timeout=5,
    )
    received: list[dict] = []
    client = socketio_client.Client(http_session=http, reconnection=False)
    client.on("pop", received.append, namespace="/operator")
    # The listener process's notifier: no web server, emits through Redis.
    remote = build_queue_notifier(redis_url=redis_url, session_factory=factory)
    try:
        client.connect(
            server.url, namespaces=["/operator"], transports=["polling"], wait_timeout=10
        )
        remote.call_ringing(AgentRinging("5.5", "101", None, "89039556279", None, None, 1.0))
        assert remote.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not received:
            time.sleep(0.05)
        assert [pop["linkedid"] for pop in received] == ["5.5"]
    finally:
        remote.close()
        client.disconnect()
        http.close()
        server.stop()
        notifier_for(app).close()
