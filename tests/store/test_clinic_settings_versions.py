"""Clinic settings versions: saved with who and when, listed newest first, the newest in force;
the kind the supervisors set per reason is what the dialer's consent check uses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from callcenter.dialer.worker import StoreConsentLookup
from callcenter.store import dialer
from callcenter.store.models import Task
from callcenter.store.models_patients import Patient, PatientPhone
from callcenter.store.patients import record_consent
from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import DEFAULT_KINDS, ClinicSchedule
from tests.replay.test_dialer_fakes import NOW, FakeOriginator, add_task, make_dialer


def test_save_and_list_versions_newest_in_force(session_factory):
    first = ClinicSchedule(max_attempts=4)
    second = ClinicSchedule(
        kinds=MappingProxyType({**DEFAULT_KINDS, "nps_followup": TaskKind.MARKETING})
    )
    with session_factory.begin() as session:
        a = dialer.save_clinic_schedule(session, first, by="olga", note="4 попытки")
        b = dialer.save_clinic_schedule(
            session, second, by="ivan", note="NPS — маркетинг", at=datetime.now(UTC)
        )
    with session_factory() as session:
        versions = dialer.list_clinic_settings_versions(session)
        assert [(v.id, v.changed_by, v.note, v.in_force) for v in versions] == [
            (b, "ivan", "NPS — маркетинг", True),
            (a, "olga", "4 попытки", False),
        ]
        assert versions[0].schedule == second and versions[1].schedule == first
        assert versions[0].changed_at.tzinfo is not None
        assert dialer.load_clinic_schedule(session).kinds["nps_followup"] is TaskKind.MARKETING


def test_saving_needs_who_and_valid_kinds(session_factory):
    with session_factory() as session:
        with pytest.raises(ValueError, match="who saved"):
            dialer.save_clinic_schedule(session, ClinicSchedule(), by="  ")
        with pytest.raises(ValueError, match="either by or changed_by"):
            dialer.save_clinic_schedule(session, ClinicSchedule(), by="a", changed_by="b")
        bad = ClinicSchedule(kinds=MappingProxyType({"nps_followup": "robocall"}))
        with pytest.raises(ValueError, match="service or marketing"):
            dialer.save_clinic_schedule(session, bad, by="olga")
        assert dialer.list_clinic_settings_versions(session) == []


def test_a_reason_reclassified_as_marketing_needs_marketing_consent(session_factory):
    """An NPS task opened as service is refused once supervisors made NPS calls marketing:
    the patient gave only the personal-data consent."""
    task_id = add_task(session_factory, "+79035551122", reason="nps_followup")
    with session_factory.begin() as session:
        patient = Patient(full_name="Петров Пётр")
        patient.phones.append(PatientPhone(phone="+79035551122"))
        session.add(patient)
        session.flush()
        record_consent(
            session,
            patient_id=patient.id,
            kind="pd",
            action="given",
            at=NOW - timedelta(days=10),
            by="admin",
            channel="paper",
        )
    consent = StoreConsentLookup(session_factory=session_factory, own_request_days=30)
    as_service = ClinicSchedule()
    as_marketing = ClinicSchedule(
        kinds=MappingProxyType({**DEFAULT_KINDS, "nps_followup": TaskKind.MARKETING})
    )
    originator = FakeOriginator(reason="5")
    (result,) = asyncio.run(
        make_dialer(session_factory, originator, consent=consent, schedule=as_marketing).run_once()
    )
    assert (result.action, result.detail) == ("refused", "no_marketing_consent")
    assert originator.requests == []
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason) == ("refused", "no_marketing_consent")
    # The same task kind under the default settings (service) is called.
    other = add_task(session_factory, "+79035551122", reason="nps_followup")
    (result,) = asyncio.run(
        make_dialer(session_factory, originator, consent=consent, schedule=as_service).run_once()
    )
    assert (result.task_id, result.action) == (other, "dialled")
