"""`callcenter worker` stops gracefully on SIGTERM (docker stop, systemd): the job it is
running finishes and is stored; no new job starts.

The job is a real transcription (real Vosk, real recordings joined into a long file), so the
signal arrives while the decoder is busy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import wave
from pathlib import Path
from time import monotonic, sleep

import pytest

from callcenter.calls.model import Disposition
from callcenter.config import Settings
from callcenter.jobs import build_huey
from callcenter.speech.jobs import TranscriptionNotifier, register_speech_tasks
from callcenter.store import speech as store
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.queries import persist_call

ROOT = Path(__file__).resolve().parents[2]
LONG = "long-20261122-180000-79161234567-1795370000.1.wav"


def join_recordings(recordings: dict[str, Path], out: Path, *, times: int) -> Path:
    """One 8 kHz mono WAV made of the shared recordings, repeated ``times`` times."""
    frames = []
    for _ in range(times):
        for path in sorted(recordings.values()):
            with wave.open(str(path), "rb") as w:
                params = w.getparams()
                frames.append(w.readframes(w.getnframes()))
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        for chunk in frames:
            w.writeframes(chunk)
    return out


@pytest.mark.timeout(240)
def test_sigterm_lets_the_running_transcription_finish(
    tmp_path: Path, make_call, recordings: dict[str, Path], model_path: str
) -> None:
    folder = tmp_path / "monitor"
    folder.mkdir()
    join_recordings(recordings, folder / LONG, times=2)  # about 90 s of audio
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    settings = Settings(database_url=url, recordings_dir=str(folder), vosk_model_path=model_path)
    tasks = register_speech_tasks(build_huey(settings), settings, session_factory=factory)
    call = make_call(
        caller="89161234567", disposition=Disposition.ANSWERED, agent="101", recording=LONG
    )
    with factory.begin() as session:
        persist_call(session, call=call)
    TranscriptionNotifier(tasks).call_ended(call)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_"))}
    env.update(
        DATABASE_URL=url,
        AMI_SECRET="worker-test-secret",
        AMI_PORT="9",
        RECORDINGS_DIR=str(folder),
        VOSK_MODEL_PATH=model_path,
        WORKER_THREADS="1",
    )
    log = tmp_path / "worker.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = monotonic() + 90
        while True:  # the job creates the transcript row ("queued") when it starts decoding
            assert proc.poll() is None, log.read_text()
            assert monotonic() < deadline, "the job never started"
            with factory() as session:
                row = store.get_transcript(session, linkedid=call.linkedid)
            if row is not None:
                break
            sleep(0.05)
        assert row.status == "queued"  # the decoder is still busy with 90 s of audio
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log.read_text()
    with factory() as session:
        row = store.get_transcript(session, linkedid=call.linkedid)
        assert row is not None and row.status == "done", row and (row.status, row.error)
        assert row.duration_s == pytest.approx(2 * (8.8 + 14.6 + 20.4), abs=0.5)
    engine.dispose()
