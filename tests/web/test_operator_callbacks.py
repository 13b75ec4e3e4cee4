"""The operators' callback list in the panel: list, take, snooze, close, click-to-call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.dialer.on_demand import register_on_demand_tasks
from callcenter.jobs import build_huey
from callcenter.store.models import Task
from callcenter.store.models_patients import Patient, PatientPhone
from tests.web.conftest import csrf_of, login, socket_for
from web import settings as app_settings

PATIENT_PHONE = "+79161234567"
STRANGER_PHONE = "+79039556279"


def add_task(factory, *, phone, reason="missed_call", due_in=timedelta(minutes=-10)):
    now = datetime.now(UTC)
    with factory.begin() as s:
        task = Task(
            phone=phone,
            reason=reason,
            kind="service",
            status="open",
            opened_at=now - timedelta(hours=1),
            due_at=now + due_in,
            attempts=0,
        )
        s.add(task)
        s.flush()
        return task.id


@pytest.fixture
def tasks(factory):
    with factory.begin() as s:
        patient = Patient(full_name="Иванова Мария Петровна", doctor="Петров И. И.")
        patient.phones.append(PatientPhone(phone=PATIENT_PHONE))
        s.add(patient)
    return {
        "patient": add_task(factory, phone=PATIENT_PHONE),
        "stranger": add_task(factory, phone=STRANGER_PHONE, reason="abandoned_call"),
    }


def _token(client) -> str:
    return csrf_of(client.get("/operator/").get_data(as_text=True))


def _listed(client) -> dict[int, dict]:
    r = client.get("/operator/callbacks")
    assert r.status_code == 200
    return {item["task_id"]: item for item in r.get_json()["items"]}


def _post(client, url, token, **data):
    return client.post(
        url, data={"csrf_token": token, **data}, headers={"Accept": "application/json"}
    )


def dial_requests(app) -> list[int]:
    with app.app_context():
        cfg = app_settings()
    huey = build_huey(cfg)
    register_on_demand_tasks(huey, cfg)  # to read the queued jobs back
    return [t.args[0] for t in huey.pending() if t.name == "dialer_dial_now"]


def test_list_shows_patient_reason_attempts_and_script(tasks, operator_client):
    items = _listed(operator_client)
    assert set(items) == {tasks["patient"], tasks["stranger"]}
    known = items[tasks["patient"]]
    assert known["patient_name"] == "Иванова Мария Петровна"
    assert known["reason_label"] == "пропущенный звонок"
    assert known["attempts"] == 0
    assert known["status"] == "due"
    assert known["script"]["lines"], "the callback script is suggested"
    assert items[tasks["stranger"]]["reason_label"] == "не дождался ответа"
    assert items[tasks["stranger"]]["patient_name"] is None
    page = operator_client.get("/operator/").get_data(as_text=True)
    assert "Уже связались иначе" in page and 'id="callbacks"' in page


def test_take_dials_now_and_leaves_the_other_operators_list_at_once(app, tasks, operator_client):
    boris = app.test_client()
    login(boris, "boris")
    boris_socket = socket_for(app, boris, "/operator")
    boris_socket.get_received("/operator")

    r = _post(
        operator_client, f"/operator/callbacks/{tasks['patient']}/take", _token(operator_client)
    )
    assert r.status_code == 202, r.get_json()
    received = boris_socket.get_received("/operator")
    assert {"name": "callbacks_changed", "args": [{"task_id": tasks["patient"]}],
            "namespace": "/operator"} in received  # fmt: skip
    assert tasks["patient"] not in _listed(boris)
    assert _listed(operator_client)[tasks["patient"]]["assigned_extension"] == "101"
    assert dial_requests(app) == [tasks["patient"]]

    # Too late for 102: taken by 101.
    r = _post(boris, f"/operator/callbacks/{tasks['patient']}/take", _token(boris))
    assert r.status_code == 409
    assert "другой оператор" in r.get_json()["message"]
    assert dial_requests(app) == [tasks["patient"]]
    boris_socket.disconnect(namespace="/operator")


def test_snooze_to_a_time_and_not_into_the_past(tasks, operator_client, factory):
    token = _token(operator_client)
    url = f"/operator/callbacks/{tasks['stranger']}/snooze"
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = _post(operator_client, url, token, until=past)
    assert r.status_code == 400
    assert r.get_json()["message"] == "Отложить можно только на время в будущем."
    r = _post(operator_client, url, token, until="завтра")
    assert r.status_code == 400
    r = _post(operator_client, url, token, until="2026-11-23T09:30")  # no time zone
    assert r.status_code == 400
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    r = _post(operator_client, url, token, until=later.isoformat().replace("+00:00", "Z"))
    assert r.status_code == 202, r.get_json()
    with factory() as s:
        due = s.get(Task, tasks["stranger"]).due_at
    assert due.replace(tzinfo=UTC) == later
    assert _listed(operator_client)[tasks["stranger"]]["status"] == "scheduled"


def test_close_with_a_reason(tasks, operator_client, factory):
    token = _token(operator_client)
    url = f"/operator/callbacks/{tasks['stranger']}/close"
    r = _post(operator_client, url, token, reason="bored")
    assert r.status_code == 400
    assert "причину" in r.get_json()["message"]
    r = _post(operator_client, url, token, reason="wrong_number")
    assert r.status_code == 202
    assert tasks["stranger"] not in _listed(operator_client)
    with factory() as s:
        assert s.get(Task, tasks["stranger"]).status == "closed"
    r = _post(operator_client, url, token, reason="wrong_number")
    assert r.status_code == 409  # already closed


def test_unknown_action_and_csrf(tasks, operator_client):
    r = _post(
        operator_client, f"/operator/callbacks/{tasks['stranger']}/dance", _token(operator_client)
    )
    assert r.status_code == 404
    r = operator_client.post(
        f"/operator/callbacks/{tasks['stranger']}/take", headers={"Accept": "application/json"}
    )
    assert r.status_code == 400
    assert tasks["stranger"] in _listed(operator_client)


def test_click_to_call_from_a_card(app, operator_client, factory):
    token = _token(operator_client)
    r = _post(operator_client, "/operator/call", token, phone="8 (903) 955-62-79")
    assert r.status_code == 202, r.get_json()
    task_id = r.get_json()["task_id"]
    with factory() as s:
        task = s.get(Task, task_id)
        assert (task.phone, task.reason, task.assigned_extension) == (
            STRANGER_PHONE,
            "click_to_call",
            "101",
        )
    assert dial_requests(app) == [task_id]
    item = _listed(operator_client)[task_id]
    assert item["reason_label"] == "звонок из карточки"

    r = _post(operator_client, "/operator/call", token, phone="123")
    assert r.status_code == 400
    assert "номер не распознан" in r.get_json()["message"]
    assert dial_requests(app) == [task_id]


def test_supervisors_have_no_callback_list(supervisor_client):
    assert supervisor_client.get("/operator/callbacks").status_code == 403
