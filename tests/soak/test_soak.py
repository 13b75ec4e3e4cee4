"""A short soak: `callcenter listen` under AMI faults for a minute (scripts/soak.py).

The script plays the recorded busy hour in a loop through a `callcenter listen` subprocess
(with a `callcenter web` beside it) while the simulator drops the connection mid-frame, sends
Shutdown, stalls and rejects one Login; it then checks every call it played against the store.
This test runs it for 60 s and asserts on its figures; no timing is asserted, and the memory
bound is generous (the script itself reports the 20 MB target).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.soak.helpers import ROOT


@pytest.mark.timeout(300)
def test_soak_under_ami_faults_loses_no_call_and_keeps_serving(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/soak.py",
            "--duration=60",
            "--fault-every=9",
            "--min-loops=10",
            "--max-rss-growth-mb=60",
            f"--json-out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.exists(), proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    report = proc.stdout[-3000:] + proc.stderr[-3000:]
    # Every fault happened, took the link down (/readyz 503) and the link came back (200).
    assert result["fault_kinds"] == sorted(["drop_mid_frame", "shutdown", "stall", "reject_login"])
    for fault in result["faults"]:
        assert fault["saw_503"] and fault["ready_again_s"] is not None, fault
    # Every call the simulator played: stored once with its recorded disposition, or cut by a
    # fault and inside a stored AMI gap. Faults did cut calls, so the gap path was exercised.
    assert result["played"] > 0 and result["complete"] > 0
    assert result["cut_in_gap"] + result["cut_stored"] > 0, report
    assert result["lost"] == [] and result["wrong"] == [], report
    assert result["duplicates"] == [] and result["unexpected"] == [], report
    assert result["stored"] == result["complete"] + result["cut_stored"]
    assert result["gaps"] >= len(result["faults"]) and result["open_gaps"] == 0
    # The web server answered throughout; the listener stopped cleanly on SIGTERM.
    assert result["web_ok"] > 0 and result["web_failures"] == []
    assert result["exit_codes"]["listen"] == 0
    assert result["exit_codes"]["web_healthz_after"] == 200
    # Memory: at least 10 loops, growth far below the bound (the script prints the figure).
    assert result["loops"] >= 10, report
    assert result["rss_growth_mb"] < 60, report
    assert proc.returncode == 0, report
    assert "SOAK PASSED" in proc.stdout
