"""Reads and writes of the 152-ФЗ hygiene part: retention and "forget me".

The caller owns the transaction; files are the caller's business too (``callcenter.privacy``
deletes them): these functions only find what refers to personal data and clear or delete it.
Calls themselves are never deleted: their counts, dispositions and durations feed the reports.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from callcenter.store.models import Call, Task
from callcenter.store.models_corrections import TagCorrection
from callcenter.store.models_patients import (
    ConsentRecord,
    Patient,
    PatientNote,
    PatientPhone,
    Visit,
)
from callcenter.store.models_speech import CallTag, PhoneFlag, Transcript
from callcenter.store.models_web import CallOutcome

#: The close reason of a task open when its patient was forgotten.
FORGOTTEN = "forgotten"


@dataclass(frozen=True, slots=True)
class RecordingRef:
    """A call that refers to a recording file."""

    call_id: int
    linkedid: str
    recording: str


# --- retention -----------------------------------------------------------------------------


def recordings_before(
    session: Session, *, before: datetime, after_id: int = 0, limit: int
) -> list[RecordingRef]:
    """Return calls started before ``before`` that still name a recording, by id, one batch."""
    query = (
        select(Call.id, Call.linkedid, Call.recording)
        .where(Call.started_at < before, Call.recording.is_not(None), Call.id > after_id)
        .order_by(Call.id)
        .limit(limit)
    )
    return [
        RecordingRef(call_id=i, linkedid=lid, recording=rec)
        for i, lid, rec in session.execute(query)
    ]


def clear_recordings(session: Session, *, call_ids: Collection[int]) -> int:
    """Forget the recording names of these calls (their files are gone); return how many."""
    if not call_ids:
        return 0
    result = session.execute(update(Call).where(Call.id.in_(list(call_ids))).values(recording=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def transcripts_before(
    session: Session, *, before: datetime, after_id: int = 0, limit: int
) -> list[tuple[int, str]]:
    """Return (id, linkedid) of transcripts made before ``before`` or of calls started before
    it, by id, one batch."""
    old_calls = select(Call.linkedid).where(Call.started_at < before)
    query = (
        select(Transcript.id, Transcript.linkedid)
        .where(
            Transcript.id > after_id,
            or_(Transcript.created_at < before, Transcript.linkedid.in_(old_calls)),
        )
        .order_by(Transcript.id)
        .limit(limit)
    )
    return [(i, lid) for i, lid in session.execute(query)]


def delete_transcripts(session: Session, *, linkedids: Collection[str]) -> tuple[int, int]:
    """Delete these calls' transcripts (text and words), tags and supervisors' tag corrections;
    return (transcripts, tags and corrections)."""
    if not linkedids:
        return 0, 0
    ids = list(linkedids)
    tags = session.execute(delete(CallTag).where(CallTag.linkedid.in_(ids)))
    corrections = session.execute(delete(TagCorrection).where(TagCorrection.linkedid.in_(ids)))
    transcripts = session.execute(delete(Transcript).where(Transcript.linkedid.in_(ids)))
    return (
        int(transcripts.rowcount or 0),  # type: ignore[attr-defined]
        int(tags.rowcount or 0) + int(corrections.rowcount or 0),  # type: ignore[attr-defined]
    )


def count_transcripts(session: Session, *, linkedids: Collection[str]) -> tuple[int, int]:
    """Return what ``delete_transcripts`` would delete (a dry run): (transcripts, tags and
    corrections)."""
    if not linkedids:
        return 0, 0
    ids = list(linkedids)
    counted = [
        session.scalar(select(func.count()).select_from(model).where(model.linkedid.in_(ids)))
        for model in (Transcript, CallTag, TagCorrection)
    ]
    transcripts, tags, corrections = (int(n or 0) for n in counted)
    return transcripts, tags + corrections


# --- forget me -----------------------------------------------------------------------------


def patient_phones_of(session: Session, *, phone: str) -> tuple[int | None, list[str]]:
    """Return the patient owning ``phone`` (E.164) and all their numbers (``[phone]`` if none)."""
    patient_id = session.scalar(select(PatientPhone.patient_id).where(PatientPhone.phone == phone))
    if patient_id is None:
        return None, [phone]
    phones = session.scalars(
        select(PatientPhone.phone).where(PatientPhone.patient_id == patient_id)
    )
    return patient_id, sorted(set(phones) | {phone})


def calls_of_phones(session: Session, *, phones: Sequence[str]) -> list[RecordingRef | str]:
    """Return the linkedids of the numbers' calls; those with a recording as ``RecordingRef``."""
    rows = session.execute(
        select(Call.id, Call.linkedid, Call.recording).where(Call.phone.in_(list(phones)))
    )
    return [
        RecordingRef(call_id=i, linkedid=lid, recording=rec) if rec else lid for i, lid, rec in rows
    ]


def anonymize_calls(session: Session, *, linkedids: Collection[str]) -> int:
    """Clear number, caller ID, name and recording of these calls and the notes operators wrote
    on them; keep disposition, times and durations. Return how many calls."""
    if not linkedids:
        return 0
    ids = list(linkedids)
    result = session.execute(
        update(Call)
        .where(Call.linkedid.in_(ids))
        .values(phone=None, caller=None, caller_name=None, recording=None)
    )
    session.execute(update(CallOutcome).where(CallOutcome.linkedid.in_(ids)).values(note=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def anonymize_tasks(
    session: Session, *, phones: Sequence[str], patient_id: int | None, now: datetime
) -> int:
    """Close the numbers' open tasks as ``forgotten`` and replace the number on every task of
    theirs with an opaque ``forgotten-<id>`` (the column is required); return how many tasks."""
    condition: ColumnElement[bool] = Task.phone.in_(list(phones))
    if patient_id is not None:
        condition = or_(condition, Task.patient_id == patient_id)
    tasks = list(session.scalars(select(Task).where(condition).order_by(Task.id)))
    for task in tasks:
        if task.status == "open":
            task.status = "closed"
            task.closed_at = now
            task.close_reason = FORGOTTEN
        task.phone = f"forgotten-{task.id}"
        task.patient_id = None
    session.flush()
    return len(tasks)


@dataclass(frozen=True, slots=True)
class PatientRemoval:
    """What deleting a patient removed."""

    patients: int = 0
    phones: int = 0
    notes: int = 0
    consents: int = 0
    visits: int = 0


def delete_patient(session: Session, *, patient_id: int | None) -> PatientRemoval:
    """Delete the patient with their numbers, notes, consent records and visits."""
    if patient_id is None:
        return PatientRemoval()
    counts = {}
    for name, model in (
        ("notes", PatientNote),
        ("consents", ConsentRecord),
        ("visits", Visit),
        ("phones", PatientPhone),
    ):
        result = session.execute(delete(model).where(model.patient_id == patient_id))
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    result = session.execute(delete(Patient).where(Patient.id == patient_id))
    return PatientRemoval(patients=int(result.rowcount or 0), **counts)  # type: ignore[attr-defined]


def delete_phone_flags(session: Session, *, phones: Sequence[str]) -> int:
    """Delete the flags (``wrong_number``…) of these numbers; return how many."""
    result = session.execute(delete(PhoneFlag).where(PhoneFlag.phone.in_(list(phones))))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def count_referring(session: Session, *, phones: Sequence[str]) -> int:
    """Return how many calls and tasks still carry one of these numbers (0 after forgetting)."""
    calls = session.scalar(select(func.count()).select_from(Call).where(Call.phone.in_(phones)))
    tasks = session.scalar(select(func.count()).select_from(Task).where(Task.phone.in_(phones)))
    return int(calls or 0) + int(tasks or 0)


def patient_name(session: Session, *, patient_id: int | None) -> str | None:
    """Return the patient's full name (the confirmation page shows whom it will forget)."""
    if patient_id is None:
        return None
    return session.scalar(select(Patient.full_name).where(Patient.id == patient_id))
