"""The transcription job: a finished call's recording → transcript → tags → what the tags do.

``process_recording`` is the job as a plain function (tests call it without Huey);
``register_speech_tasks`` wraps it in a Huey task, ``transcribe_call(linkedid)``;
``TranscriptionNotifier`` queues that task when the listener reports a call that ended with a
recording. Decoding is slow CPU work and runs in the worker, never in the listener.

The job never holds a transaction while it decodes: one transaction marks the transcript row
``queued``, the decoder runs, a second transaction (holding the row) stores the transcript,
the tags and their actions and marks the row finished. A finished row (``done``/``no_audio``)
makes a re-run a no-op, so a job run twice, or by two workers at once, stores everything once.
Bad input (a missing, empty or garbage file) is recorded on the row as ``failed`` with the
reason; the worker goes on with the next job.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from huey import Huey

from callcenter.calls.model import CallRecord
from callcenter.config import Settings
from callcenter.errors import ConfigError
from callcenter.notify import NullNotifier
from callcenter.speech.actions import (
    Action,
    AddDoNotCall,
    CloseTasks,
    FlagPhone,
    OpenFollowUp,
    WithdrawMarketingConsent,
    decide_tag_actions,
)
from callcenter.speech.audio import DEFAULT_MAX_DURATION_S, AudioError
from callcenter.speech.tagger import tag_text
from callcenter.speech.transcribe import Transcript, transcribe_path
from callcenter.store import patients, queries
from callcenter.store import speech as store
from callcenter.store.db import LazySessions
from callcenter.store.dialer import load_clinic_schedule
from callcenter.tasks.schedule import ClinicSchedule

if TYPE_CHECKING:
    # Only the types: the queries the job runs live in callcenter.store.
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

Tagger = Callable[[str], frozenset[str]]

#: One decode at a time per process: Kaldi's dither draws from the process-wide ``rand()``
#: (see ``transcribe._restart_dither_noise``), so two threads decoding at once would make a
#: file's words depend on the other file. More throughput = more worker processes.
_decode_lock = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptResult:
    """What one run of the job did."""

    linkedid: str
    status: str  # "done" | "no_audio" | "failed"
    error: str | None = None
    text: str | None = None
    duration_s: float | None = None
    tags: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    # True when the transcript was already finished: this run changed nothing.
    skipped: bool = False
    # True when the call is not stored (yet): the listener queues the job as the call ends,
    # before its writer thread stores the row, so the Huey task retries a little later.
    call_missing: bool = False


def recording_path(recordings_dir: str | os.PathLike[str], recording: str) -> str:
    """Return the file of a call's recording; only its base name counts (no ``..`` escapes).

    >>> recording_path("/var/spool/asterisk/monitor", "../../etc/passwd")
    '/var/spool/asterisk/monitor/passwd'
    """
    return os.path.join(os.fspath(recordings_dir), os.path.basename(recording))


def process_recording(
    session_factory: sessionmaker[Session],
    *,
    linkedid: str,
    recordings_dir: str | os.PathLike[str],
    model_path: str,
    now: Callable[[], datetime] | datetime | None = None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    tagger: Tagger = tag_text,
    default_schedule: ClinicSchedule | None = None,
) -> TranscriptResult:
    """Transcribe, tag and store one call's recording, and apply what its tags do.

    ``now`` is a clock (or a fixed moment) for the stored times and due times.
    ``tagger`` turns the transcript's text into tags (``tag_text``).

    :raises ModelNotFound: when the model cannot be loaded (recorded on the row first).
    """
    clock = _clock(now)
    model_name = os.path.basename(os.path.normpath(model_path))
    with session_factory.begin() as session:
        call = queries.get_call(session, linkedid=linkedid)
        recording = call.recording if call is not None else None
        if call is None or not recording:
            why = "no such call" if call is None else "the call has no recording"
            store.fail_transcript(
                session,
                linkedid=linkedid,
                recording=recording,
                model=model_name,
                error=why,
                now=clock(),
            )
            log.warning("transcription of %s failed: %s", linkedid, why)
            return TranscriptResult(
                linkedid=linkedid, status=store.STATUS_FAILED, error=why, call_missing=call is None
            )
        row = store.start_transcript(
            session, linkedid=linkedid, recording=recording, model=model_name, now=clock()
        )
        if row.status in store.FINISHED:
            return _stored_result(session, linkedid=linkedid, skipped=True)

    path = recording_path(recordings_dir, recording)
    try:
        with _decode_lock:
            transcript = transcribe_path(path, model_path=model_path, max_duration_s=max_duration_s)
    except AudioError as exc:
        return _fail(session_factory, linkedid, recording, model_name, str(exc), clock())
    except ConfigError as exc:  # ModelNotFound: a deployment error, raised after recording it
        _fail(session_factory, linkedid, recording, model_name, str(exc), clock())
        raise
    except Exception as exc:
        # A bug: record it so the row does not stay "queued", then crash loudly.
        _fail(session_factory, linkedid, recording, model_name, f"internal error: {exc!r}", clock())
        raise

    tags = tagger(transcript.text) if transcript.has_audio and transcript.text else frozenset()
    with session_factory.begin() as session:
        held = store.get_transcript(session, linkedid=linkedid, lock=True)
        if held is None or held.status in store.FINISHED:
            # Another worker finished it while we decoded.
            return _stored_result(session, linkedid=linkedid, skipped=True)
        at = clock()
        status = store.STATUS_DONE if transcript.has_audio else store.STATUS_NO_AUDIO
        store.finish_transcript(
            session,
            row=held,
            status=status,
            text=transcript.text,
            duration_s=transcript.duration_s,
            words=_words(transcript),
            now=at,
        )
        store.add_tags(session, linkedid=linkedid, tags=tags, source=store.SOURCE_TAGGER, now=at)
        actions = act_on_tags(
            session, linkedid=linkedid, tags=tags, now=at, default_schedule=default_schedule
        )
    log.info("transcribed %s: %s, tags %s", linkedid, status, ", ".join(sorted(tags)) or "-")
    return TranscriptResult(
        linkedid=linkedid,
        status=status,
        text=transcript.text,
        duration_s=transcript.duration_s,
        tags=tuple(sorted(tags)),
        actions=tuple(actions),
    )


def act_on_tags(
    session: Session,
    *,
    linkedid: str,
    tags: frozenset[str] | set[str],
    now: datetime,
    default_schedule: ClinicSchedule | None = None,
) -> list[Action]:
    """Decide and apply what a call's tags do (``speech.actions``); return the actions.

    Nothing happens for a call that is not stored or whose number is withheld, and nothing
    when an operator recorded an outcome for the call (the operator's word wins).
    """
    call = queries.get_call(session, linkedid=linkedid)
    if call is None or call.phone is None:
        return []
    outcomes = store.operator_outcomes(session, linkedid=linkedid)
    actions = decide_tag_actions(
        tags=tags,
        booked_by_operator_outcome="booked" in outcomes,
        operator_outcome=outcomes[-1] if outcomes else None,
        now=now,
        schedule=load_clinic_schedule(session, default=default_schedule),
    )
    phone = call.phone
    patient_id, phones = store.patient_phones(session, phone=phone)
    for action in actions:
        match action:
            case FlagPhone():
                store.flag_phone(session, phone=phone, flag=action.flag, linkedid=linkedid, now=now)
            case WithdrawMarketingConsent():
                if patient_id is not None:
                    store.withdraw_marketing_consent(
                        session, patient_id=patient_id, linkedid=linkedid, now=now
                    )
            case AddDoNotCall():
                patients.add_do_not_call(session, phone=phone, at=now, by=store.BY_TAGGER)
            case CloseTasks():
                store.close_open_tasks(
                    session,
                    phones=phones,
                    close_reason=action.close_reason,
                    kind=None if action.kind is None else str(action.kind),
                    linkedid=linkedid,
                    now=now,
                )
            case OpenFollowUp():
                store.open_tag_task(
                    session,
                    phone=phone,
                    patient_id=patient_id,
                    reason=action.reason,
                    kind=str(action.kind),
                    due_at=action.due_at,
                    detail=action.detail,
                    linkedid=linkedid,
                    now=now,
                )
    return actions


def _clock(now: Callable[[], datetime] | datetime | None) -> Callable[[], datetime]:
    if now is None:
        return lambda: datetime.now(UTC)
    if isinstance(now, datetime):
        fixed = now
        return lambda: fixed
    return now


def _words(transcript: Transcript) -> list[dict[str, Any]]:
    return [
        {"word": w.word, "start": w.start, "end": w.end, "conf": w.conf} for w in transcript.words
    ]


def _fail(
    session_factory: sessionmaker[Session],
    linkedid: str,
    recording: str | None,
    model: str,
    error: str,
    at: datetime,
) -> TranscriptResult:
    log.warning("transcription of %s failed: %s", linkedid, error)
    with session_factory.begin() as session:
        row = store.fail_transcript(
            session, linkedid=linkedid, recording=recording, model=model, error=error, now=at
        )
        if row.status in store.FINISHED:
            return _stored_result(session, linkedid=linkedid, skipped=True)
    return TranscriptResult(linkedid=linkedid, status=store.STATUS_FAILED, error=error)


def _stored_result(session: Session, *, linkedid: str, skipped: bool) -> TranscriptResult:
    view = store.view_transcript(session, linkedid=linkedid)
    assert view is not None
    return TranscriptResult(
        linkedid=linkedid,
        status=view.status,
        error=view.error,
        text=view.text,
        duration_s=view.duration_s,
        tags=tuple(store.list_tags(session, linkedid=linkedid, source=store.SOURCE_TAGGER)),
        skipped=skipped,
    )


# -- Huey ------------------------------------------------------------------------------------


#: How often, and how many seconds apart, a job retries for a call not stored yet.
CALL_MISSING_RETRIES = 10
CALL_MISSING_RETRY_DELAY_S = 3


class CallNotStored(Exception):
    """The job's call is not in the database (yet): raised so Huey retries the task."""


@dataclass(frozen=True, slots=True)
class SpeechTasks:
    """The Huey tasks ``register_speech_tasks`` registered."""

    transcribe_call: Any  # huey.api.TaskWrapper: transcribe_call(linkedid)
    close: Callable[[], None]  # dispose of the engine the task opened, if it opened one


def register_speech_tasks(
    huey: Huey,
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
) -> SpeechTasks:
    """Register ``transcribe_call(linkedid)`` on ``huey``.

    The task opens the database from ``settings`` on first use (one engine per process), or
    uses ``session_factory`` when given (tests, one-process set-ups).
    """
    lazy = LazySessions(settings.database_url, given=session_factory)
    sessions, close = lazy, lazy.close
    default_schedule = ClinicSchedule(tz=settings.timezone)

    def transcribe_call(linkedid: str) -> dict[str, Any]:
        result = process_recording(
            sessions(),
            linkedid=linkedid,
            recordings_dir=settings.recordings_dir,
            model_path=settings.vosk_model_path,
            max_duration_s=settings.transcribe_max_duration_s,
            default_schedule=default_schedule,
        )
        if result.call_missing:
            raise CallNotStored(f"call {linkedid} is not stored (yet)")
        return {
            "linkedid": result.linkedid,
            "status": result.status,
            "error": result.error,
            "tags": list(result.tags),
            "skipped": result.skipped,
        }

    task = huey.task(
        name="transcribe_call",
        retries=CALL_MISSING_RETRIES,
        retry_delay=CALL_MISSING_RETRY_DELAY_S,
    )(transcribe_call)
    return SpeechTasks(transcribe_call=task, close=close)


class TranscriptionNotifier(NullNotifier):
    """Queue ``transcribe_call`` for every call that ended with a recording.

    Put it in the listener's ``FanoutNotifier``; the worker (``callcenter worker``) runs the job.
    Queuing is cheap (a row in Huey's storage); a failure to queue is logged, never raised into
    the listener.
    """

    def __init__(self, tasks: SpeechTasks) -> None:
        self.tasks = tasks

    def call_ended(self, call: CallRecord) -> None:
        if not call.recording:
            return
        try:
            self.tasks.transcribe_call(call.linkedid)
        except Exception:
            log.exception("could not queue the transcription of %s", call.linkedid)
