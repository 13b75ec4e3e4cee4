"""The database connection cut under a running `callcenter listen`: nothing is lost.

A TCP proxy (tests/soak/tcp_proxy.py) stands between the listener and the machine's PostgreSQL.
While the simulator plays the recorded busy hour, the proxy resets every connection and refuses
new ones for a few seconds, then comes back. The store writer holds the finished calls and
retries; afterwards every call the simulator played is stored exactly once with the disposition
the recording's expected.json gives it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy.engine import make_url

from callcenter.ami.simulator_thread import SimulatorThread
from tests.soak.helpers import (
    ROOT,
    expected_calls,
    free_port,
    http_get,
    process_env,
    stored_calls,
    wait_for,
)
from tests.soak.tcp_proxy import TcpProxy

SECRET = "db-cut-test-secret"
PLAYS = 2
CUT_S = 4.0


def metric(body: str, name: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_database_cut_under_the_running_listener_loses_nothing(pg_schema_url, tmp_path):
    direct = make_url(pg_schema_url)
    with TcpProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        with SimulatorThread(traces=["burst"], speed=4, plays=PLAYS, secret=SECRET) as sim:
            ops = f"http://127.0.0.1:{(ops_port := free_port())}"
            env = process_env(
                DATABASE_URL=proxied,
                AMI_HOST="127.0.0.1",
                AMI_PORT=str(sim.port),
                AMI_SECRET=SECRET,
                HUEY_PATH=str(tmp_path / "huey.db"),
                LOG_JSON="true",
                METRICS_PORT=str(ops_port),
            )
            stderr_path = tmp_path / "listen.log"
            with open(stderr_path, "w") as stderr:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "callcenter", "listen"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
                try:
                    wait_for(lambda: len(stored_calls(pg_schema_url)) >= 3, 60, "first calls")
                    stored_before = len(stored_calls(pg_schema_url))
                    proxy.cut()
                    cut_at = time.monotonic()

                    def held() -> bool:
                        status, body = http_get(f"{ops}/readyz")
                        if status != 503:
                            return False
                        store = json.loads(body)["checks"]["store"]
                        return store["ok"] is False and store["backlog"] > 0

                    # Calls keep ending: the writer holds them and says so in /readyz, /metrics.
                    wait_for(held, 30, "/readyz 503 with writes held")
                    _, metrics = http_get(f"{ops}/metrics")
                    assert (metric(metrics, "callcenter_store_backlog") or 0) > 0
                    assert metric(metrics, "callcenter_store_unavailable") == 1
                    time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
                    during = len(stored_calls(pg_schema_url))
                    proxy.restore()

                    wait_for(lambda: sim.stats.plays_completed >= PLAYS, 90, "both plays")
                    total = PLAYS * len(expected_calls("burst"))
                    wait_for(
                        lambda: len(stored_calls(pg_schema_url)) >= total, 60, f"{total} calls"
                    )
                    wait_for(lambda: http_get(f"{ops}/readyz")[0] == 200, 30, "ready again")
                    _, metrics = http_get(f"{ops}/metrics")
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
    log = stderr_path.read_text()
    assert proc.returncode == 0, log
    # Nothing was written through the cut proxy; the writes were held, not dropped.
    assert during == stored_before
    assert (metric(metrics, "callcenter_store_retries_total") or 0) > 0
    assert metric(metrics, "callcenter_store_dropped_total") == 0
    assert metric(metrics, "callcenter_store_failures_total") == 0
    assert metric(metrics, "callcenter_store_backlog") == 0
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("store unreachable") for m in messages), messages
    assert any(m.startswith("store reachable again") for m in messages), messages

    rows = stored_calls(pg_schema_url)
    expected = expected_calls("burst")
    linkedids = [linkedid for linkedid, _, _ in rows]
    assert len(linkedids) == len(set(linkedids)) == PLAYS * len(expected)
    # The first play is the recording verbatim: its calls keep their recorded linkedids.
    by_linkedid = {linkedid: disposition for linkedid, _, disposition in rows}
    for call in expected:
        assert by_linkedid.get(call["linkedid"]) == call["disposition"], call["linkedid"]
    # Every play: the same callers with the same dispositions (later plays are renumbered).
    want = Counter((c["caller"], c["disposition"]) for c in expected * PLAYS)
    assert Counter((caller, disposition) for _, caller, disposition in rows) == want
