"""Bad surroundings at start: a database that does not answer, an AMI host that refuses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from callcenter.ami.simulator_thread import SimulatorThread
from callcenter.store.sink import StoreUnreachable, open_call_sink
from tests.soak.helpers import (
    ROOT,
    free_port,
    http_get,
    process_env,
    stored_calls,
    wait_for,
)
from tests.soak.tcp_proxy import TcpProxy

SECRET = "bad-input-ami-secret"


def test_an_unreachable_database_is_retried_then_named_in_a_clear_error():
    url = f"postgresql+psycopg://callcenter:s3cret@127.0.0.1:{free_port()}/callcenter"
    waits: list[float] = []
    with pytest.raises(StoreUnreachable) as info:
        open_call_sink(url, attempts=4, delay_max=1.5, sleep=waits.append)
    assert waits == [0.5, 1.0, 1.5]
    message = str(info.value)
    assert message.startswith("database unreachable at postgresql+psycopg://callcenter:***@")
    assert "after 4 attempt(s) (OperationalError: " in message
    assert "check DATABASE_URL" in message
    assert "s3cret" not in message


def test_callcenter_listen_with_an_unreachable_database_exits_2_with_the_message(tmp_path):
    port = free_port()
    env = process_env(
        DATABASE_URL=f"postgresql+psycopg://callcenter:s3cret@127.0.0.1:{port}/callcenter",
        AMI_SECRET=SECRET,
        HUEY_PATH=str(tmp_path / "huey.db"),
        LOG_JSON="true",
    )
    # Two attempts instead of the default ten, so that the test does not wait 40 s.
    code = (
        "import callcenter.store.sink as sink; sink.START_ATTEMPTS = 2; "
        "from callcenter.cli import main; raise SystemExit(main(['listen']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("callcenter: configuration error: database unreachable at ")
    assert f"127.0.0.1:{port}/callcenter after 2 attempt(s)" in last
    assert "s3cret" not in proc.stderr and "Traceback" not in proc.stderr
    retries = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert any("retrying in 0.5s (attempt 1 of 2)" in r["message"] for r in retries)


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_callcenter_listen_waits_for_a_database_that_comes_up_late(pg_schema_url, tmp_path):
    """The database is down when the listener starts, up a few seconds later: it carries on."""
    direct = make_url(pg_schema_url)
    with TcpProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        proxy.cut()  # refuse connections for now
        url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with SimulatorThread(traces=["answered"], speed=10, secret=SECRET) as sim:
            log_path = tmp_path / "listen.log"
            with open(log_path, "w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "callcenter", "listen"],
                    cwd=ROOT,
                    env=process_env(
                        DATABASE_URL=url,
                        AMI_HOST="127.0.0.1",
                        AMI_PORT=str(sim.port),
                        AMI_SECRET=SECRET,
                        HUEY_PATH=str(tmp_path / "huey.db"),
                        LOG_JSON="true",
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                wait_for(lambda: "retrying in" in log_path.read_text(), 30, "a retry")
                assert proc.poll() is None
                proxy.restore()
                wait_for(lambda: sim.stats.logins >= 1, 60, "the listener logged in")
                wait_for(lambda: len(stored_calls(pg_schema_url)) == 1, 60, "the call stored")
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0, log_path.read_text()[-3000:]
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert "database unreachable at" in log_path.read_text()


@pytest.mark.timeout(90)
def test_an_ami_host_that_refuses_keeps_the_listener_up_and_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'listen.db'}"
    ami_port, ops_port = free_port(), free_port()
    log_path = tmp_path / "listen.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "listen"],
            cwd=ROOT,
            env=process_env(
                DATABASE_URL=url,
                AMI_HOST="127.0.0.1",
                AMI_PORT=str(ami_port),
                AMI_SECRET=SECRET,
                AMI_BACKOFF_INITIAL="0.2",
                AMI_BACKOFF_MAX="1",
                METRICS_PORT=str(ops_port),
                LOG_JSON="true",
            ),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        ready = f"http://127.0.0.1:{ops_port}/readyz"
        wait_for(lambda: http_get(ready)[0] == 503, 30, "/readyz 503")
        wait_for(lambda: log_path.read_text().count("cannot connect") >= 2, 30, "retries")
        status, body = http_get(ready)
        assert status == 503 and json.loads(body)["checks"]["ami"]["ok"] is False
        _, metrics = http_get(f"http://127.0.0.1:{ops_port}/metrics")
        reconnects = [
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("callcenter_ami_reconnects_total ")
        ]
        assert reconnects and reconnects[0] >= 1
        assert proc.poll() is None  # still running, still trying
        lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
        refused = [x["message"] for x in lines if "cannot connect" in x["message"]]
        assert f"AMI: cannot connect to 127.0.0.1:{ami_port}" in refused[0]
        assert "ConnectionRefusedError" in refused[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stored_calls(url) == []
