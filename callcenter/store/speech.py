"""Reads and writes of the speech part: transcripts, call tags, phone flags, tag-driven tasks.

The caller owns the transaction. A transcript row is the job's record: ``queued`` when the job
starts, then ``done`` (text and words), ``no_audio`` (a recording without audio) or ``failed``
(``error`` says why). Tags and their actions are written in the transaction that marks the
row finished, so a finished row means everything it implies is stored, exactly once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.patients.phone import normalize_phone
from callcenter.store import patients, queries
from callcenter.store.models import Task, TaskEvent
from callcenter.store.models_patients import ConsentRecord, PatientPhone
from callcenter.store.models_speech import CallTag, PhoneFlag, Transcript
from callcenter.store.models_web import CallOutcome

STATUS_QUEUED = "queued"
STATUS_DONE = "done"
STATUS_NO_AUDIO = "no_audio"
STATUS_FAILED = "failed"
#: A row in one of these states is final: running the job again changes nothing.
FINISHED = frozenset({STATUS_DONE, STATUS_NO_AUDIO})
SOURCE_TAGGER = "tagger"
SOURCE_SUPERVISOR = "supervisor"
#: Who a tag-driven consent withdrawal or do-not-call entry is recorded as.
BY_TAGGER = "tagger"


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptView:
    """A transcript as screens show it."""

    linkedid: str
    status: str
    error: str | None
    text: str | None
    duration_s: float | None
    words: list[dict[str, Any]]
    model: str | None
    created_at: datetime
    finished_at: datetime | None
    tags: tuple[str, ...]


def get_transcript(session: Session, *, linkedid: str, lock: bool = False) -> Transcript | None:
    """Return the call's transcript row; ``lock`` holds it (FOR UPDATE) until commit."""
    query = select(Transcript).where(Transcript.linkedid == linkedid)
    if lock:
        query = query.with_for_update()
    return session.scalar(query.execution_options(populate_existing=True))


def start_transcript(
    session: Session, *, linkedid: str, recording: str | None, model: str, now: datetime
) -> Transcript:
    """Return the call's transcript row, created ``queued`` (or re-queued after a failure).

    A finished row is returned as it is.
    """
    row = get_transcript(session, linkedid=linkedid, lock=True)
    if row is None:
        row = Transcript(
            linkedid=linkedid,
            recording=recording,
            status=STATUS_QUEUED,
            model=model,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Another job created it first (unique linkedid): take theirs.
            found = get_transcript(session, linkedid=linkedid, lock=True)
            if found is None:
                raise
            row = found
    if row.status not in FINISHED:
        row.status = STATUS_QUEUED
        row.recording = recording
        row.model = model
        row.error = None
        row.finished_at = None
    session.flush()
    return row


def finish_transcript(
    session: Session,
    *,
    row: Transcript,
    status: str,
    text: str | None,
    duration_s: float | None,
    words: list[dict[str, Any]] | None,
    now: datetime,
) -> None:
    """Store the job's result on the row (``done`` or ``no_audio``)."""
    row.status = status
    row.text = text
    row.duration_s = duration_s
    row.words = words
    row.error = None
    row.finished_at = now
    session.flush()


def fail_transcript(
    session: Session,
    *,
    linkedid: str,
    recording: str | None,
    model: str,
    error: str,
    now: datetime,
) -> Transcript:
    """Record why the job failed (creating the row if needed); a finished row is kept."""
    row = start_transcript(session, linkedid=linkedid, recording=recording, model=model, now=now)
    if row.status not in FINISHED:
        row.status = STATUS_FAILED
        row.error = error
        row.finished_at = now
        session.flush()
    return row


def add_tags(
    session: Session, *, linkedid: str, tags: Iterable[str], source: str, now: datetime
) -> list[str]:
    """Store the call's tags from ``source``; return the ones that were new."""
    have = set(list_tags(session, linkedid=linkedid, source=source))
    new = sorted(set(tags) - have)
    for tag in new:
        session.add(CallTag(linkedid=linkedid, tag=tag, source=source, created_at=now))
    session.flush()
    return new


def list_tags(session: Session, *, linkedid: str, source: str | None = None) -> list[str]:
    """Return the call's tags (of one source, or all), sorted, each once."""
    query = select(CallTag.tag).where(CallTag.linkedid == linkedid)
    if source is not None:
        query = query.where(CallTag.source == source)
    return sorted(set(session.scalars(query)))


def view_transcript(session: Session, *, linkedid: str) -> TranscriptView | None:
    """Return the call's transcript with its tags, for the supervisor pages."""
    row = get_transcript(session, linkedid=linkedid)
    if row is None:
        return None
    return TranscriptView(
        linkedid=row.linkedid,
        status=row.status,
        error=row.error,
        text=row.text,
        duration_s=row.duration_s,
        words=list(row.words or ()),
        model=row.model,
        created_at=row.created_at,
        finished_at=row.finished_at,
        tags=tuple(list_tags(session, linkedid=linkedid)),
    )


def operator_outcomes(session: Session, *, linkedid: str) -> list[str]:
    """Return the outcomes operators recorded for the call, oldest first."""
    return list(
        session.scalars(
            select(CallOutcome.outcome)
            .where(CallOutcome.linkedid == linkedid)
            .order_by(CallOutcome.id)
        )
    )


# -- what tags do ---------------------------------------------------------------------------


def flag_phone(
    session: Session, *, phone: str, flag: str, linkedid: str | None, now: datetime
) -> bool:
    """Flag the number (once per number and flag); return False if it was already flagged."""
    existing = session.scalar(
        select(PhoneFlag.id).where(PhoneFlag.phone == phone, PhoneFlag.flag == flag)
    )
    if existing is not None:
        return False
    try:
        with session.begin_nested():
            session.add(PhoneFlag(phone=phone, flag=flag, linkedid=linkedid, created_at=now))
    except IntegrityError:
        return False
    return True


def phone_flags(session: Session, *, phone: str) -> list[str]:
    """Return the number's flags, sorted."""
    normalized = normalize_phone(phone) or phone
    return sorted(session.scalars(select(PhoneFlag.flag).where(PhoneFlag.phone == normalized)))


def patient_phones(session: Session, *, phone: str) -> tuple[int | None, list[str]]:
    """Return the patient with this number and all their numbers (just ``phone`` if none)."""
    patient_id = patients.find_patient_id(session, phone=phone)
    if patient_id is None:
        return None, [phone]
    phones = sorted(
        session.scalars(select(PatientPhone.phone).where(PatientPhone.patient_id == patient_id))
    )
    return patient_id, phones or [phone]


def open_tag_task(
    session: Session,
    *,
    phone: str,
    patient_id: int | None,
    reason: str,
    kind: str,
    due_at: datetime,
    detail: str,
    linkedid: str,
    now: datetime,
) -> Task | None:
    """Open a task a call's tags asked for; None when the number has an open task already,
    or when this call already opened one for this reason."""
    queries.lock_phone(session, phone=phone)
    done_before = session.scalar(
        select(Task.id).where(Task.first_call_linkedid == linkedid, Task.reason == reason)
    )
    if done_before is not None or queries.find_open_task(session, phone=phone) is not None:
        return None
    task = Task(
        phone=phone,
        reason=reason,
        kind=kind,
        status=queries.TASK_OPEN,
        opened_at=now,
        due_at=due_at,
        attempts=0,
        first_call_linkedid=linkedid,
        dropped_calls=0,
        patient_id=patient_id,
    )
    task.events.append(
        TaskEvent(at=now, kind=queries.EVENT_OPENED, call_linkedid=linkedid, detail=detail)
    )
    try:
        with session.begin_nested():
            session.add(task)
    except IntegrityError:
        # The partial unique index uq_tasks_open_phone: someone opened one first.
        if queries.find_open_task(session, phone=phone) is None:
            raise
        return None
    return task


def close_open_tasks(
    session: Session,
    *,
    phones: Collection[str],
    close_reason: str,
    kind: str | None,
    linkedid: str,
    now: datetime,
) -> list[int]:
    """Close the open tasks of these numbers (of one kind, or all); return their ids."""
    closed = []
    for phone in sorted(phones):
        queries.lock_phone(session, phone=phone)
        task = queries.find_open_task(session, phone=phone)
        if task is None or (kind is not None and task.kind != kind):
            continue
        task.status = queries.TASK_CLOSED
        task.closed_at = now
        task.close_reason = close_reason
        task.events.append(
            TaskEvent(
                at=now, kind=queries.EVENT_CLOSED, call_linkedid=linkedid, detail=close_reason
            )
        )
        closed.append(task.id)
    session.flush()
    return closed


def withdraw_marketing_consent(
    session: Session, *, patient_id: int, linkedid: str, now: datetime
) -> bool:
    """Record the patient's marketing consent withdrawn in this call (once per call)."""
    channel = f"call:{linkedid}"[:32]  # consent_records.channel is 32 characters
    already = session.scalar(
        select(ConsentRecord.id).where(
            ConsentRecord.patient_id == patient_id,
            ConsentRecord.kind == "marketing",
            ConsentRecord.action == "withdrawn",
            ConsentRecord.channel == channel,
        )
    )
    if already is not None:
        return False
    patients.record_consent(
        session,
        patient_id=patient_id,
        kind="marketing",
        action="withdrawn",
        at=now,
        by=BY_TAGGER,
        channel=channel,
    )
    return True
