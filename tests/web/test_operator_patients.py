"""Quick create of an unknown caller from the "new caller" card, and the card audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from callcenter.store.audit import list_access
from callcenter.store.models_patients import Patient, PatientNote, PatientPhone
from callcenter.store.patients import PatientInputError, create_patient
from tests.web.conftest import csrf_of, login, socket_for
from web import notifier_for
from web.realtime.notifier import Pop

CALLER = "89165551234"  # as Asterisk gives it
E164 = "+79165551234"


def _token(client) -> str:
    return csrf_of(client.get("/operator/").get_data(as_text=True))


def _form(token: str, **fields) -> dict:
    data = {"full_name": "Смирнова Ольга Ивановна", "phone": CALLER, "csrf_token": token}
    data.update(fields)
    return data


def _post(client, data):
    return client.post("/operator/patients", data=data, headers={"Accept": "application/json"})


def test_quick_create_stores_the_patient_and_returns_the_known_card(operator_client, factory):
    token = _token(operator_client)
    r = _post(
        operator_client,
        _form(token, phone="8 (916) 555-12-34", birth_date="1980-12-31", note="боится уколов"),
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    card = body["card"]
    assert card["known"] is True
    assert card["phone"] == E164
    assert card["patient"]["full_name"] == "Смирнова Ольга Ивановна"
    assert card["patient"]["birth_date"] == "1980-12-31"
    assert [(n["text"], n["author"]) for n in card["notes"]] == [("боится уколов", "anna")]
    assert body["pop"] is None  # no such call on the screen: the panel re-renders its own card
    with factory() as s:
        patient = s.get(Patient, body["patient_id"])
        assert [p.phone for p in patient.phones] == [E164]
        assert patient.birth_date == date(1980, 12, 31)


def test_quick_create_updates_the_live_pop_on_every_screen(app, operator_client, factory):
    boris = app.test_client()
    login(boris, "boris")
    boris_socket = socket_for(app, boris, "/operator")
    notifier = notifier_for(app)
    pop = Pop(linkedid="1795369347.41", caller=CALLER, caller_name=None, queue="reception")
    pop.ringing.update({"101", "102"})
    pop.card = {"known": False, "patient": None, "phone": E164}
    notifier.registry.put(pop)
    boris_socket.get_received("/operator")

    r = _post(operator_client, _form(_token(operator_client), linkedid=pop.linkedid))
    assert r.status_code == 201
    mine = r.get_json()["pop"]
    assert mine["linkedid"] == pop.linkedid and mine["state"] == "ringing"
    assert mine["card"]["patient"]["full_name"] == "Смирнова Ольга Ивановна"
    # The registry keeps it (a reload gets the patient), and 102's ringing card changed too.
    assert notifier.registry.get(pop.linkedid).card["known"] is True
    pops = [m["args"][0] for m in boris_socket.get_received("/operator") if m["name"] == "pop"]
    assert [p["card"]["patient"]["full_name"] for p in pops] == ["Смирнова Ольга Ивановна"]
    boris_socket.disconnect(namespace="/operator")

    # Opening a card is audited: the creator was shown it.
    with factory() as s:
        entries = list_access(
            s,
            since=datetime.now(UTC) - timedelta(minutes=5),
            until=datetime.now(UTC) + timedelta(minutes=1),
            limit=10,
        )
    assert [(e.user, e.action, e.subject_kind) for e in entries] == [
        ("anna", "open_card", "patient")
    ]


def test_a_pop_for_another_caller_is_left_alone(operator_client, app):
    notifier = notifier_for(app)
    pop = Pop(linkedid="x.1", caller="89031234567", caller_name=None, queue=None)
    pop.ringing.add("101")
    notifier.registry.put(pop)
    r = _post(operator_client, _form(_token(operator_client), linkedid="x.1"))
    assert r.status_code == 201
    assert r.get_json()["pop"] is None
    assert notifier.registry.get("x.1").card is None


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"full_name": "   "}, 400, "Укажите ФИО пациента."),
        ({"full_name": "Я" * 201}, 400, "ФИО слишком длинное"),
        ({"birth_date": "31/12/80"}, 400, "Дата рождения указана неверно"),
        ({"birth_date": "2999-01-01"}, 400, "не может быть в будущем"),
        ({"birth_date": "1850-01-01"}, 400, "раньше 1900 года"),
        ({"phone": "12345"}, 400, "Номер не распознан"),
        ({"phone": "anonymous"}, 400, "Номер не распознан"),
        ({"note": "x" * 1001}, 400, "Заметка слишком длинная"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    operator_client, factory, fields, status, message
):
    r = _post(operator_client, _form(_token(operator_client), **fields))
    assert r.status_code == status
    assert message in r.get_json()["message"]
    with factory() as s:
        assert s.query(Patient).count() == 0


def test_a_number_that_already_has_a_patient_is_refused(operator_client, factory):
    with factory.begin() as s:
        owner = Patient(full_name="Иванов Пётр")
        owner.phones.append(PatientPhone(phone=E164))
        s.add(owner)
    r = _post(operator_client, _form(_token(operator_client), phone="+7 916 555 12 34"))
    assert r.status_code == 409
    assert "уже есть у пациента" in r.get_json()["message"]
    with factory() as s:
        assert s.query(Patient).count() == 1


def test_csrf_and_role_are_checked(operator_client, supervisor_client, factory):
    r = operator_client.post(
        "/operator/patients", data=_form("forged"), headers={"Accept": "application/json"}
    )
    assert r.status_code == 400
    r = operator_client.post(
        "/operator/patients",
        data={"full_name": "Смирнова", "phone": CALLER},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 400
    token = csrf_of(supervisor_client.get("/supervisor/").get_data(as_text=True))
    r = supervisor_client.post("/operator/patients", data=_form(token))
    assert r.status_code == 403
    with factory() as s:
        assert s.query(Patient).count() == 0


def test_markup_in_the_name_is_stored_as_text(operator_client, factory):
    name = "<script>alert(1)</script>Петров"
    r = _post(operator_client, _form(_token(operator_client), full_name=name))
    assert r.status_code == 201
    assert r.get_json()["card"]["patient"]["full_name"] == name  # the panel sets textContent


def test_store_create_patient_normalizes_and_collapses_spaces(factory):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with factory.begin() as s:
        pid = create_patient(
            s, full_name="  Кузнецова   Анна ", phone="9165551234", author="anna", at=now
        )
    with factory() as s:
        patient = s.get(Patient, pid)
        assert patient.full_name == "Кузнецова Анна"
        assert [p.phone for p in patient.phones] == [E164]
        assert s.query(PatientNote).count() == 0  # no note given, none stored
    with factory.begin() as s, pytest.raises(PatientInputError) as caught:
        create_patient(s, full_name="Другая", phone="+79165551234", author=None, at=now)
    assert (caught.value.code, caught.value.patient_id) == ("phone_taken", pid)
    with factory.begin() as s, pytest.raises(PatientInputError) as caught:
        create_patient(
            s,
            full_name="Завтрашняя",
            phone="+79031234567",
            birth_date=date(2026, 11, 24),
            author=None,
            at=now,
        )
    assert caught.value.code == "bad_birth_date"


def _audited(factory) -> list[tuple[str, str, str]]:
    with factory() as s:
        entries = list_access(
            s,
            since=datetime.now(UTC) - timedelta(minutes=5),
            until=datetime.now(UTC) + timedelta(minutes=1),
            limit=10,
        )
    return [(e.user, e.action, e.subject_id) for e in entries]


def test_a_card_on_the_operators_screen_is_audited(app, operator_client, factory):
    notifier = notifier_for(app)
    known = Pop(linkedid="k.1", caller=CALLER, caller_name=None, queue="reception")
    known.ringing.add("101")
    known.card = {"known": True, "patient": {"id": 42, "full_name": "Иванов"}}
    notifier.registry.put(known)
    elsewhere = Pop(linkedid="k.2", caller=CALLER, caller_name=None, queue="reception")
    elsewhere.ringing.add("102")
    elsewhere.card = {"known": True, "patient": {"id": 43, "full_name": "Петров"}}
    notifier.registry.put(elsewhere)
    unknown = Pop(linkedid="k.3", caller=CALLER, caller_name=None, queue=None)
    unknown.answered_by = "101"
    unknown.card = {"known": False, "patient": None}
    notifier.registry.put(unknown)
    token = _token(operator_client)

    def report(linkedid: str):
        return operator_client.post(
            "/operator/card-opened",
            data={"linkedid": linkedid, "csrf_token": token},
            headers={"Accept": "application/json"},
        )

    assert report("k.1").status_code == 201
    # Not on 101's screen (another extension's ring), or no such call: nothing recorded.
    assert report("k.2").status_code == 404
    assert report("nope").status_code == 404
    r = report("k.3")
    assert (r.status_code, r.get_json()["audited"]) == (200, False)
    assert _audited(factory) == [("anna", "open_card", "42")]


def test_create_patient_race_on_the_number_is_caught_on_both_backends(session_factory, monkeypatch):
    """Two operators create the same caller at once: the loser gets ``phone_taken``, and its
    transaction stays usable (the insert ran in a savepoint)."""
    from callcenter.store import patients as store

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with session_factory.begin() as s:
        winner = create_patient(s, full_name="Первая", phone=CALLER, author="anna", at=now)
    real_find = store.find_patient_id
    calls = []

    def find_before_the_other_commit(session, *, phone):
        calls.append(phone)
        # The loser's check ran before the winner's insert was visible.
        return None if len(calls) == 1 else real_find(session, phone=phone)

    monkeypatch.setattr(store, "find_patient_id", find_before_the_other_commit)
    with session_factory.begin() as s:
        with pytest.raises(PatientInputError) as caught:
            create_patient(s, full_name="Вторая", phone=CALLER, author="boris", at=now)
        assert (caught.value.code, caught.value.patient_id) == ("phone_taken", winner)
        s.add(PatientNote(patient_id=winner, text="после гонки", author="boris", created_at=now))
    with session_factory() as s:
        assert [p.full_name for p in s.query(Patient).all()] == ["Первая"]
        assert [n.text for n in s.query(PatientNote).all()] == ["после гонки"]
