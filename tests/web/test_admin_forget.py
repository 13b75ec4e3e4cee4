"""/admin/forget: a supervisor forgets a person in two steps (check, confirm), with CSRF."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callcenter.calls.model import Disposition
from callcenter.config import Settings
from callcenter.store.audit import list_access
from callcenter.store.models import Call
from callcenter.store.models_patients import Patient, PatientPhone
from callcenter.store.patients import is_do_not_call, phone_hash
from callcenter.store.queries import persist_call
from tests.web.conftest import csrf_of, login
from web import create_app, notifier_for

PHONE = "+79161234567"


@pytest.fixture
def recordings_dir(tmp_path):
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


@pytest.fixture
def admin_app(web_db_url, factory, recordings_dir):
    settings = Settings(database_url=web_db_url, demo=True, recordings_dir=str(recordings_dir))
    app = create_app(settings, session_factory=factory, testing=True)
    yield app
    notifier_for(app).close()


@pytest.fixture
def supervisor(admin_app):
    client = admin_app.test_client()
    assert login(client, "vera").status_code == 302
    return client


@pytest.fixture
def patient(factory, make_call, recordings_dir):
    with factory.begin() as s:
        p = Patient(full_name="Иванова Мария", birth_date=date(1984, 3, 5))
        p.phones = [PatientPhone(phone=PHONE)]
        s.add(p)
        call = make_call(
            caller="89161234567",
            recording="ivanova.wav",
            disposition=Disposition.ANSWERED,
            agent="101",
            talk_s=40.0,
            start_ts=(datetime.now(UTC) - timedelta(days=2)).timestamp(),
        )
        persist_call(s, call=call)
    (recordings_dir / "ivanova.wav").write_bytes(b"RIFF")
    return call.linkedid


def _token(client) -> str:
    return csrf_of(client.get("/admin/forget").get_data(as_text=True))


def test_operators_cannot_forget(admin_app, patient) -> None:
    client = admin_app.test_client()
    assert login(client, "anna").status_code == 302
    token = csrf_of(client.get("/operator/").get_data(as_text=True))
    assert client.get("/admin/forget").status_code == 403
    response = client.post(
        "/admin/forget", data={"phone": PHONE, "confirm": "yes", "csrf_token": token}
    )
    assert response.status_code == 403


def test_check_then_confirm_forgets_and_audits(supervisor, factory, patient, recordings_dir):
    token = _token(supervisor)
    check = supervisor.post(
        "/admin/forget/check",
        data={"phone": "8 916 123-45-67", "keep_do_not_call": "1", "csrf_token": token},
    )
    html = check.get_data(as_text=True)
    assert check.status_code == 200
    assert "Иванова Мария" in html and "Звонков: 1, из них с записью: 1" in html
    # Checking changed nothing.
    assert (recordings_dir / "ivanova.wav").exists()
    confirm_form = re.search(r'<form[^>]*id="forget-confirm".*?</form>', html, re.S)
    assert confirm_form
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm_form.group(0)))
    assert fields["phone"] == PHONE and fields["confirm"] == "yes"
    done = supervisor.post("/admin/forget", data=fields)
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "Данные удалены" in text and "Карточка пациента удалена." in text
    assert "остаётся в списке «не звонить»" in text
    assert not (recordings_dir / "ivanova.wav").exists()
    now = datetime.now(UTC)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 0
        assert s.scalar(select(Call.phone).where(Call.linkedid == patient)) is None
        assert is_do_not_call(s, phone=PHONE)
        (entry,) = list_access(
            s, since=now - timedelta(hours=1), until=now + timedelta(hours=1), limit=5
        )
    assert (entry.user, entry.action, entry.subject_id) == ("vera", "forget", phone_hash(PHONE))


def test_without_confirmation_nothing_happens(supervisor, factory, patient, recordings_dir):
    token = _token(supervisor)
    response = supervisor.post("/admin/forget", data={"phone": PHONE, "csrf_token": token})
    assert response.status_code == 400
    assert "не подтверждено" in response.get_data(as_text=True)
    assert (recordings_dir / "ivanova.wav").exists()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 1


def test_without_csrf_nothing_happens(supervisor, factory, patient) -> None:
    response = supervisor.post("/admin/forget", data={"phone": PHONE, "confirm": "yes"})
    assert response.status_code == 400
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 1


@pytest.mark.parametrize("bad", ["Иванова", "", "123"])
def test_not_a_number_says_so_in_russian(supervisor, bad) -> None:
    token = _token(supervisor)
    for url, extra in (("/admin/forget/check", {}), ("/admin/forget", {"confirm": "yes"})):
        response = supervisor.post(url, data={"phone": bad, "csrf_token": token, **extra})
        assert response.status_code == 400
        assert "не номер телефона" in response.get_data(as_text=True)
