"""`callcenter listen` stops cleanly on SIGTERM: exit 0, and every call it received is stored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.ami.simulator import AmiSimulator
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Call

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shutdown-test-secret"
INBOUND = ["answered", "abandoned", "queue_timeout", "direct_noanswer", "busy"]


@pytest.fixture
def simulator_port() -> Iterator[int]:
    """Run an AMI simulator looping the inbound traces, on its own thread and event loop."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["stop"] = (asyncio.get_running_loop(), stop)
        async with AmiSimulator(
            traces=INBOUND, speed=20, port=0, secret=SECRET, loop_forever=True
        ) as sim:
            box["port"] = sim.port
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="ami-sim", daemon=True)
    thread.start()
    assert ready.wait(10), "the simulator did not start"
    yield int(box["port"])  # type: ignore[call-overload]
    loop, stop = box["stop"]  # type: ignore[misc]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def stored_linkedids(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        with create_session_factory(engine)() as session:
            return set(session.scalars(select(Call.linkedid)))
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_sigterm_stops_listen_with_exit_0_and_every_received_call_stored(simulator_port, tmp_path):
    url = f"sqlite:///{tmp_path / 'listen.db'}"
    upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_", "LOG_"))}
    env.update(
        DATABASE_URL=url,
        AMI_HOST="127.0.0.1",
        AMI_PORT=str(simulator_port),
        AMI_SECRET=SECRET,
        LOG_JSON="true",
        LOG_LEVEL="INFO",
        METRICS_PORT=str(ops_port := free_port()),
    )
    ops = f"http://127.0.0.1:{ops_port}"
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "listen"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            wait_for(lambda: len(stored_linkedids(url)) >= 3, 60, "stored calls")
            # The listener's own health and metrics (METRICS_PORT): logged in, calls counted.
            assert http_get(f"{ops}/healthz")[0] == 200
            wait_for(lambda: http_get(f"{ops}/readyz")[0] == 200, 30, "ready")
            status, metrics = http_get(f"{ops}/metrics")
            assert status == 200
            assert "callcenter_calls_total{disposition=" in metrics
            assert "callcenter_ami_messages_total" in metrics
            proc.send_signal(signal.SIGTERM)
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, stderr_path.read_text()
    # Each call the listener received is logged (JSON, with its linkedid) and printed.
    lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.strip()]
    received = {line["linkedid"] for line in lines if line["message"] == "call ended"}
    printed = [line for line in stdout.splitlines() if line.startswith("CALL")]
    assert len(received) == len(printed) >= 3
    assert stored_linkedids(url) == received
