"""The transcription pipeline: a stored call's recording → real Vosk → real tagger → store →
what the tags do; on SQLite and PostgreSQL, through Huey (immediate mode) from the notifier.

Recognition is never faked: every job decodes a real recording with the real model. Tests of
what tags do either feed the real tagger a text of their own (``tagger=``, the tagger's input
only) or call ``act_on_tags`` directly with a tag set.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from time import monotonic, sleep
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.calls.model import CallRecord, Disposition
from callcenter.config import Settings
from callcenter.jobs import build_huey
from callcenter.speech.jobs import (
    TranscriptionNotifier,
    act_on_tags,
    process_recording,
    register_speech_tasks,
)
from callcenter.speech.tagger import tag_text
from callcenter.store import speech as store
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.dialer import save_clinic_schedule
from callcenter.store.models import Task, TaskEvent
from callcenter.store.models_patients import ConsentRecord, Patient, PatientPhone
from callcenter.store.models_speech import CallTag, PhoneFlag, Transcript
from callcenter.store.patients import consent_state_for_phone, is_do_not_call, record_consent
from callcenter.store.queries import persist_call
from callcenter.store.users import record_outcome
from callcenter.tasks.schedule import ClinicSchedule
from tests.speech.conftest import RECORDING_DURATIONS_S, SHORTEST, WAVE_FORMAT_PCM, wav_header

# Friday 2026-11-20 17:00 Moscow; the default schedule opens Saturday at 10:00 Moscow.
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SATURDAY_MORNING = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
PHONE = "+79161234567"
CALLER = "89161234567"

CallFactory = Callable[..., CallRecord]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recordings_dir(tmp_path: Path, recordings: dict[str, Path]) -> Path:
    """A MixMonitor folder holding copies of the shared recordings."""
    folder = tmp_path / "monitor"
    folder.mkdir()
    for name, path in recordings.items():
        shutil.copy(path, folder / name)
    return folder


def store_call(
    session_factory: sessionmaker[Session], make_call: CallFactory, **fields: Any
) -> CallRecord:
    """Store an answered call from the demo patient's number (opens no task)."""
    fields.setdefault("caller", CALLER)
    fields.setdefault("disposition", Disposition.ANSWERED)
    fields.setdefault("agent", "101")
    fields.setdefault("talk_s", 8.8)
    call = make_call(**fields)
    with session_factory.begin() as session:
        persist_call(session, call=call)
    return call


def add_patient(session: Session, *phones: str) -> int:
    patient = Patient(full_name="Иванова Мария", birth_date=date(1984, 3, 5))
    patient.phones = [PatientPhone(phone=phone) for phone in phones]
    session.add(patient)
    session.flush()
    return patient.id


def snapshot(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything the job may write, to compare a re-run against."""
    with session_factory() as session:
        transcripts = session.execute(
            select(Transcript.linkedid, Transcript.status, Transcript.text, Transcript.finished_at)
        ).all()
        return {
            "transcripts": sorted(transcripts),
            "tags": sorted(session.execute(select(CallTag.linkedid, CallTag.tag)).all()),
            "tasks": sorted(
                session.execute(select(Task.id, Task.reason, Task.status, Task.due_at)).all()
            ),
            "task_events": session.scalar(select(func.count()).select_from(TaskEvent)),
            "consent": session.scalar(select(func.count()).select_from(ConsentRecord)),
            "flags": session.scalar(select(func.count()).select_from(PhoneFlag)),
        }


def run(
    session_factory: sessionmaker[Session],
    linkedid: str,
    recordings_dir: Path,
    model_path: str,
    **kwargs: Any,
) -> Any:
    return process_recording(
        session_factory,
        linkedid=linkedid,
        recordings_dir=recordings_dir,
        model_path=model_path,
        now=NOW,
        **kwargs,
    )


# -- end to end: real decoder, real tagger ---------------------------------------------------


def test_job_transcribes_tags_and_stores_a_recording_once(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    model_path: str,
) -> None:
    call = store_call(session_factory, make_call, recording=SHORTEST)

    result = run(session_factory, call.linkedid, recordings_dir, model_path)

    assert (result.status, result.error, result.skipped) == ("done", None, False)
    with session_factory() as session:
        view = store.view_transcript(session, linkedid=call.linkedid)
        assert view is not None
        assert view.status == "done"
        assert view.duration_s == pytest.approx(RECORDING_DURATIONS_S[SHORTEST], abs=0.1)
        assert view.words, "the recording has speech"
        assert view.text == " ".join(w["word"] for w in view.words)
        previous_end = 0.0
        for word in view.words:
            assert set(word) == {"word", "start", "end", "conf"}
            assert previous_end <= word["start"] < word["end"] <= view.duration_s
            previous_end = word["end"]
        assert view.finished_at == NOW
        assert view.model == Path(model_path).name
        # The stored tags are the real tagger's tags of the real transcript.
        assert list(view.tags) == sorted(tag_text(view.text or ""))
        assert result.tags == view.tags
    before = snapshot(session_factory)

    again = run(session_factory, call.linkedid, recordings_dir, model_path)

    assert again.skipped and again.status == "done" and again.text == result.text
    assert snapshot(session_factory) == before


def test_tags_from_the_transcript_open_an_objection_followup_once(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    model_path: str,
) -> None:
    call = store_call(session_factory, make_call, recording=SHORTEST)
    heard: list[str] = []

    def tagger(text: str) -> frozenset[str]:
        heard.append(text)  # the recognised text reaches the tagger…
        return tag_text("Ой, это дорого. Я подумаю.")  # …which is given the patient's words

    result = run(session_factory, call.linkedid, recordings_dir, model_path, tagger=tagger)

    assert heard == [result.text] and result.text
    assert result.tags == ("price_objection", "thinking")
    with session_factory() as session:
        [task] = session.scalars(select(Task)).all()
        assert (task.phone, task.reason, task.kind, task.status) == (
            PHONE,
            "objection_followup",
            "marketing",
            "open",
        )
        assert task.due_at == SATURDAY_MORNING
        assert task.first_call_linkedid == call.linkedid
        assert "10%" in (task.events[0].detail or "")
    before = snapshot(session_factory)

    run(session_factory, call.linkedid, recordings_dir, model_path, tagger=tagger)

    assert snapshot(session_factory) == before


# -- bad input -------------------------------------------------------------------------------


def test_missing_file_is_recorded_as_failed_and_a_later_run_succeeds(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    recordings: dict[str, Path],
    model_path: str,
) -> None:
    call = store_call(session_factory, make_call, recording="q-20261122-000000-missing.wav")

    result = run(session_factory, call.linkedid, recordings_dir, model_path)

    assert result.status == "failed" and "no such file" in (result.error or "")
    with session_factory() as session:
        row = store.get_transcript(session, linkedid=call.linkedid)
        assert row is not None
        assert (row.status, row.finished_at) == ("failed", NOW)
        assert "no such file" in (row.error or "")
        assert store.list_tags(session, linkedid=call.linkedid) == []

    shutil.copy(recordings[SHORTEST], recordings_dir / "q-20261122-000000-missing.wav")
    retried = run(session_factory, call.linkedid, recordings_dir, model_path)

    assert (retried.status, retried.error) == ("done", None)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00garbage" * 100, "not a recording"), (b"", "empty file")],
    ids=["garbage", "empty"],
)
def test_garbage_audio_is_recorded_as_failed(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    model_path: str,
    content: bytes,
    message: str,
) -> None:
    (recordings_dir / "bad.wav").write_bytes(content)
    call = store_call(session_factory, make_call, recording="bad.wav")

    result = run(session_factory, call.linkedid, recordings_dir, model_path)

    assert result.status == "failed" and message in (result.error or "")
    with session_factory() as session:
        view = store.view_transcript(session, linkedid=call.linkedid)
        assert view is not None and view.status == "failed" and message in (view.error or "")


def test_header_only_wav_is_stored_as_no_audio_without_tags(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    model_path: str,
) -> None:
    header = wav_header(tag=WAVE_FORMAT_PCM, channels=1, rate=8000, bits=16, data_size=0)
    (recordings_dir / "silent.wav").write_bytes(header)
    call = store_call(session_factory, make_call, recording="silent.wav")

    result = run(session_factory, call.linkedid, recordings_dir, model_path, tagger=_never)

    assert (result.status, result.tags) == ("no_audio", ())
    with session_factory() as session:
        view = store.view_transcript(session, linkedid=call.linkedid)
        assert view is not None
        assert (view.status, view.text, view.duration_s, view.words, view.tags) == (
            "no_audio",
            "",
            0.0,
            [],
            (),
        )


def _never(text: str) -> frozenset[str]:
    raise AssertionError("a recording without audio is not tagged")


def test_unknown_call_or_call_without_recording_fails_without_decoding(
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
) -> None:
    call = store_call(session_factory, make_call, recording=None)
    no_model = str(recordings_dir / "no-model")

    unknown = run(session_factory, "1795369999.1", recordings_dir, no_model)
    silent = run(session_factory, call.linkedid, recordings_dir, no_model)

    assert (unknown.status, unknown.error, unknown.call_missing) == ("failed", "no such call", True)
    assert (silent.status, silent.error, silent.call_missing) == (
        "failed",
        "the call has no recording",
        False,
    )


# -- what tags do (act_on_tags with a tag set) -----------------------------------------------


def act(session_factory: sessionmaker[Session], linkedid: str, *tags: str) -> list[Any]:
    with session_factory.begin() as session:
        return act_on_tags(session, linkedid=linkedid, tags=set(tags), now=NOW)


def open_tasks(session_factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with session_factory() as session:
        rows = session.execute(
            select(Task.phone, Task.reason, Task.kind).where(Task.status == "open")
        )
        return sorted(tuple(row) for row in rows)


def test_callback_request_opens_a_service_task_the_next_working_morning_of_the_clinic(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    # The stored clinic schedule counts: closed on Saturdays, opens at 08:00 on Monday.
    hours = ((time(8, 0), time(20, 0)),) * 5 + (None, None)
    with session_factory.begin() as session:
        save_clinic_schedule(
            session, schedule=ClinicSchedule(hours=hours), changed_by="test", at=NOW
        )
    call = store_call(session_factory, make_call, recording="x.wav")

    act(session_factory, call.linkedid, "callback_requested")

    with session_factory() as session:
        [task] = session.scalars(select(Task)).all()
        assert (task.reason, task.kind, task.status) == ("callback_requested", "service", "open")
        assert task.due_at == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday 08:00 Moscow


def test_booked_closes_the_open_callback_tasks_of_the_patients_numbers(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    with session_factory.begin() as session:
        add_patient(session, PHONE, "+79035550101", "+79035550102")
    # Dropped calls from two numbers: a missed_call task on each.
    for caller in (CALLER, "89035550101"):
        dropped = make_call(caller=caller, start_ts=1_795_369_000.0)
        with session_factory.begin() as session:
            persist_call(session, call=dropped)
    assert len(open_tasks(session_factory)) == 2
    # The booking is made from the patient's third number.
    call = store_call(session_factory, make_call, caller="89035550102", recording="x.wav")

    act(session_factory, call.linkedid, "booked", "price_objection")

    assert open_tasks(session_factory) == []
    with session_factory() as session:
        reasons = set(session.scalars(select(Task.close_reason)))
        assert reasons == {"booked"}


def test_do_not_call_withdraws_marketing_consent_at_once_and_lists_the_number(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    with session_factory.begin() as session:
        patient_id = add_patient(session, PHONE)
        for kind in ("pd", "marketing"):
            record_consent(
                session,
                patient_id=patient_id,
                kind=kind,
                action="given",
                at=datetime(2026, 1, 1, tzinfo=UTC),
                by="reception",
                channel="paper",
            )
    first = store_call(session_factory, make_call, recording="a.wav")
    act(session_factory, first.linkedid, "price_objection")
    assert open_tasks(session_factory) == [(PHONE, "objection_followup", "marketing")]
    call = store_call(session_factory, make_call, recording="b.wav")

    act(session_factory, call.linkedid, "do_not_call")
    act(session_factory, call.linkedid, "do_not_call")  # a second run records nothing twice

    assert open_tasks(session_factory) == []
    with session_factory() as session:
        state = consent_state_for_phone(session, phone=PHONE, at=NOW)
        assert state is not None
        assert (state.pd_consent, state.marketing_consent, state.do_not_call) == (
            True,
            False,
            True,
        )
        assert is_do_not_call(session, phone=PHONE)
        withdrawals = session.scalars(
            select(ConsentRecord).where(ConsentRecord.action == "withdrawn")
        ).all()
        assert [(r.kind, r.by, r.at) for r in withdrawals] == [("marketing", "tagger", NOW)]


def test_do_not_call_on_a_booked_call_keeps_the_number_callable_for_service(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    with session_factory.begin() as session:
        add_patient(session, PHONE)
    call = store_call(session_factory, make_call, recording="a.wav")

    act(session_factory, call.linkedid, "do_not_call", "booked")

    with session_factory() as session:
        state = consent_state_for_phone(session, phone=PHONE, at=NOW)
        assert state is not None and not state.marketing_consent
        assert not is_do_not_call(session, phone=PHONE)


def test_wrong_number_flags_the_phone_once(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    call = store_call(session_factory, make_call, recording="a.wav")

    act(session_factory, call.linkedid, "wrong_number", "thinking")
    act(session_factory, call.linkedid, "wrong_number")

    with session_factory() as session:
        assert store.phone_flags(session, phone=CALLER) == ["wrong_number"]
    assert open_tasks(session_factory) == []


def test_the_operators_recorded_outcome_wins_over_the_tags(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    call = store_call(session_factory, make_call, recording="a.wav")
    with session_factory.begin() as session:
        record_outcome(
            session,
            linkedid=call.linkedid,
            operator="operator101",
            outcome="not_interested",
            detail=None,
            note=None,
            at=NOW,
        )

    assert act(session_factory, call.linkedid, "price_objection", "wrong_number") == []

    assert open_tasks(session_factory) == []
    with session_factory() as session:
        assert store.phone_flags(session, phone=CALLER) == []


def test_withheld_numbers_get_tags_but_no_actions(
    session_factory: sessionmaker[Session], make_call: CallFactory
) -> None:
    call = store_call(session_factory, make_call, caller="anonymous", recording="a.wav")

    assert act(session_factory, call.linkedid, "callback_requested") == []
    assert open_tasks(session_factory) == []


# -- Huey: notifier → task → job -------------------------------------------------------------


def test_a_call_ending_with_a_recording_is_transcribed_through_huey(
    db_url: str,
    session_factory: sessionmaker[Session],
    make_call: CallFactory,
    recordings_dir: Path,
    model_path: str,
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=db_url,
        recordings_dir=str(recordings_dir),
        vosk_model_path=model_path,
        huey_path=str(tmp_path / "huey.db"),
    )
    huey = build_huey(settings, immediate=True)
    tasks = register_speech_tasks(huey, settings)
    notifier = TranscriptionNotifier(tasks)
    call = store_call(session_factory, make_call, recording=SHORTEST)
    without = store_call(session_factory, make_call, recording=None)

    try:
        notifier.call_ended(call)
        notifier.call_ended(without)
    finally:
        tasks.close()

    with session_factory() as session:
        view = store.view_transcript(session, linkedid=call.linkedid)
        assert view is not None and view.status == "done" and view.words
        assert store.get_transcript(session, linkedid=without.linkedid) is None


@pytest.mark.timeout(120)
def test_the_worker_process_transcribes_what_the_listener_queued(
    tmp_path: Path, make_call: CallFactory, recordings_dir: Path, model_path: str
) -> None:
    """Embedded mode across processes: the notifier queues in SqliteHuey, `callcenter worker`
    (another process) runs the job and stores the transcript."""
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    settings = Settings(
        database_url=url, recordings_dir=str(recordings_dir), vosk_model_path=model_path
    )
    tasks = register_speech_tasks(build_huey(settings), settings, session_factory=factory)
    call = store_call(factory, make_call, recording=SHORTEST)
    TranscriptionNotifier(tasks).call_ended(call)  # queued: nothing runs in this process
    with factory() as session:
        assert store.get_transcript(session, linkedid=call.linkedid) is None

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_"))}
    env.update(
        DATABASE_URL=url,
        AMI_SECRET="worker-test-secret",
        AMI_PORT="9",
        RECORDINGS_DIR=str(recordings_dir),
        VOSK_MODEL_PATH=model_path,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = monotonic() + 90
        status = None
        while status != "done":
            assert proc.poll() is None, "the worker exited"
            assert monotonic() < deadline, f"transcript still {status!r}"
            sleep(0.2)
            with factory() as session:
                row = store.get_transcript(session, linkedid=call.linkedid)
                status = row.status if row is not None else None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        engine.dispose()
