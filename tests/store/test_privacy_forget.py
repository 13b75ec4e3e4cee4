""" "Forget me" on both back-ends: a person's data goes, the reports' counts stay, and a
do-not-call request outlives both the forgetting and a later re-import."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.calls.model import Disposition
from callcenter.patients.consent import CallPurpose, may_call
from callcenter.patients.importer import PatientRow
from callcenter.privacy.forget import BadPhone, forget_phone
from callcenter.store import speech
from callcenter.store.audit import list_access
from callcenter.store.models import Call, Task
from callcenter.store.models_patients import (
    ConsentRecord,
    Patient,
    PatientNote,
    PatientPhone,
    Visit,
)
from callcenter.store.models_speech import CallTag, PhoneFlag, Transcript
from callcenter.store.models_web import CallOutcome
from callcenter.store.patients import (
    add_do_not_call,
    consent_state_for_phone,
    import_patient_rows,
    phone_hash,
    record_consent,
)
from callcenter.store.queries import persist_call
from callcenter.store.users import record_outcome

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
MOBILE, HOME = "+79161234567", "+74951234567"
OTHER = "+79035550000"


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


def _patient(session, *phones: str, name: str) -> int:
    patient = Patient(full_name=name, birth_date=date(1984, 3, 5))
    patient.phones = [PatientPhone(phone=p) for p in phones]
    session.add(patient)
    session.flush()
    for kind in ("pd", "marketing"):
        record_consent(
            session,
            patient_id=patient.id,
            kind=kind,
            action="given",
            at=NOW - timedelta(300),
            by="admin",
            channel="paper",
        )
    session.add(
        PatientNote(
            patient_id=patient.id,
            text="боится анестезии",
            author="anna",
            created_at=NOW - timedelta(days=200),
        )
    )
    session.add(
        Visit(
            patient_id=patient.id,
            visit_date=date(2026, 5, 1),
            doctor="Петров",
            service="лечение",
            status="completed",
            booked_at=None,
        )
    )
    session.flush()
    return patient.id


def _call(
    session, make_call, recordings_dir, *, caller, name, disposition, talk_s=30.0, days_ago=3
):
    call = make_call(
        caller=caller,
        start_ts=(NOW - timedelta(days=days_ago)).timestamp(),
        recording=name,
        disposition=disposition,
        agent="101" if disposition == Disposition.ANSWERED else None,
        talk_s=talk_s,
    )
    if name:
        (recordings_dir / name).write_bytes(b"RIFF....")
    persist_call(session, call=call)
    if name:
        row = speech.start_transcript(
            session, linkedid=call.linkedid, recording=name, model="m", now=NOW
        )
        speech.finish_transcript(
            session, row=row, status="done", text="дорого", duration_s=talk_s, words=[], now=NOW
        )
        speech.add_tags(
            session, linkedid=call.linkedid, tags={"price_objection"}, source="tagger", now=NOW
        )
    return call.linkedid


@pytest.fixture
def clinic(session_factory, make_call, recordings_dir):
    """A patient with two numbers, three calls (two recorded, one dropped), a task, a flag,
    an operator's note on a call; and another patient who must stay untouched."""
    with session_factory.begin() as s:
        pid = _patient(s, MOBILE, HOME, name="Иванова Мария")
        other_pid = _patient(s, OTHER, name="Смирнов Олег")
        answered = _call(
            s,
            make_call,
            recordings_dir,
            caller="89161234567",
            name="ivanova-1.wav",
            disposition=Disposition.ANSWERED,
            talk_s=75.0,
        )
        home = _call(
            s,
            make_call,
            recordings_dir,
            caller="84951234567",
            name="ivanova-2.wav",
            disposition=Disposition.ANSWERED,
        )
        dropped = _call(
            s,
            make_call,
            recordings_dir,
            caller="89161234567",
            name=None,
            disposition=Disposition.QUEUE_TIMEOUT,
            days_ago=1,
        )
        other = _call(
            s,
            make_call,
            recordings_dir,
            caller="89035550000",
            name="smirnov.wav",
            disposition=Disposition.ANSWERED,
        )
        record_outcome(
            s,
            linkedid=answered,
            operator="anna",
            outcome="not_interested",
            detail=None,
            note="муж против, звонить после 18",
            at=NOW,
        )
        speech.flag_phone(s, phone=HOME, flag="wrong_number", linkedid=home, now=NOW)
    return {
        "pid": pid,
        "other_pid": other_pid,
        "answered": answered,
        "home": home,
        "dropped": dropped,
        "other": other,
    }


def _count(s, model, *where):
    return s.scalar(select(func.count()).select_from(model).where(*where))


def test_forget_removes_the_persons_data_and_keeps_the_counts(
    session_factory, clinic, recordings_dir
) -> None:
    with session_factory() as s:
        dispositions_before = sorted(s.scalars(select(Call.disposition)))
        tasks_before = _count(s, Task)
    assert tasks_before >= 1  # the dropped call opened a callback task
    report = forget_phone(
        session_factory,
        phone="8 (916) 123-45-67",
        recordings_dir=recordings_dir,
        by="vera",
        now=NOW,
    )
    assert report.patient_found and report.phones == 2
    assert sorted(report.recordings_deleted) == ["ivanova-1.wav", "ivanova-2.wav"]
    assert report.calls_anonymized == 3
    assert (report.transcripts_deleted, report.tags_deleted) == (2, 2)
    assert (report.notes_deleted, report.consents_deleted, report.visits_deleted) == (1, 2, 1)
    assert report.flags_deleted == 1
    assert not report.do_not_call
    assert sorted(p.name for p in recordings_dir.iterdir()) == ["smirnov.wav"]
    with session_factory() as s:
        # The calls stay for the reports, without number, caller ID, name or recording.
        assert sorted(s.scalars(select(Call.disposition))) == dispositions_before
        mine = {
            c.linkedid: c
            for c in s.scalars(
                select(Call).where(
                    Call.linkedid.in_([clinic["answered"], clinic["home"], clinic["dropped"]])
                )
            )
        }
        assert len(mine) == 3
        for call in mine.values():
            assert (call.phone, call.caller, call.caller_name, call.recording) == (
                None,
                None,
                None,
                None,
            )
        assert mine[clinic["answered"]].talk_s == 75.0
        # The operator's outcome stays, their free-text note about the person goes.
        outcome = s.scalar(select(CallOutcome).where(CallOutcome.linkedid == clinic["answered"]))
        assert outcome.outcome == "not_interested" and outcome.note is None
        # No trace of the numbers anywhere.
        for phone in (MOBILE, HOME):
            assert _count(s, Call, Call.phone == phone) == 0
            assert _count(s, Task, Task.phone == phone) == 0
            assert _count(s, PatientPhone, PatientPhone.phone == phone) == 0
            assert _count(s, PhoneFlag, PhoneFlag.phone == phone) == 0
        assert _count(s, Task) == tasks_before
        assert _count(s, Task, Task.status == "open", Task.phone.like("forgotten-%")) == 0
        assert s.get(Patient, clinic["pid"]) is None
        assert _count(s, PatientNote, PatientNote.patient_id == clinic["pid"]) == 0
        assert _count(s, ConsentRecord, ConsentRecord.patient_id == clinic["pid"]) == 0
        assert _count(s, Visit, Visit.patient_id == clinic["pid"]) == 0
        assert _count(s, Transcript, Transcript.linkedid.in_(list(mine))) == 0
        assert _count(s, CallTag, CallTag.linkedid.in_(list(mine))) == 0
        # The other patient is untouched.
        assert s.get(Patient, clinic["other_pid"]) is not None
        assert speech.view_transcript(s, linkedid=clinic["other"]) is not None
        assert _count(s, Call, Call.phone == OTHER) == 1
        # The audit log names the hash, never the number.
        (entry,) = list_access(s, since=NOW - timedelta(1), until=NOW + timedelta(1), limit=5)
    assert (entry.user, entry.action, entry.subject_kind) == ("vera", "forget", "phone_hash")
    assert entry.subject_id == phone_hash(MOBILE) == report.phone_hash
    assert entry.detail is not None and entry.detail["calls"] == 3
    assert MOBILE not in str(entry.detail) and "9161234567" not in entry.subject_id


def test_do_not_call_outlives_forget_and_reimport(session_factory, clinic, recordings_dir):
    with session_factory.begin() as s:
        add_do_not_call(s, phone=MOBILE, at=NOW - timedelta(days=10), by="anna")
    report = forget_phone(
        session_factory, phone=MOBILE, recordings_dir=recordings_dir, by="vera", now=NOW
    )
    assert report.do_not_call
    with session_factory.begin() as s:
        state = consent_state_for_phone(s, phone=MOBILE, at=NOW)
        assert state is not None and state.do_not_call
        # A later import brings the patient back with consent «да»: still never called.
        row = PatientRow(
            line=2,
            full_name="Иванова Мария",
            phones=(MOBILE,),
            pd_consent=True,
            marketing_consent=True,
        )
        result = import_patient_rows(s, rows=[row], at=NOW + timedelta(days=1))
        assert result.count("imported") == 1
    with session_factory() as s:
        state = consent_state_for_phone(s, phone=MOBILE, at=NOW + timedelta(days=2))
    assert state is not None and state.pd_consent and state.do_not_call
    for purpose in (CallPurpose.SERVICE, CallPurpose.MARKETING):
        permission = may_call(purpose=purpose, consent=state, callers_own_request=True)
        assert not permission.allowed and permission.reason == "do_not_call"


def test_keep_do_not_call_puts_every_number_of_the_person_on_the_list(
    session_factory, clinic, recordings_dir
) -> None:
    report = forget_phone(
        session_factory,
        phone=HOME,
        recordings_dir=recordings_dir,
        by="vera",
        now=NOW,
        add_do_not_call=True,
    )
    assert report.do_not_call
    with session_factory() as s:
        for phone in (MOBILE, HOME):
            state = consent_state_for_phone(s, phone=phone, at=NOW)
            assert state is not None and state.do_not_call
        assert consent_state_for_phone(s, phone=OTHER, at=NOW).do_not_call is False


def test_an_unknown_number_is_forgotten_too(session_factory, make_call, recordings_dir) -> None:
    """A caller who never became a patient: their calls are anonymized all the same."""
    with session_factory.begin() as s:
        linkedid = _call(
            s,
            make_call,
            recordings_dir,
            caller="89990001122",
            name="x.wav",
            disposition=Disposition.ANSWERED,
        )
    report = forget_phone(
        session_factory, phone="+79990001122", recordings_dir=recordings_dir, by="vera", now=NOW
    )
    assert not report.patient_found and report.calls_anonymized == 1
    assert report.recordings_deleted == ["x.wav"]
    with session_factory() as s:
        assert s.scalar(select(Call.phone).where(Call.linkedid == linkedid)) is None
    again = forget_phone(
        session_factory, phone="+79990001122", recordings_dir=recordings_dir, by="vera", now=NOW
    )
    assert again.calls_anonymized == 0 and again.recordings_deleted == []


@pytest.mark.parametrize("bad", ["", "anonymous", "abc", "123"])
def test_not_a_number_is_refused(session_factory, recordings_dir, bad) -> None:
    with pytest.raises(BadPhone, match="not a phone number"):
        forget_phone(session_factory, phone=bad, recordings_dir=recordings_dir, by="vera")


def test_follow_up_records_of_the_patient_go_too(session_factory, clinic, recordings_dir) -> None:
    from callcenter.store.models_followups import FollowupRecord

    with session_factory.begin() as s:
        visit_id = s.scalar(select(Visit.id).where(Visit.patient_id == clinic["pid"]))
        s.add(
            FollowupRecord(
                patient_id=clinic["pid"],
                reason="care",
                anchor_visit_id=visit_id,
                anchor_date=date(2026, 5, 1),
                step=0,
                status="stopped",
                phone=MOBILE,
                task_id=None,
                created_at=NOW,
            )
        )
    forget_phone(session_factory, phone=MOBILE, recordings_dir=recordings_dir, by="vera", now=NOW)
    with session_factory() as s:
        assert _count(s, FollowupRecord) == 0
