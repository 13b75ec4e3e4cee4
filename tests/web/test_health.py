"""/healthz, /readyz and /metrics: no login, 200 when ready, 503 with the failing check."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.health import LinkHealth, Readiness
from callcenter.metrics import Metrics, MetricsNotifier
from callcenter.notify import FanoutNotifier, RecordingNotifier
from callcenter.runtime import build_listener
from tests.replay.aio_helpers import wait_until
from web import create_app, notifier_for

SECRET = "health-test-secret"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener_settings(db_url: str, port: int) -> Settings:
    return Settings(
        database_url=db_url,
        ami_port=port,
        ami_secret=SECRET,
        ami_backoff_initial_s=0.05,
        ami_backoff_max_s=0.2,
        ami_ping_interval_s=0.5,
        ami_ping_timeout_s=0.5,
    )


def test_healthz_and_readyz_answer_without_login(client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # A web-only process runs no listener: the AMI link is not its business.
    assert ready.get_json() == {"status": "ready", "checks": {"database": {"ok": True}}}


def test_readyz_is_503_when_the_database_is_unreachable():
    url = f"postgresql+psycopg://callcenter@127.0.0.1:{closed_port()}/callcenter"
    app = create_app(Settings(database_url=url, demo=True), testing=True)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.get_json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"]["ok"] is False
        assert "OperationalError" in body["checks"]["database"]["error"]
    finally:
        notifier_for(app).close()


@pytest.mark.timeout(60)
def test_readyz_follows_the_ami_link_down_and_up_again(db_url, tmp_path):
    """Ready once logged in; 503 while the link is down (dropped mid-frame); ready again."""
    link = LinkHealth()
    recorder = RecordingNotifier()
    app_db = f"sqlite:///{tmp_path / 'web.db'}"
    from callcenter.store.db import upgrade

    upgrade(app_db)
    app = create_app(
        Settings(database_url=app_db, demo=True), testing=True, readiness=Readiness(ami=link)
    )
    client = app.test_client()
    statuses: list[int] = []

    def status() -> int:
        code = client.get("/readyz").status_code
        if not statuses or statuses[-1] != code:
            statuses.append(code)
        return code

    async def scenario() -> None:
        assert status() == 503  # not connected yet
        async with AmiSimulator(
            traces=["answered"], speed=0, port=0, secret=SECRET, loop_forever=True
        ) as sim:
            settings = listener_settings(db_url, sim.port).with_overrides(
                ami_backoff_initial_s=0.5, ami_backoff_max_s=1.0
            )
            process = build_listener(settings, notifier=FanoutNotifier(link, recorder))
            await process.start()
            try:
                await wait_until(lambda: status() == 200, 30, what="ready after login")
                assert client.get("/readyz").get_json()["checks"]["ami"]["ok"] is True
                sim.drop_mid_frame()
                # The back-off (≥ 0.25 s here) leaves time to see the link down.
                await wait_until(lambda: status() == 503, 30, what="not ready when dropped")
                assert recorder.of("link_state")[-1][0] is False
                await wait_until(lambda: status() == 200, 30, what="ready after reconnect")
            finally:
                await process.stop()

    try:
        asyncio.run(scenario())
    finally:
        notifier_for(app).close()
    assert statuses == [503, 200, 503, 200]


@pytest.mark.timeout(60)
def test_readyz_is_503_while_the_ami_login_is_rejected(tmp_path):
    link = LinkHealth()
    app_db = f"sqlite:///{tmp_path / 'web.db'}"
    from callcenter.store.db import upgrade

    upgrade(app_db)
    app = create_app(
        Settings(database_url=app_db, demo=True), testing=True, readiness=Readiness(ami=link)
    )
    client = app.test_client()
    recorder = RecordingNotifier()

    async def scenario() -> None:
        async with AmiSimulator(traces=["answered"], speed=0, port=0, secret="other") as sim:
            process = build_listener(
                listener_settings(f"sqlite:///{tmp_path / 'l.db'}", sim.port),
                notifier=FanoutNotifier(link, recorder),
            )
            await process.start()
            try:
                await wait_until(
                    lambda: process.client.stats.login_failures >= 2, 30, what="rejected logins"
                )
                ready = client.get("/readyz")
                assert ready.status_code == 503
                assert ready.get_json()["checks"]["ami"]["ok"] is False
            finally:
                await process.stop()

    try:
        asyncio.run(scenario())
    finally:
        notifier_for(app).close()


def test_metrics_exports_calls_link_changes_open_tasks_and_ami_counters(app, client, make_call):
    metrics: Metrics = app.extensions["callcenter.metrics"]
    counter = MetricsNotifier(metrics)
    counter.call_ended(make_call(disposition="queue_timeout"))
    counter.call_ended(make_call(disposition="answered"))
    counter.call_ended(make_call(disposition="answered"))
    counter.link_state(up=True, at=1.0, reason=None)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'callcenter_calls_total{disposition="answered"} 2.0' in text
    assert 'callcenter_calls_total{disposition="queue_timeout"} 1.0' in text
    assert 'callcenter_ami_link_changes_total{state="up"} 1.0' in text
    assert "callcenter_open_tasks 0.0" in text
    assert "callcenter_transcribed_audio_seconds 0.0" in text
    assert "callcenter_socketio_clients" in text
    # No listener in this process: no AMI counters.
    assert "callcenter_ami_messages" not in text


def test_the_listeners_ops_server_follows_the_link_and_serves_metrics():
    """`callcenter listen` has no panel: METRICS_PORT answers /healthz, /readyz, /metrics."""
    import urllib.error
    import urllib.request

    from callcenter.health import start_ops_server

    link, metrics = LinkHealth(), Metrics()
    server = start_ops_server(host="127.0.0.1", port=0, link=link, metrics=metrics)

    def get(path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{server.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    try:
        assert get("/healthz")[0] == 200
        assert get("/readyz")[0] == 503
        MetricsNotifier(metrics).link_state(up=True, at=5.0, reason=None)
        link.link_state(up=True, at=5.0, reason=None)
        status, body = get("/readyz")
        assert status == 200
        assert b'"ami": {"ok": true, "since": 5.0}' in body
        link.link_state(up=False, at=6.0, reason="connection closed by Asterisk")
        status, body = get("/readyz")
        assert status == 503 and b"connection closed by Asterisk" in body
        assert b'callcenter_ami_link_changes_total{state="up"} 1.0' in get("/metrics")[1]
        assert get("/nowhere")[0] == 404
    finally:
        server.stop()
