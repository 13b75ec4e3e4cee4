"""Patient store queries on both back-ends: consent per number, do-not-call, recent callers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.calls.model import Direction, Disposition
from callcenter.patients.consent import CallPermission, CallPurpose, ConsentState, may_call
from callcenter.patients.demo_data import (
    generate_demo_patients,
    seed_demo_patients,
    trace_callers,
)
from callcenter.store.models_patients import DoNotCall, Patient, PatientPhone
from callcenter.store.patients import (
    add_do_not_call,
    called_us_within,
    consent_state_for_phone,
    is_do_not_call,
    load_card,
    phone_hash,
    record_consent,
)
from callcenter.store.queries import persist_call

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def add_patient(session: Session, *phones: str, name: str = "Иванова Мария") -> int:
    patient = Patient(full_name=name, birth_date=date(1984, 3, 5))
    patient.phones = [PatientPhone(phone=phone) for phone in phones]
    session.add(patient)
    session.flush()
    return patient.id


def test_unknown_number_has_no_consent_state(session: Session) -> None:
    """None: no patient with that number and not on the do-not-call list."""
    assert consent_state_for_phone(session, phone="89039556279", at=T0) is None


def test_patient_without_records_has_no_consent(session: Session) -> None:
    add_patient(session, "+79039556279")
    assert consent_state_for_phone(session, phone="89039556279", at=T0) == ConsentState(
        pd_consent=False, marketing_consent=False, do_not_call=False
    )


def test_consent_given_is_found_from_any_form_of_the_number(session: Session) -> None:
    patient_id = add_patient(session, "+79039556279")
    record_consent(
        session,
        patient_id=patient_id,
        kind="pd",
        action="given",
        at=T0,
        by="admin",
        channel="paper",
    )
    state = consent_state_for_phone(session, phone="8 (903) 955-62-79", at=T0)
    assert state == ConsentState(pd_consent=True, marketing_consent=False, do_not_call=False)


def test_marketing_withdrawal_takes_effect_at_once(session: Session) -> None:
    """Rule: marketing consent can be withdrawn at any time; the withdrawal takes effect at once
    for every later decision."""
    patient_id = add_patient(session, "+79039556279")
    for kind in ("pd", "marketing"):
        record_consent(
            session,
            patient_id=patient_id,
            kind=kind,
            action="given",
            at=T0,
            by="admin",
            channel="paper",
        )
    withdrawn_at = T0 + timedelta(days=30)
    record_consent(
        session,
        patient_id=patient_id,
        kind="marketing",
        action="withdrawn",
        at=withdrawn_at,
        by="admin",
        channel="phone",
    )
    before = consent_state_for_phone(
        session, phone="+79039556279", at=withdrawn_at - timedelta(seconds=1)
    )
    after = consent_state_for_phone(session, phone="+79039556279", at=withdrawn_at)
    assert before is not None and before.marketing_consent
    assert after == ConsentState(pd_consent=True, marketing_consent=False, do_not_call=False)
    assert may_call(purpose=CallPurpose.MARKETING, consent=after, callers_own_request=False) == (
        CallPermission(allowed=False, reason="no_marketing_consent")
    )


def test_unknown_consent_kind_is_refused(session: Session) -> None:
    patient_id = add_patient(session, "+79039556279")
    with pytest.raises(ValueError):
        record_consent(
            session, patient_id=patient_id, kind="sms", action="given", at=T0, by=None, channel=None
        )


def test_do_not_call_is_kept_as_a_hash_of_the_number(session: Session) -> None:
    """The do-not-call list is keyed by a SHA-256 of the E.164 number, never the number."""
    add_do_not_call(session, phone="89039556279", at=T0, by="admin")
    add_do_not_call(session, phone="+7 903 955-62-79", at=T0, by="admin")  # again: no change
    keys = list(session.scalars(select(DoNotCall.phone_hash)))
    assert keys == [phone_hash("+79039556279")]
    assert "79039556279" not in keys[0]
    assert is_do_not_call(session, phone="+79039556279")
    assert not is_do_not_call(session, phone="+79051510563")


def test_do_not_call_number_without_patient_has_a_state(session: Session) -> None:
    """A number on the list is not "unknown": its state says do_not_call."""
    add_do_not_call(session, phone="89039556279", at=T0, by="admin")
    state = consent_state_for_phone(session, phone="89039556279", at=T0)
    assert state == ConsentState(pd_consent=False, marketing_consent=False, do_not_call=True)
    assert may_call(purpose=CallPurpose.SERVICE, consent=state, callers_own_request=True) == (
        CallPermission(allowed=False, reason="do_not_call")
    )


def test_do_not_call_outlives_the_patient_row(session: Session) -> None:
    """The hash outlives a "forget me": deleting the patient keeps the number off the dialer."""
    patient_id = add_patient(session, "+79039556279")
    add_do_not_call(session, phone="+79039556279", at=T0, by="admin")
    session.delete(session.get(Patient, patient_id))
    session.flush()
    assert consent_state_for_phone(session, phone="+79039556279", at=T0) == ConsentState(
        pd_consent=False, marketing_consent=False, do_not_call=True
    )


def test_bad_number_cannot_go_on_the_do_not_call_list(session: Session) -> None:
    with pytest.raises(ValueError):
        add_do_not_call(session, phone="123", at=T0, by="admin")


def test_a_number_belongs_to_one_patient(session: Session) -> None:
    """Phones are unique per number."""
    add_patient(session, "+79039556279")
    with pytest.raises(IntegrityError):
        add_patient(session, "+79039556279", name="Другой")


def test_called_us_within_sees_inbound_calls_only(session: Session, make_call) -> None:
    """Rule: calling back a number that just called us answers the caller's own request."""
    start = T0.timestamp()
    persist_call(session, call=make_call(caller="89039556279", start_ts=start))
    persist_call(
        session,
        call=make_call(
            caller="89051510563",
            start_ts=start,
            direction=Direction.OUTBOUND,
            disposition=Disposition.OUTBOUND_FAILED,
        ),
    )
    assert called_us_within(session, phone="+79039556279", since=T0 - timedelta(hours=1))
    assert not called_us_within(session, phone="+79039556279", since=T0 + timedelta(minutes=1))
    assert not called_us_within(session, phone="+79051510563", since=T0 - timedelta(hours=1))
    assert not called_us_within(session, phone="anonymous", since=T0 - timedelta(hours=1))


def test_new_caller_may_be_called_back(session: Session, make_call) -> None:
    """Rule: new callers have no consent record yet; the callback answers their own request."""
    persist_call(session, call=make_call(caller="89039556279", start_ts=T0.timestamp()))
    consent = consent_state_for_phone(session, phone="+79039556279", at=T0)
    own = called_us_within(session, phone="+79039556279", since=T0 - timedelta(days=1))
    assert may_call(purpose=CallPurpose.SERVICE, consent=consent, callers_own_request=own) == (
        CallPermission(allowed=True, reason="callers_own_request")
    )


# --- demo patients -------------------------------------------------------------------------


def test_demo_clinic_is_the_same_every_time() -> None:
    """The generator is seeded: the same count gives the same patients."""
    first = generate_demo_patients(now=T0, count=3000)
    assert first == generate_demo_patients(now=T0, count=3000)
    assert len(first) == 3000
    phones = [phone for patient in first for phone in patient.phones]
    assert len(phones) == len(set(phones))
    # A realistic mix: some ДМС, mixed consents, no-shows, notes.
    assert 400 < sum(p.insurance_company is not None for p in first) < 800
    kinds = {(c.kind, c.action) for p in first for c in p.consents}
    assert kinds == {("pd", "given"), ("marketing", "given"), ("marketing", "withdrawn")}
    assert any(v.status == "no_show" for p in first for v in p.visits)
    assert sum(bool(p.notes) for p in first) > 500


def test_every_trace_caller_is_a_demo_patient() -> None:
    """Every caller number in the shipped traces (except anonymous) belongs to a patient."""
    phones = {phone for p in generate_demo_patients(now=T0, count=100) for phone in p.phones}
    callers = trace_callers()
    assert "+79161234567" in callers and "+79039556279" in callers
    assert set(callers) <= phones


def test_seeding_demo_patients_twice_adds_nothing(session: Session) -> None:
    """seed_demo_patients is idempotent."""
    assert seed_demo_patients(session, now=T0, count=300) == 300
    assert seed_demo_patients(session, now=T0, count=300) == 0
    assert session.scalar(select(func.count()).select_from(Patient)) == 300


def test_featured_demo_caller_is_afraid_of_anaesthesia(session: Session) -> None:
    """+79161234567 pops a card with the note «боится анестезии»."""
    seed_demo_patients(session, now=T0, count=100)
    card = load_card(session, caller="89161234567", now=T0).to_dict()
    assert card["patient"]["full_name"] == "Иванова Мария Петровна"
    assert "боится анестезии" in [note["text"] for note in card["notes"]]
    assert card["segments"] == ["sleeping", "dms"]


def test_do_not_call_on_one_number_covers_the_patients_other_numbers(session: Session) -> None:
    """A patient who asked not to be called on one number is not called on the others: the
    dialer and the card agree whichever number they look at."""
    patient_id = add_patient(session, "+79039556279", "+79051510563")
    record_consent(
        session,
        patient_id=patient_id,
        kind="pd",
        action="given",
        at=T0,
        by="admin",
        channel="paper",
    )
    add_do_not_call(session, phone="+79039556279", at=T0, by="admin")
    other = consent_state_for_phone(session, phone="+79051510563", at=T0)
    assert other == ConsentState(pd_consent=True, marketing_consent=False, do_not_call=True)
    assert may_call(purpose=CallPurpose.SERVICE, consent=other, callers_own_request=True) == (
        CallPermission(allowed=False, reason="do_not_call")
    )
    card = load_card(session, caller="+79051510563", now=T0).to_dict()
    assert card["consent"]["do_not_call"] is True
