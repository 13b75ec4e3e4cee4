"""Retention: recordings and transcripts of calls older than N days go; calls and counts stay.

Real files in tmp_path, both back-ends (db_url)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.calls.model import Disposition
from callcenter.privacy.retention import SYSTEM_USER, run_retention
from callcenter.store import speech
from callcenter.store.audit import list_access
from callcenter.store.models import Call
from callcenter.store.models_corrections import TagCorrection
from callcenter.store.models_speech import CallTag, Transcript
from callcenter.store.queries import persist_call

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
DAYS = 30


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


def _store_call(session_factory, make_call, recordings_dir, *, age_days, name, transcript=True):
    started = NOW - timedelta(days=age_days)
    call = make_call(
        start_ts=started.timestamp(),
        recording=name,
        disposition=Disposition.ANSWERED,
        agent="101",
        talk_s=61.0,
    )
    if name:
        (recordings_dir / name).write_bytes(b"RIFF" + b"\0" * 60)
    with session_factory.begin() as s:
        persist_call(s, call=call)
        if transcript:
            row = speech.start_transcript(
                s, linkedid=call.linkedid, recording=name, model="m", now=started
            )
            speech.finish_transcript(
                s,
                row=row,
                status="done",
                text="дорого",
                duration_s=61.0,
                words=[{"word": "дорого", "start": 0.1, "end": 0.5, "conf": 1.0}],
                now=started,
            )
            speech.add_tags(
                s, linkedid=call.linkedid, tags={"price_objection"}, source="tagger", now=started
            )
    return call.linkedid


def _counts(session_factory):
    with session_factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Call)),
            s.scalar(select(func.count()).select_from(Transcript)),
            s.scalar(select(func.count()).select_from(CallTag)),
        )


def test_old_recordings_and_transcripts_go_calls_and_new_ones_stay(
    session_factory, make_call, recordings_dir, caplog
) -> None:
    old = _store_call(session_factory, make_call, recordings_dir, age_days=45, name="old-1.wav")
    old2 = _store_call(session_factory, make_call, recordings_dir, age_days=31, name="old-2.wav")
    new = _store_call(session_factory, make_call, recordings_dir, age_days=29, name="new-1.wav")
    with caplog.at_level(logging.INFO, logger="callcenter.privacy.retention"):
        report = run_retention(session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW)
    assert report is not None
    assert sorted(report.recordings_deleted) == ["old-1.wav", "old-2.wav"]
    assert report.transcripts_deleted == 2 and report.tags_deleted == 2
    assert report.calls_cleared == 2
    assert sorted(p.name for p in recordings_dir.iterdir()) == ["new-1.wav"]
    # Calls keep their counts, dispositions and durations; only the recording name is gone.
    assert _counts(session_factory) == (3, 1, 1)
    with session_factory() as s:
        calls = {c.linkedid: c for c in s.scalars(select(Call))}
        assert speech.view_transcript(s, linkedid=new) is not None
        assert speech.view_transcript(s, linkedid=old) is None
    assert calls[old].recording is None and calls[old2].recording is None
    assert calls[new].recording == "new-1.wav"
    assert {c.disposition for c in calls.values()} == {"answered"}
    assert calls[old].talk_s == 61.0
    # The log names every file and the totals.
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "old-1.wav" in messages and "old-2.wav" in messages
    assert "deleted 2 recording(s), 2 transcript(s), 2 tag(s)" in messages
    # And the run is in the audit log.
    with session_factory() as s:
        (entry,) = list_access(s, since=NOW - timedelta(days=1), until=NOW + timedelta(1), limit=5)
    assert (entry.user, entry.action) == (SYSTEM_USER, "retention")
    assert entry.detail == {"days": DAYS, "recordings": 2, "transcripts": 2, "tags": 2}


def test_dry_run_deletes_nothing_and_says_what_would_go(
    session_factory, make_call, recordings_dir
) -> None:
    _store_call(session_factory, make_call, recordings_dir, age_days=40, name="old.wav")
    _store_call(session_factory, make_call, recordings_dir, age_days=1, name="new.wav")
    before = _counts(session_factory)
    report = run_retention(
        session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW, dry_run=True
    )
    assert report is not None and report.dry_run
    assert report.recordings_deleted == ["old.wav"]
    assert report.transcripts_deleted == 1 and report.tags_deleted == 1
    assert sorted(p.name for p in recordings_dir.iterdir()) == ["new.wav", "old.wav"]
    assert _counts(session_factory) == before
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Call).where(Call.recording.is_(None))) == 0
        assert (
            list_access(s, since=NOW - timedelta(days=1), until=NOW + timedelta(1), limit=5) == []
        )


def test_zero_days_keeps_everything(session_factory, make_call, recordings_dir) -> None:
    _store_call(session_factory, make_call, recordings_dir, age_days=4000, name="ancient.wav")
    assert run_retention(session_factory, recordings_dir=recordings_dir, days=0, now=NOW) is None
    assert (recordings_dir / "ancient.wav").exists()
    assert _counts(session_factory) == (1, 1, 1)


def test_second_run_finds_nothing_and_missing_files_are_cleared(
    session_factory, make_call, recordings_dir
) -> None:
    gone = _store_call(session_factory, make_call, recordings_dir, age_days=50, name="gone.wav")
    (recordings_dir / "gone.wav").unlink()  # someone removed it by hand
    first = run_retention(session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW)
    assert first is not None
    assert first.recordings_missing == ["gone.wav"] and first.recordings_deleted == []
    with session_factory() as s:
        assert s.scalar(select(Call.recording).where(Call.linkedid == gone)) is None
    second = run_retention(session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW)
    assert second is not None and not second.anything
    assert second.as_dict()["files"] == []


def test_a_name_never_reaches_outside_the_recordings_dir(
    session_factory, make_call, recordings_dir, tmp_path
) -> None:
    outside = tmp_path / "keep-me.wav"
    outside.write_bytes(b"precious")
    _store_call(
        session_factory, make_call, recordings_dir, age_days=90, name=None, transcript=False
    )
    with session_factory.begin() as s:
        s.execute(Call.__table__.update().values(recording="../keep-me.wav"))
    report = run_retention(session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW)
    assert report is not None and report.recordings_missing == ["keep-me.wav"]
    assert outside.read_bytes() == b"precious"


def test_supervisors_tag_corrections_go_with_the_transcript(
    session_factory, make_call, recordings_dir
) -> None:
    old = _store_call(session_factory, make_call, recordings_dir, age_days=60, name="o.wav")
    new = _store_call(session_factory, make_call, recordings_dir, age_days=2, name="n.wav")
    with session_factory.begin() as s:
        for linkedid in (old, new):
            s.add(TagCorrection(linkedid=linkedid, tag="booked", action="add", by="vera", at=NOW))
    report = run_retention(session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW)
    assert report is not None and report.tags_deleted == 2  # the tagger's tag + the correction
    with session_factory() as s:
        assert list(s.scalars(select(TagCorrection.linkedid))) == [new]


def test_small_batches_still_cover_every_call(session_factory, make_call, recordings_dir) -> None:
    for n in range(5):
        _store_call(session_factory, make_call, recordings_dir, age_days=40 + n, name=f"r{n}.wav")
    report = run_retention(
        session_factory, recordings_dir=recordings_dir, days=DAYS, now=NOW, batch=2
    )
    assert report is not None
    assert sorted(report.recordings_deleted) == [f"r{n}.wav" for n in range(5)]
    assert report.transcripts_deleted == 5
    assert list(recordings_dir.iterdir()) == []


def test_bad_arguments_are_refused(session_factory, recordings_dir) -> None:
    with pytest.raises(ValueError, match="0 \\(keep forever\\) or more"):
        run_retention(session_factory, recordings_dir=recordings_dir, days=-1, now=NOW)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        run_retention(session_factory, recordings_dir=recordings_dir, days=1, now=NOW, batch=0)
