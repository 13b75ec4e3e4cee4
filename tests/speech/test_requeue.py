"""The re-queue sweep: recorded calls whose transcription failed or was lost are queued again,
at most N times, never twice within the waiting time; both back-ends, and once end to end
through Huey with the real decoder."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.calls.model import Disposition
from callcenter.config import Settings
from callcenter.jobs import build_huey
from callcenter.maintenance import register_maintenance_tasks, requeue_transcriptions
from callcenter.speech.jobs import register_speech_tasks
from callcenter.store import speech
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.queries import persist_call
from callcenter.store.requeue import requeue_count
from tests.speech.conftest import SHORTEST

ENDED = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
AFTER = 30


def _call(session_factory, make_call, *, recording="r.wav", ended=ENDED):
    call = make_call(
        start_ts=ended.timestamp() - 60,
        end_ts=ended.timestamp(),
        recording=recording,
        disposition=Disposition.ANSWERED,
        agent="101",
        talk_s=50.0,
    )
    with session_factory.begin() as s:
        persist_call(s, call=call)
    return call.linkedid


def _transcript(session_factory, linkedid, status):
    with session_factory.begin() as s:
        row = speech.start_transcript(s, linkedid=linkedid, recording="r.wav", model="m", now=ENDED)
        if status == "failed":
            speech.fail_transcript(
                s, linkedid=linkedid, recording="r.wav", model="m", error="boom", now=ENDED
            )
        elif status in ("done", "no_audio"):
            speech.finish_transcript(
                s, row=row, status=status, text="", duration_s=1.0, words=[], now=ENDED
            )


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.queued: list[str] = []
        self.fail = fail

    def __call__(self, linkedid: str) -> None:
        if self.fail:
            raise ConnectionError("Redis is away")
        self.queued.append(linkedid)


def _sweep(session_factory, enqueue, *, at, max_requeues=3):
    return requeue_transcriptions(
        session_factory, enqueue=enqueue, after_minutes=AFTER, max_requeues=max_requeues, now=at
    )


def test_lost_failed_and_stuck_jobs_are_queued_again_finished_ones_not(
    session_factory, make_call
) -> None:
    lost = _call(session_factory, make_call)
    failed = _call(session_factory, make_call)
    stuck = _call(session_factory, make_call)
    done = _call(session_factory, make_call)
    silent = _call(session_factory, make_call)
    _call(session_factory, make_call, recording=None)  # nothing to transcribe
    recent = _call(session_factory, make_call, ended=ENDED + timedelta(minutes=50))
    _transcript(session_factory, failed, "failed")
    _transcript(session_factory, stuck, "queued")
    _transcript(session_factory, done, "done")
    _transcript(session_factory, silent, "no_audio")
    recorder = Recorder()
    result = _sweep(session_factory, recorder, at=ENDED + timedelta(minutes=AFTER + 30))
    assert sorted(result.requeued) == sorted([lost, failed, stuck])
    assert sorted(recorder.queued) == sorted([lost, failed, stuck])
    assert recent not in recorder.queued
    with session_factory() as s:
        assert requeue_count(s, linkedid=lost) == 1
        assert requeue_count(s, linkedid=done) == 0


def test_a_second_sweep_at_once_queues_nothing_and_the_limit_holds(
    session_factory, make_call
) -> None:
    lost = _call(session_factory, make_call)
    recorder = Recorder()
    at = ENDED + timedelta(minutes=AFTER + 1)
    assert _sweep(session_factory, recorder, at=at).requeued == (lost,)
    assert _sweep(session_factory, recorder, at=at + timedelta(minutes=5)).requeued == ()
    # Each waiting time later it comes back, until the limit of 3.
    for n in range(1, 6):
        _sweep(session_factory, recorder, at=at + timedelta(minutes=(AFTER + 1) * n))
    assert recorder.queued == [lost, lost, lost]
    with session_factory() as s:
        assert requeue_count(s, linkedid=lost) == 3


def test_a_finished_transcript_stops_the_retries(session_factory, make_call) -> None:
    linkedid = _call(session_factory, make_call)
    recorder = Recorder()
    _sweep(session_factory, recorder, at=ENDED + timedelta(minutes=AFTER + 1))
    _transcript(session_factory, linkedid, "done")
    _sweep(session_factory, recorder, at=ENDED + timedelta(hours=5))
    assert recorder.queued == [linkedid]


def test_a_queue_failure_is_logged_and_retried_later(session_factory, make_call, caplog) -> None:
    linkedid = _call(session_factory, make_call)
    at = ENDED + timedelta(minutes=AFTER + 1)
    with caplog.at_level(logging.ERROR, logger="callcenter.maintenance"):
        result = _sweep(session_factory, Recorder(fail=True), at=at)
    assert result.requeued == () and result.failed_to_queue == (linkedid,)
    assert "could not queue the transcription" in caplog.text
    later = Recorder()
    _sweep(session_factory, later, at=at + timedelta(minutes=AFTER + 1))
    assert later.queued == [linkedid]


def test_bad_arguments_are_refused(session_factory) -> None:
    with pytest.raises(ValueError, match="after_minutes must be at least 1"):
        requeue_transcriptions(session_factory, enqueue=Recorder(), after_minutes=0, max_requeues=1)
    with pytest.raises(ValueError, match="max_requeues must be 0 or more"):
        requeue_transcriptions(
            session_factory, enqueue=Recorder(), after_minutes=5, max_requeues=-1
        )
    assert _sweep(session_factory, Recorder(), at=ENDED, max_requeues=0).requeued == ()


def test_end_to_end_a_lost_job_is_transcribed_by_the_sweep(
    tmp_path: Path, recordings, model_path, make_call
) -> None:
    """SQLite, Huey in immediate mode, the real transcription task and decoder."""
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    folder = tmp_path / "monitor"
    folder.mkdir()
    shutil.copy(recordings[SHORTEST], folder / SHORTEST)
    settings = Settings(
        database_url=url,
        recordings_dir=str(folder),
        vosk_model_path=model_path,
        transcribe_requeue_after_min=1,
    )
    huey = build_huey(settings, immediate=True)
    speech_tasks = register_speech_tasks(huey, settings, session_factory=factory)
    tasks = register_maintenance_tasks(
        huey, settings, transcribe=speech_tasks.transcribe_call, session_factory=factory
    )
    try:
        ended = datetime.now(UTC) - timedelta(minutes=10)
        linkedid = _call(factory, make_call, recording=SHORTEST, ended=ended)
        tasks.requeue()  # immediate mode: the sweep runs, and the job it queues runs too
        with factory() as s:
            view = speech.view_transcript(s, linkedid=linkedid)
        assert view is not None and view.status == "done" and view.words
        tasks.requeue()  # finished: nothing more to do
        with factory() as s:
            assert requeue_count(s, linkedid=linkedid) == 1
    finally:
        speech_tasks.close()
        tasks.close()
        engine.dispose()


def test_the_worker_registers_retention_and_the_requeue_sweep(tmp_path, monkeypatch) -> None:
    """`callcenter worker` (jobs.run_worker) schedules both maintenance tasks on its Huey."""
    import callcenter.jobs as jobs

    seen: list = []

    class FakeConsumer:
        def __init__(self, huey, **kwargs) -> None:
            seen.append(huey)

        def run(self) -> None:
            return None

    monkeypatch.setattr(jobs, "WorkerConsumer", FakeConsumer)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'cc.db'}", huey_path=str(tmp_path / "huey.db")
    )
    assert jobs.run_worker(settings, workers=1) == 0
    (huey,) = seen
    at_night = datetime(2026, 11, 23, 1, 17)  # Huey compares periodic schedules in UTC
    names = {task.name for task in huey.read_periodic(at_night)}
    assert "retention" in names and "transcription_requeue" not in names  # 17 is not */5
    names = {task.name for task in huey.read_periodic(datetime(2026, 11, 23, 9, 3))}
    assert "retention" not in names and "transcription_requeue" not in names
    names = {task.name for task in huey.read_periodic(datetime(2026, 11, 23, 9, 5))}
    assert "transcription_requeue" in names
