"""Issue #5, exactly once under concurrency: four dialer processes on the real PostgreSQL,
1,000 due tasks, the AMI simulator accepting every Originate (recorded outcomes): every task is
originated exactly once, none twice, none lost.

It runs ``scripts/bench_dialer.py`` (the same processes the benchmark times) and reads what it
checked from its output; the SIGKILL case is tests/store/test_dialer_kill.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_four_dialers_originate_a_thousand_tasks_exactly_once_through_the_simulator(
    postgres_base_url,
):
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_dialer.py"),
            "--db",
            postgres_base_url,
            "--tasks",
            "1000",
            "--processes",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("4 dialer(s)"))
    assert "originates 1000 for 1000 tasks" in line, line
    assert "duplicates: 0 originates, 0 tasks with 2+ attempts" in line, line
    assert "unfinished attempts 0" in line and "tasks with one attempt 1000/1000" in line, line
    per_process = [int(n) for n in re.search(r"per process \[([\d, ]+)\]", line)[1].split(",")]
    assert len(per_process) == 4 and sum(per_process) > 0, line
    assert p.stdout.rstrip().endswith("exactly once: yes")
