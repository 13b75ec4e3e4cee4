""" "Forget me": remove one person's data, keep what the reports count.

For the number given (and every other number of the patient who owns it): the recordings
(files), transcripts and tags of their calls, the operators' notes on those calls, the patient
with their numbers, notes, visits and consent records, and the phone flags are deleted; the
calls stay with their disposition, times and durations but lose number, caller ID, name and
recording; their tasks stay (closed when open) under an opaque ``forgotten-<id>`` instead of
the number. The do-not-call list, kept as hashes, is never cleared: a number that asked not to
be called stays uncallable after "forget me" and after a later re-import of the patient; with
``add_do_not_call`` the person's numbers join it now. The audit log gets one entry naming the
SHA-256 of the number, never the number.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from callcenter.errors import CallcenterError
from callcenter.patients.phone import normalize_phone
from callcenter.privacy.files import FileOutcome, delete_recording
from callcenter.store import audit, patients, privacy, queries

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class BadPhone(CallcenterError):
    """The "forget me" request does not name a phone number."""


@dataclass(slots=True)
class ForgetReport:
    """What a "forget me" request removed (counts only: the report may be logged)."""

    phone_hash: str
    patient_found: bool = False
    phones: int = 0
    calls_anonymized: int = 0
    recordings_deleted: list[str] = field(default_factory=list)
    recordings_missing: list[str] = field(default_factory=list)
    recordings_failed: list[str] = field(default_factory=list)
    transcripts_deleted: int = 0
    tags_deleted: int = 0
    tasks_anonymized: int = 0
    notes_deleted: int = 0
    consents_deleted: int = 0
    visits_deleted: int = 0
    flags_deleted: int = 0
    do_not_call: bool = False  # the number (or one of the patient's) is on the list afterwards

    def counts(self) -> dict[str, int | bool]:
        """Return the counts (what the audit entry and the CLI show)."""
        return {
            "patient": self.patient_found,
            "phones": self.phones,
            "calls": self.calls_anonymized,
            "recordings": len(self.recordings_deleted),
            "transcripts": self.transcripts_deleted,
            "tags": self.tags_deleted,
            "tasks": self.tasks_anonymized,
            "notes": self.notes_deleted,
            "consents": self.consents_deleted,
            "visits": self.visits_deleted,
            "flags": self.flags_deleted,
            "do_not_call": self.do_not_call,
        }


def normalize_or_refuse(phone: str) -> str:
    """Return the number in E.164 form.

    :raises BadPhone: not a phone number (or a withheld caller ID).
    """
    normalized = normalize_phone(phone)
    if normalized is None:
        raise BadPhone(f"not a phone number: {phone!r}")
    return normalized


@dataclass(frozen=True, slots=True)
class ForgetPreview:
    """What a "forget me" request would touch (the confirmation page shows it)."""

    phone: str  # E.164
    patient_name: str | None
    phones: int
    calls: int
    recordings: int


def preview_forget(session_factory: sessionmaker[Session], *, phone: str) -> ForgetPreview:
    """Return what forgetting this number would touch; changes nothing.

    :raises BadPhone: ``phone`` is not a phone number.
    """
    normalized = normalize_or_refuse(phone)
    with session_factory() as session:
        patient_id, phones = privacy.patient_phones_of(session, phone=normalized)
        refs = privacy.calls_of_phones(session, phones=phones)
        name = privacy.patient_name(session, patient_id=patient_id)
    return ForgetPreview(
        phone=normalized,
        patient_name=name,
        phones=len(phones),
        calls=len(refs),
        recordings=sum(1 for ref in refs if not isinstance(ref, str)),
    )


def forget_phone(
    session_factory: sessionmaker[Session],
    *,
    phone: str,
    recordings_dir: str | os.PathLike[str],
    by: str,
    now: datetime | None = None,
    add_do_not_call: bool = False,
) -> ForgetReport:
    """Forget the person with this number (see the module docstring); one transaction.

    :raises BadPhone: ``phone`` is not a phone number.
    """
    normalized = normalize_or_refuse(phone)
    at = now or datetime.now(UTC)
    report = ForgetReport(phone_hash=patients.phone_hash(normalized))
    with session_factory.begin() as session:
        patient_id, phones = privacy.patient_phones_of(session, phone=normalized)
        for number in phones:
            # The listener and the dialer take this lock before touching a number's tasks.
            queries.lock_phone(session, phone=number)
        report.patient_found = patient_id is not None
        report.phones = len(phones)
        linkedids: list[str] = []
        for ref in privacy.calls_of_phones(session, phones=phones):
            if isinstance(ref, str):
                linkedids.append(ref)
                continue
            linkedids.append(ref.linkedid)
            name = os.path.basename(ref.recording)
            outcome = delete_recording(recordings_dir, ref.recording)
            if outcome is FileOutcome.DELETED:
                report.recordings_deleted.append(name)
                log.info("forget: deleted recording %s", name)
            elif outcome is FileOutcome.MISSING:
                report.recordings_missing.append(name)
            else:
                report.recordings_failed.append(name)
        report.transcripts_deleted, report.tags_deleted = privacy.delete_transcripts(
            session, linkedids=linkedids
        )
        report.calls_anonymized = privacy.anonymize_calls(session, linkedids=linkedids)
        report.tasks_anonymized = privacy.anonymize_tasks(
            session, phones=phones, patient_id=patient_id, now=at
        )
        report.flags_deleted = privacy.delete_phone_flags(session, phones=phones)
        removal = privacy.delete_patient(session, patient_id=patient_id)
        report.notes_deleted = removal.notes
        report.consents_deleted = removal.consents
        report.visits_deleted = removal.visits
        if add_do_not_call:
            for number in phones:
                patients.add_do_not_call(session, phone=number, at=at, by=by)
        report.do_not_call = any(patients.is_do_not_call(session, phone=n) for n in phones)
        audit.record_access(
            session,
            user=by,
            action="forget",
            subject_kind="phone_hash",
            subject_id=report.phone_hash,
            at=at,
            detail=report.counts(),
        )
    log.info(
        "forget: number %s… forgotten: %s",
        report.phone_hash[:12],
        ", ".join(f"{k} {v}" for k, v in report.counts().items()),
    )
    return report
