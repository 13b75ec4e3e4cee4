"""`callcenter retention [--dry-run]` and `callcenter forget PHONE [--keep-do-not-call]`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.model import Disposition
from callcenter.cli import main
from callcenter.store.audit import list_access
from callcenter.store.models import Call
from callcenter.store.patients import is_do_not_call, phone_hash
from callcenter.store.queries import persist_call


@pytest.fixture
def recordings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    monkeypatch.setenv("RECORDINGS_DIR", str(folder))
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    return folder


def _recorded_call(session_factory, make_call, folder: Path, *, days_ago: float, name: str):
    start = datetime.now(UTC) - timedelta(days=days_ago)
    call = make_call(
        start_ts=start.timestamp(),
        recording=name,
        caller="89161234567",
        disposition=Disposition.ANSWERED,
        agent="101",
        talk_s=40.0,
    )
    (folder / name).write_bytes(b"RIFF")
    with session_factory.begin() as s:
        persist_call(s, call=call)
    return call.linkedid


def test_retention_dry_run_then_real_run(
    db_url, session_factory, make_call, recordings_dir, monkeypatch, capsys
) -> None:
    _recorded_call(session_factory, make_call, recordings_dir, days_ago=40, name="old.wav")
    _recorded_call(session_factory, make_call, recordings_dir, days_ago=2, name="new.wav")
    monkeypatch.setenv("RETENTION_DAYS", "30")

    assert main(["retention", "--dry-run", "--db", db_url]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True and dry["files"] == ["old.wav"]
    assert (recordings_dir / "old.wav").exists()

    assert main(["retention", "--db", db_url]) == 0
    real = json.loads(capsys.readouterr().out)
    assert real["recordings_deleted"] == 1 and real["files"] == ["old.wav"]
    assert sorted(p.name for p in recordings_dir.iterdir()) == ["new.wav"]
    now = datetime.now(UTC)
    with session_factory() as s:
        (entry,) = list_access(s, since=now - timedelta(1), until=now + timedelta(1), limit=5)
    assert entry.action == "retention" and entry.user.startswith("cli:")


def test_retention_with_zero_days_does_nothing(
    db_url, session_factory, make_call, recordings_dir, capsys
) -> None:
    _recorded_call(session_factory, make_call, recordings_dir, days_ago=400, name="a.wav")
    assert main(["retention", "--db", db_url]) == 0
    assert "keep forever" in capsys.readouterr().err
    assert (recordings_dir / "a.wav").exists()
    assert main(["retention", "--days", "-3", "--db", db_url]) == 2
    assert "--days must be 0 or more" in capsys.readouterr().err


def test_bad_retention_setting_names_the_variable(db_url, recordings_dir, monkeypatch, capsys):
    monkeypatch.setenv("RETENTION_DAYS", "a month")
    assert main(["retention", "--db", db_url]) == 2
    assert "RETENTION_DAYS must be an integer" in capsys.readouterr().err


def test_forget_prints_counts_never_the_number(
    db_url, session_factory, make_call, recordings_dir, capsys
) -> None:
    linkedid = _recorded_call(session_factory, make_call, recordings_dir, days_ago=1, name="r.wav")
    assert main(["forget", "8 916 123-45-67", "--keep-do-not-call", "--db", db_url]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    assert printed["phone_hash"] == phone_hash("+79161234567")
    assert printed["calls"] == 1 and printed["recordings"] == 1 and printed["do_not_call"]
    assert "9161234567" not in out
    with session_factory() as s:
        assert s.scalar(select(Call.phone).where(Call.linkedid == linkedid)) is None
        assert is_do_not_call(s, phone="+79161234567")


def test_forget_refuses_what_is_not_a_number(db_url, session_factory, recordings_dir, capsys):
    assert main(["forget", "Иванова", "--db", db_url]) == 2
    assert "not a phone number" in capsys.readouterr().err
