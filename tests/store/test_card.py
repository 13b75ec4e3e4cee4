"""The screen-pop card: assembled from the store for a caller ID, in the panel's JSON shape."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from callcenter.calls.model import Direction, Disposition
from callcenter.store.models_patients import Patient, PatientNote, PatientPhone, Visit
from callcenter.store.patients import add_do_not_call, load_card, record_consent
from callcenter.store.queries import persist_call

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CARD_KEYS = {
    "phone",
    "raw_caller",
    "known",
    "patient",
    "last_visit",
    "notes",
    "segments",
    "consent",
    "open_tasks",
    "recent_calls",
    "months_since_visit",
}


def add_ivanova(session: Session) -> int:
    patient = Patient(
        full_name="Иванова Мария Петровна",
        birth_date=date(1984, 3, 5),
        doctor="Смирнов А. В.",
        insurance_company="АльфаСтрахование",
        policy_end=date(2027, 12, 31),
    )
    patient.phones = [PatientPhone(phone="+79161234567"), PatientPhone(phone="+79265550101")]
    session.add(patient)
    session.flush()
    session.add_all(
        [
            Visit(
                patient_id=patient.id,
                visit_date=date(2026, 3, 14),
                doctor="Смирнов А. В.",
                service="Чистка зубов",
                status="completed",
            ),
            Visit(
                patient_id=patient.id,
                visit_date=date(2025, 10, 2),
                doctor="Смирнов А. В.",
                service="Консультация",
                status="completed",
            ),
            PatientNote(
                patient_id=patient.id,
                text="боится анестезии",
                author="Ольга",
                created_at=NOW - timedelta(days=300),
            ),
            PatientNote(
                patient_id=patient.id,
                text="любит кофе",
                author="Ольга",
                created_at=NOW - timedelta(days=10),
            ),
        ]
    )
    record_consent(
        session,
        patient_id=patient.id,
        kind="pd",
        action="given",
        at=NOW - timedelta(days=400),
        by="Ольга",
        channel="paper",
    )
    return patient.id


def test_card_has_exactly_the_panel_shape_and_is_json(session: Session, make_call) -> None:
    """The card's dict is exactly the operator panel's contract, dates as ISO strings."""
    patient_id = add_ivanova(session)
    persist_call(session, call=make_call(caller="89161234567", start_ts=NOW.timestamp() - 600))
    card = load_card(session, caller="89161234567", now=NOW).to_dict()
    assert set(card) == CARD_KEYS
    json.dumps(card)  # JSON-able as is
    assert card["phone"] == "+79161234567"
    assert card["raw_caller"] == "89161234567"
    assert card["known"] is True
    assert card["patient"] == {
        "id": patient_id,
        "full_name": "Иванова Мария Петровна",
        "birth_date": "1984-03-05",
        "doctor": "Смирнов А. В.",
        "insurance": {"company": "АльфаСтрахование", "policy_end": "2027-12-31"},
    }
    assert card["last_visit"] == {
        "date": "2026-03-14",
        "doctor": "Смирнов А. В.",
        "service": "Чистка зубов",
    }
    assert [n["text"] for n in card["notes"]] == ["любит кофе", "боится анестезии"]
    assert set(card["notes"][0]) == {"text", "author", "created_at"}
    assert card["months_since_visit"] == 8
    # Sleeping (8 months), dropped (the missed call just now), dms (policy to 2027).
    assert card["segments"] == ["sleeping", "dropped", "dms"]
    assert card["consent"] == {"pd": True, "marketing": False, "do_not_call": False}
    [task] = card["open_tasks"]
    assert set(task) == {"id", "reason", "kind", "opened_at", "due_at", "attempts"}
    assert (task["reason"], task["kind"], task["attempts"]) == ("missed_call", "service", 0)
    [call] = card["recent_calls"]
    assert set(call) == {"linkedid", "direction", "disposition", "start_ts", "agent", "talk_s"}
    assert call["disposition"] == "queue_timeout"


def test_patient_gets_the_same_card_from_either_number(session: Session, make_call) -> None:
    """A patient with two numbers calling from either gets the same card."""
    add_ivanova(session)
    persist_call(session, call=make_call(caller="89265550101", start_ts=NOW.timestamp() - 900))
    add_do_not_call(session, phone="+79265550101", at=NOW - timedelta(days=1), by="Ольга")
    first = load_card(session, caller="+79161234567", now=NOW).to_dict()
    second = load_card(session, caller="8 926 555-01-01", now=NOW).to_dict()
    for card in (first, second):
        card.pop("phone")
        card.pop("raw_caller")
    assert first == second
    # The call and the do-not-call entry of the second number show from the first one too.
    assert len(first["recent_calls"]) == 1
    assert first["consent"]["do_not_call"] is True


def test_unknown_caller_gets_a_new_caller_card(session: Session, make_call) -> None:
    """Unknown caller → known False, patient None (a "new caller" card)."""
    persist_call(session, call=make_call(caller="89039556279", start_ts=NOW.timestamp() - 60))
    card = load_card(session, caller="89039556279", now=NOW).to_dict()
    assert card["known"] is False
    assert card["patient"] is None
    assert card["phone"] == "+79039556279"
    assert card["last_visit"] is None
    assert card["notes"] == []
    assert card["months_since_visit"] is None
    assert card["consent"] == {"pd": False, "marketing": False, "do_not_call": False}
    assert len(card["open_tasks"]) == 1
    assert len(card["recent_calls"]) == 1
    assert card["segments"] == ["dropped"]


def test_anonymous_caller_has_no_phone(session: Session) -> None:
    """`anonymous` → phone None."""
    card = load_card(session, caller="anonymous", now=NOW).to_dict()
    assert card["phone"] is None
    assert card["raw_caller"] == "anonymous"
    assert card["known"] is False
    assert card["recent_calls"] == [] and card["open_tasks"] == []


def test_recent_calls_are_the_latest_ten_newest_first(session: Session, make_call) -> None:
    add_ivanova(session)
    base = NOW.timestamp() - 86_400
    for i in range(12):
        persist_call(
            session,
            call=make_call(
                caller="89161234567",
                start_ts=base + i * 600,
                disposition=Disposition.ANSWERED,
                agent="101",
                talk_s=60.0,
            ),
        )
    calls = load_card(session, caller="89161234567", now=NOW).to_dict()["recent_calls"]
    assert len(calls) == 10
    assert calls[0]["start_ts"] == base + 11 * 600
    assert calls == sorted(calls, key=lambda c: c["start_ts"], reverse=True)


def test_card_without_insurance_has_insurance_none(session: Session) -> None:
    patient = Patient(full_name="Петров Сергей")
    patient.phones = [PatientPhone(phone="+79039556279")]
    session.add(patient)
    session.flush()
    card = load_card(session, caller="+79039556279", now=NOW).to_dict()
    assert card["patient"]["insurance"] is None
    assert card["patient"]["birth_date"] is None


def test_segments_read_the_whole_call_history(session: Session, make_call) -> None:
    """A missed call older than the ten shown still makes the patient dropped until won back."""
    add_ivanova(session)
    base = NOW.timestamp() - 86_400
    persist_call(session, call=make_call(caller="89161234567", start_ts=base))
    for i in range(1, 13):  # our failed dials are not contacts: nothing wins the patient back
        persist_call(
            session,
            call=make_call(
                caller="89161234567",
                start_ts=base + i * 600,
                direction=Direction.OUTBOUND,
                disposition=Disposition.OUTBOUND_FAILED,
            ),
        )
    card = load_card(session, caller="89161234567", now=NOW).to_dict()
    assert "dropped" in card["segments"]
    assert all(c["disposition"] == "outbound_failed" for c in card["recent_calls"])
    persist_call(
        session,
        call=make_call(
            caller="89161234567",
            start_ts=base + 13 * 600,
            disposition=Disposition.ANSWERED,
            agent="101",
            talk_s=30.0,
        ),
    )
    card = load_card(session, caller="89161234567", now=NOW).to_dict()
    assert "dropped" not in card["segments"]


def test_card_assembly_is_pure_and_orders_what_it_shows() -> None:
    """The card is assembled from plain views, no database: notes newest first, tasks by due
    time, the last completed visit (not a later no-show or a future booking)."""
    from callcenter.patients.card import NoteView, PatientView, TaskView, assemble_card
    from callcenter.patients.consent import NO_CONSENT
    from callcenter.patients.segments import VisitView

    def note(text: str, days: int) -> NoteView:
        return NoteView(text=text, author=None, created_at=NOW - timedelta(days=days))

    def task(task_id: int, hours: int) -> TaskView:
        due = NOW + timedelta(hours=hours)
        return TaskView(
            id=task_id, reason="missed_call", kind="service", opened_at=NOW, due_at=due, attempts=0
        )

    card = assemble_card(
        phone="+79161234567",
        raw_caller="89161234567",
        patient=PatientView(
            id=7,
            full_name="Иванова Мария Петровна",
            birth_date=None,
            doctor=None,
            insurance_company=None,
            policy_end=None,
        ),
        visits=[
            VisitView(visit_date=date(2026, 10, 1), status="completed", service="Чистка"),
            VisitView(visit_date=date(2026, 11, 2), status="no_show"),
            VisitView(visit_date=date(2026, 12, 1), status="scheduled"),
        ],
        notes=[note("старая", 30), note("новая", 1)],
        calls=[],
        open_tasks=[task(2, 5), task(1, 1)],
        consent=NO_CONSENT,
        today=NOW.date(),
    ).to_dict()
    assert card["last_visit"] == {"date": "2026-10-01", "doctor": None, "service": "Чистка"}
    assert card["months_since_visit"] == 1
    assert [n["text"] for n in card["notes"]] == ["новая", "старая"]
    assert [t["id"] for t in card["open_tasks"]] == [1, 2]
    # The no-show is won back by the booking on 1 December.
    assert card["segments"] == []
