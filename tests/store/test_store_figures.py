"""/metrics reads open tasks, callback originates by outcome and transcription jobs from the
store, so every process's work shows up wherever /metrics is scraped."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.metrics import Metrics
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task, TaskAttempt
from callcenter.store.models_speech import Transcript
from callcenter.store.queries import store_figures

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _task(status: str) -> Task:
    return Task(
        phone="+79161234567",
        reason="missed_call",
        kind="service",
        status=status,
        opened_at=NOW,
        due_at=NOW,
    )


def test_store_figures_count_originates_by_outcome_and_transcripts_by_status(db_url):
    upgrade(db_url)
    engine = create_db_engine(db_url)
    try:
        sessions = create_session_factory(engine)
        with sessions() as session:
            empty = store_figures(session)
        assert (empty.open_tasks, empty.originates_by_outcome) == (0, {})
        assert (empty.transcripts_by_status, empty.transcribed_audio_s) == ({}, 0.0)

        with sessions.begin() as session:
            open_task, closed_task = _task("open"), _task("closed")
            session.add_all([open_task, closed_task])
            session.flush()
            for n, outcome in enumerate(["no_answer", "no_answer", "answered", None]):
                session.add(
                    TaskAttempt(
                        task_id=open_task.id, started_at=NOW, outcome=outcome, action_id=f"a{n}"
                    )
                )
            for n, (status, duration) in enumerate(
                [("done", 12.5), ("done", 7.5), ("failed", None), ("queued", None)]
            ):
                session.add(
                    Transcript(linkedid=f"l{n}", status=status, duration_s=duration, created_at=NOW)
                )
        with sessions() as session:
            figures = store_figures(session)
    finally:
        engine.dispose()

    assert figures.open_tasks == 1
    assert figures.originates_by_outcome == {"no_answer": 2, "answered": 1, "pending": 1}
    assert figures.transcripts_by_status == {"done": 2, "failed": 1, "queued": 1}
    assert figures.transcribed_audio_s == 20.0

    metrics = Metrics()
    metrics.watch_store(lambda: figures)
    text = metrics.render().decode()
    assert 'callcenter_originates_total{outcome="no_answer"} 2.0' in text
    assert 'callcenter_originates_total{outcome="pending"} 1.0' in text
    assert 'callcenter_transcriptions{status="failed"} 1.0' in text
    assert "callcenter_transcribed_audio_seconds 20.0" in text
    assert "callcenter_open_tasks 1.0" in text


def test_a_failing_store_source_leaves_the_other_metrics_in_the_scrape():
    def broken():
        raise RuntimeError("database down")

    metrics = Metrics()
    metrics.watch_store(broken)
    metrics.watch_socketio_clients(lambda: 3)
    text = metrics.render().decode()
    assert "callcenter_open_tasks" not in text
    assert "callcenter_socketio_clients 3.0" in text
