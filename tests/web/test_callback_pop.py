"""A callback we place pops the patient's card with the script of the task it answers (a
callback after a missed call, «Забота», …), not the inbound caller's script."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from callcenter.calls.effects import AgentRinging, CallStarted
from callcenter.calls.model import Direction
from callcenter.store.models import Task
from callcenter.store.models_patients import Patient, PatientPhone
from web.realtime.cards import load_pop_content
from web.realtime.notifier import SocketIONotifier

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PHONE = "+79039556279"


def _patient_with_task(session, reason: str) -> None:
    patient = Patient(full_name="Иванова Мария Петровна", birth_date=date(1984, 3, 5))
    patient.phones = [PatientPhone(phone=PHONE)]
    session.add(patient)
    session.flush()
    session.add(
        Task(
            phone=PHONE,
            reason=reason,
            kind="service",
            status="open",
            opened_at=NOW - timedelta(hours=1),
            due_at=NOW - timedelta(hours=1),
            attempts=0,
            patient_id=patient.id,
        )
    )


def test_a_callback_suggests_its_tasks_script_and_an_inbound_call_the_callers(factory):
    with factory.begin() as session:
        _patient_with_task(session, "abandoned_call")
    with factory() as session:
        _, inbound = load_pop_content(session, caller="89039556279", now=NOW)
        _, callback = load_pop_content(session, caller="89039556279", now=NOW, outbound=True)
    assert inbound is not None and inbound["id"] == "inbound_known"
    assert callback is not None and callback["id"] == "callback_abandoned"


def test_a_callback_for_a_task_without_a_script_of_its_own_gets_the_callers_script(factory):
    with factory.begin() as session:
        _patient_with_task(session, "click_to_call")
    with factory() as session:
        _, script = load_pop_content(session, caller="89039556279", now=NOW, outbound=True)
    assert script is not None and script["id"] == "inbound_known"


def test_the_notifier_loads_the_callback_script_for_calls_we_placed():
    asked: list[tuple[str | None, bool]] = []

    def loader(caller, now, outbound):
        asked.append((caller, outbound))
        return {"known": False}, None

    notifier = SocketIONotifier(emit=lambda *a: None, content_loader=loader)
    try:
        for linkedid, direction in (("in.1", Direction.INBOUND), ("out.1", Direction.OUTBOUND)):
            notifier.call_started(
                CallStarted(linkedid, direction, "89039556279", None, None, NOW.timestamp())
            )
            notifier.call_ringing(
                AgentRinging(linkedid, "101", None, "89039556279", None, None, NOW.timestamp())
            )
        assert notifier.flush()
    finally:
        notifier.close()
    assert asked == [("89039556279", False), ("89039556279", True)]
