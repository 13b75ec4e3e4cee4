"""The command-line contract: `callcenter replay`, `tasks`, `db upgrade`, `listen` refusals."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.ami.traces import trace_path
from callcenter.calls.model import CallRecord

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "callcenter", *args],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_replay_prints_one_contract_line_per_call():
    """ARCHITECTURE: `callcenter replay TRACE` prints one JSON line per finished call."""
    p = run_cli("replay", str(trace_path("answered")))
    assert p.returncode == 0, p.stderr
    (line,) = json_lines(p.stdout)
    assert list(line) == list(CallRecord.CONTRACT_FIELDS)
    assert line["disposition"] == "answered"
    assert line["agent"] == "101"
    assert line["recording"] == "q-20261122-174227-79161234567-1795369342.1.wav"


def test_replay_accepts_the_verbatim_ami_form_and_a_trace_name():
    by_name = json_lines(run_cli("replay", "burst").stdout)
    by_ami = json_lines(run_cli("replay", str(trace_path("burst", ".ami"))).stdout)
    assert len(by_name) == 40
    assert {c["linkedid"]: c["disposition"] for c in by_name} == {
        c["linkedid"]: c["disposition"] for c in by_ami
    }


def test_replay_of_a_missing_file_is_a_clear_error():
    p = run_cli("replay", "/nonexistent/trace.jsonl")
    assert p.returncode == 2
    assert "cannot read trace" in p.stderr
    assert p.stdout == ""


def test_replay_of_a_truncated_trace_keeps_the_calls_before_the_cut(tmp_path):
    """Bad input: a trace cut mid-frame gives the finished calls and a warning, not a crash."""
    data = trace_path("transfer", ".ami").read_bytes()
    first_call_over = data.index(b"Event: Hangup", len(data) // 2)
    cut = tmp_path / "cut.ami"
    cut.write_bytes(data[: first_call_over + 40])
    p = run_cli("replay", str(cut))
    assert p.returncode == 0, p.stderr
    assert [c["linkedid"] for c in json_lines(p.stdout)] == ["1795369538.60"]
    assert "truncated_frame" in p.stderr


def test_replay_with_db_stores_calls_and_tasks_once(db_url):
    """`--db URL` also persists; replaying the same trace twice stores nothing twice."""
    first = run_cli("replay", "burst", "--db", db_url)
    assert first.returncode == 0, first.stderr
    tasks_first = json_lines(run_cli("tasks", "--json", "--db", db_url).stdout)
    second = run_cli("replay", "burst", "--db", db_url)
    assert second.returncode == 0, second.stderr
    tasks_second = json_lines(run_cli("tasks", "--json", "--db", db_url).stdout)
    # 34 dropped calls − 1 anonymous − 1 repeat caller who got through during the drop.
    assert len(tasks_first) == 32
    assert tasks_second == tasks_first
    assert all(t["phone"].startswith("+7") and len(t["phone"]) == 12 for t in tasks_first)
    assert {t["reason"] for t in tasks_first} == {"missed_call", "abandoned_call"}


def test_tasks_lists_open_tasks_as_a_table(db_url):
    run_cli("replay", "queue_timeout", "--db", db_url)
    p = run_cli("tasks", "--db", db_url)
    assert p.returncode == 0, p.stderr
    assert "+79035554433" in p.stdout
    assert "missed_call" in p.stdout


def test_db_upgrade_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    p = run_cli("db", "upgrade", "--db", url)
    assert p.returncode == 0, p.stderr
    assert "up to date" in p.stdout
    empty = run_cli("tasks", "--db", url)
    assert empty.stdout.strip() == "no open tasks"


def test_listen_refuses_the_default_ami_secret():
    """`callcenter listen` refuses to start with a default secret outside the demo."""
    p = run_cli("listen")
    assert p.returncode == 2
    assert "AMI_SECRET" in p.stderr


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_malformed_setting_stops_with_its_name(value):
    p = run_cli("listen", env={"AMI_PORT": value, "AMI_SECRET": "s" * 24})
    assert p.returncode == 2
    assert "AMI_PORT" in p.stderr


@pytest.mark.timeout(120)
def test_demo_plays_the_traces_and_prints_calls_and_tasks_live(tmp_path):
    """The README's demo: simulator + listener + SQLite, calls and tasks printed as they happen."""
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    p = run_cli("demo", "--db", db, "--speed", "0", "--once", "--no-web")
    assert p.returncode == 0, p.stderr
    calls = [line for line in p.stdout.splitlines() if line.startswith("CALL")]
    # answered, abandoned, queue_timeout, direct_noanswer, busy, then the 40-call burst.
    assert len(calls) == 45, p.stdout[-3000:] + p.stderr[-3000:]
    assert sum(" abandoned " in line for line in calls) == 17, "\n".join(calls)
    assert any(line.startswith("TASK") for line in p.stdout.splitlines())
    assert "open callback task(s)" in p.stdout.splitlines()[-1]
    again = json_lines(run_cli("tasks", "--json", "--db", db).stdout)
    assert len(again) == int(p.stdout.splitlines()[-1].split("; ")[1].split()[0])
    # The calls happen now (the recorded times are moved to the present from the first play;
    # at full speed the later ones keep their recorded offsets, minutes ahead),
    # so the panel's «Сегодня» pages show them.
    import sqlite3
    from datetime import UTC, datetime, timedelta

    with contextlib.closing(sqlite3.connect(tmp_path / "demo.db")) as con:
        starts = [datetime.fromisoformat(r[0]) for r in con.execute("SELECT started_at FROM calls")]
    now = datetime.now(UTC).replace(tzinfo=None)
    assert len(starts) == 45
    assert all(abs(s.replace(tzinfo=None) - now) < timedelta(hours=1) for s in starts), starts[:3]


def test_simulate_subcommand_is_the_simulator_cli():
    p = run_cli("simulate", "--help")
    assert p.returncode == 0
    assert "--speed" in p.stdout and "--trace" in p.stdout


def test_tag_reads_json_lines_and_prints_tags_per_id():
    """ARCHITECTURE: `callcenter tag [FILE|-]` reads {"id", "text"}, prints {"id", "tags"}."""
    calls = [
        {"id": "a", "text": "алло это дорого для меня я подумаю", "tags": ["ignored"]},
        {"id": "b", "text": "здравствуйте спасибо всё хорошо до свидания"},
    ]
    stdin = "\n".join(json.dumps(c, ensure_ascii=False) for c in calls) + "\nnot json\n"
    p = run_cli("tag", "-", stdin=stdin)
    out = {o["id"]: o["tags"] for o in json_lines(p.stdout)}
    assert "price_objection" in out["a"] and "thinking" in out["a"]
    assert out["b"] == []
    # A bad line is reported with its number; the others are still tagged.
    assert p.returncode == 1
    assert "3" in p.stderr


def test_transcribe_with_a_missing_model_names_the_fetcher(tmp_path):
    wav = str(ROOT / "tests/fixtures/recordings/q-20261122-174227-79161234567-1795369342.1.wav")
    p = run_cli("transcribe", wav, "--model", str(tmp_path / "no-model"))
    assert p.returncode != 0
    assert "fetch_models.py" in (p.stdout + p.stderr)


def test_import_patients_reports_rejected_rows_with_line_and_reason(tmp_path):
    """Good rows are kept when bad ones are rejected; re-importing changes nothing."""
    csv = tmp_path / "patients.csv"
    csv.write_text(
        "full_name;phones;birth_date\n"
        "Иванова Мария Петровна;+79161234567;01.02.1980\n"
        "Без Телефона;abc;01.02.1980\n",
        encoding="cp1251",
    )
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    first = run_cli("import-patients", str(csv), "--db", url)
    assert first.returncode == 1
    assert "imported: 1" in first.stdout
    assert "line 3" in first.stdout and "phone" in first.stdout
    again = run_cli("import-patients", str(csv), "--db", url)
    assert "imported: 0" in again.stdout and "updated: 0" in again.stdout


def catches_sigterm(pid: int) -> bool:
    """Return True once the process has a SIGTERM handler (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (15 - 1)))
    return False


@pytest.mark.timeout(60)
def test_worker_runs_the_huey_consumer_and_stops_on_sigterm(tmp_path):
    """`callcenter worker`: Huey on SQLite (embedded) with the periodic sweep; SIGTERM stops it."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cc.db'}",
        AMI_SECRET="worker-test-secret",
        AMI_PORT="9",  # nothing listens: the sweep must not be needed to start
        LOG_LEVEL="INFO",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "worker"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        seen = ""
        while "Executing callcenter.jobs.dialer_sweep" not in seen:
            assert time.monotonic() < deadline, seen
            line = proc.stderr.readline()
            assert line or proc.poll() is None, seen
            seen += line
        assert "SqliteHuey" in seen
        assert (tmp_path / "callcenter-huey.db").exists()
        while not catches_sigterm(proc.pid):
            assert time.monotonic() < deadline, "Huey never set its SIGTERM handler"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_users_add_creates_an_operator_bound_to_an_extension(tmp_path):
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    args = ("users", "add", "ivanova", "--role", "operator", "--extension", "101")
    p = run_cli(*args, "--password-stdin", "--db", url, stdin="s3cret\n")
    assert p.returncode == 0, p.stderr
    assert "extension 101" in p.stdout
    again = run_cli(*args, "--password-stdin", "--db", url, stdin="other\n")
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_users_add_refuses_an_operator_without_extension(tmp_path):
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    p = run_cli(
        "users", "add", "x", "--role", "operator", "--password-stdin", "--db", url, stdin="pw\n"
    )
    assert p.returncode == 2
    assert "extension" in p.stderr


def test_web_refuses_the_default_secret_key():
    p = run_cli("web")
    assert p.returncode == 2
    assert "SECRET_KEY" in p.stderr
