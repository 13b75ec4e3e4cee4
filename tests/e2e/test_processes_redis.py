"""`callcenter listen` and `callcenter web` as separate processes: the pop travels through Redis.

The listener process has no web server: its notifier emits through Flask-SocketIO's Redis
message queue (``REDIS_URL``), and the web process delivers the pop to the ringing operator's
browser. Here a python-socketio client, logged in as operator 101 through the login form,
stands in for the browser; both processes share one SQLite database (users, patients, calls).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from callcenter.ami.simulator_thread import SimulatorThread
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models_patients import Patient, PatientPhone
from tests.soak.helpers import (
    ROOT,
    expected_calls,
    free_port,
    http_get,
    process_env,
    stored_calls,
    wait_for,
)
from tests.web.conftest import csrf_of

SECRET = "processes-ami-secret"
PASSWORD = "processes password"
REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1:6379")
#: A database number of its own, so that Huey's queue keys stay apart from other tests'.
REDIS_DB = 11

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url():
    import redis

    url = f"redis://{REDIS_HOST}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis unreachable at {url}: {exc}")
        pytest.skip(f"Redis unreachable at {url}: {exc}")
    yield url
    # The listener queued a transcription job for the recorded call on Huey: remove it.
    for key in client.scan_iter("huey.*"):
        client.delete(key)
    client.close()


def seed(url: str, caller: str) -> None:
    upgrade(url)
    engine = create_db_engine(url)
    try:
        with create_session_factory(engine).begin() as s:
            users.create_user(
                s, username="anna", password=PASSWORD, role="operator", extension="101"
            )
            patient = Patient(full_name="Смирнова Ольга Николаевна", doctor="Петров И. И.")
            patient.phones.append(PatientPhone(phone=caller))
            s.add(patient)
    finally:
        engine.dispose()


def start(command: str, env: dict[str, str], log_path) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "callcenter", command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@pytest.mark.timeout(180)
def test_pop_from_a_separate_listener_process_reaches_operator_101(redis_url, tmp_path):
    requests = pytest.importorskip("requests")
    import socketio as socketio_client

    (call,) = expected_calls("answered")
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    seed(db_url, "+79161234567")  # the caller of the recorded `answered` call
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    common = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "LOG_JSON": "true"}
    web = start(
        "web",
        process_env(**common, WEB_PORT=str(web_port), SECRET_KEY="processes-secret-key"),
        tmp_path / "web.log",
    )
    listen = None
    http = requests.Session()
    client = socketio_client.Client(http_session=http, reconnection=False)
    pops: list[dict] = []
    got_pop = threading.Event()

    def on_pop(payload: dict) -> None:
        pops.append(payload)
        got_pop.set()

    client.on("pop", on_pop, namespace="/operator")
    try:
        wait_for(lambda: http_get(f"{base}/healthz")[0] == 200, 60, "callcenter web")
        page = http.get(f"{base}/auth/login", timeout=5).text
        answer = http.post(
            f"{base}/auth/login",
            data={"username": "anna", "password": PASSWORD, "csrf_token": csrf_of(page)},
            timeout=5,
        )
        assert answer.status_code == 200 and "/auth/login" not in answer.url
        client.connect(base, namespaces=["/operator"], transports=["polling"], wait_timeout=10)
        # Only now the call: the simulator plays `answered` once the listener logs in.
        with SimulatorThread(traces=["answered"], speed=4, secret=SECRET) as sim:
            listen = start(
                "listen",
                process_env(
                    **common,
                    AMI_HOST="127.0.0.1",
                    AMI_PORT=str(sim.port),
                    AMI_SECRET=SECRET,
                ),
                tmp_path / "listen.log",
            )
            assert got_pop.wait(60), (tmp_path / "listen.log").read_text()[-3000:]
            wait_for(lambda: any(p.get("answered_by") == "101" for p in pops), 60, "answer")
            wait_for(lambda: len(stored_calls(db_url)) == 1, 60, "the call stored")
            assert stop(listen) == 0
    finally:
        client.disconnect()
        http.close()
        if listen is not None:
            stop(listen)
        web_code = stop(web)
    assert web_code == 0, (tmp_path / "web.log").read_text()[-3000:]
    first = pops[0]
    assert first["linkedid"] == call["linkedid"]
    assert first["state"] == "ringing"
    # The card was assembled by the listener process from the shared database.
    assert first["card"]["patient"]["full_name"] == "Смирнова Ольга Николаевна"
    assert {p["linkedid"] for p in pops} == {call["linkedid"]}
    assert stored_calls(db_url) == [(call["linkedid"], call["caller"], call["disposition"])]
