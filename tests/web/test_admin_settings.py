"""/admin/settings: supervisors edit hours, holidays, retry gaps, attempts and kinds; every
change is a new version with who and when; a wrong form saves nothing and says why."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest

from callcenter.store.audit import list_access
from callcenter.store.dialer import clinic_settings_history, load_clinic_schedule
from callcenter.tasks.schedule import ClinicSchedule, TaskKind
from tests.web.conftest import csrf_of
from web.admin.clinic_settings import form_values


def _form(client, **changes):
    page = client.get("/admin/settings").get_data(as_text=True)
    version = re.search(r'name="version" value="([^"]*)"', page)
    assert version
    data = form_values(ClinicSchedule(tz="Europe/Moscow"))
    data.update({"csrf_token": csrf_of(page), "version": version.group(1)})
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _versions(factory):
    with factory() as s:
        return clinic_settings_history(s)


def test_operators_get_403(operator_client) -> None:
    assert operator_client.get("/admin/settings").status_code == 403


def test_the_form_shows_the_defaults_and_no_history(supervisor_client) -> None:
    html = supervisor_client.get("/admin/settings").get_data(as_text=True)
    assert 'name="open_0" value="09:00"' in html and 'name="close_0" value="21:00"' in html
    assert 'name="closed_6" value="1" checked' in html
    assert 'value="15, 60, утро"' in html and 'name="max_attempts"' in html
    assert "Настройки ещё не менялись" in html
    assert "давно не был («Забота»)" in html


def test_a_change_is_saved_as_a_version_with_who_and_when(supervisor_client, factory) -> None:
    before = datetime.now(UTC)
    data = _form(
        supervisor_client,
        closed_5="1",
        holidays="31.12.2026\n2027-01-01",
        retry_gaps="10, 30, утро",
        max_attempts="4",
        kind_sleeping="service",
        note="новогодний график",
    )
    response = supervisor_client.post("/admin/settings", data=data)
    assert response.status_code == 302
    with factory() as s:
        schedule = load_clinic_schedule(s)
        (version,) = clinic_settings_history(s)
        (entry,) = list_access(
            s, since=before - timedelta(1), until=datetime.now(UTC) + timedelta(1), limit=5
        )
    assert schedule.hours[5] is None and schedule.hours[0] == (time(9), time(21))
    assert schedule.holidays == {date(2026, 12, 31), date(2027, 1, 1)}
    assert schedule.retry_gaps_s == (600.0, 1800.0, None)
    assert schedule.max_attempts == 4
    assert schedule.kinds["sleeping"] == TaskKind.SERVICE
    assert schedule.kinds["objection_followup"] == TaskKind.MARKETING
    assert version.changed_by == "vera" and before <= version.changed_at <= datetime.now(UTC)
    assert version.note == "новогодний график"
    assert (entry.action, entry.subject_kind, entry.subject_id) == (
        "change_settings",
        "clinic_settings",
        str(version.id),
    )
    page = supervisor_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Настройки сохранены как новая версия." in page
    assert 'value="10, 30, утро"' in page and 'name="closed_5" value="1" checked' in page
    assert "первая сохранённая версия" in page and "новогодний график" in page

    # A second change: the history lists both, newest first, with what changed.
    supervisor_client.post(
        "/admin/settings",
        data=_form(
            supervisor_client,
            max_attempts="5",
            closed_5="1",
            retry_gaps="10, 30, утро",
            holidays="31.12.2026",
            kind_sleeping="service",
        ),
    )
    versions = _versions(factory)
    assert len(versions) == 2
    html = supervisor_client.get("/admin/settings").get_data(as_text=True)
    rows = re.findall(r'<tr data-version="(\d+)">', html)
    assert rows == [str(versions[0].id), str(versions[1].id)]
    assert "попыток: 4 → 5" in html and "праздники убраны: 01.01.2027" in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"open_0": "9.00"}, "hours_0", "Понедельник: укажите время начала и конца"),
        (
            {"open_2": "18:00", "close_2": "09:00"},
            "hours_2",
            "Среда: рабочий день должен начинаться",
        ),
        ({"open_1": "25:00"}, "hours_1", "Вторник: укажите время"),
        ({"open_3": "10:00", "close_3": "10:00"}, "hours_3", "раньше, чем заканчивается"),
        ({"open_4": "10:00", "close_4": "10:00"}, "hours_4", "Пятница"),
        ({"holidays": "31.02.2026"}, "holidays", "Не даты: «31.02.2026»"),
        ({"holidays": "завтра"}, "holidays", "Не даты: «завтра»"),
        ({"retry_gaps": ""}, "retry_gaps", "хотя бы один интервал"),
        ({"retry_gaps": "15, вечер"}, "retry_gaps", "«вечер» — не интервал"),
        ({"retry_gaps": "0"}, "retry_gaps", "«0» — не интервал"),
        ({"max_attempts": "0"}, "max_attempts", "от 1 до 20"),
        ({"max_attempts": "три"}, "max_attempts", "от 1 до 20"),
        ({"kind_sleeping": "spam"}, "kind_sleeping", "выберите «сервисный» или «маркетинговый»"),
        ({"kind_reminder": None}, "kind_reminder", "напоминание о визите"),
        ({"note": "x" * 501}, "note", "длиннее 500"),
    ],
)
def test_a_wrong_field_saves_nothing_and_says_why(
    supervisor_client, factory, changes, field, message
) -> None:
    response = supervisor_client.post("/admin/settings", data=_form(supervisor_client, **changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Настройки не сохранены" in html
    shown = re.search(rf'<p class="error" role="alert" data-field="{field}">([^<]*)</p>', html)
    assert shown, html
    assert message in shown.group(1).replace("&#34;", '"').replace("&#39;", "'")
    assert _versions(factory) == []


def test_every_error_is_reported_at_once_and_the_input_is_kept(supervisor_client) -> None:
    data = _form(supervisor_client, open_0="x", retry_gaps="abc", max_attempts="99")
    html = supervisor_client.post("/admin/settings", data=data).get_data(as_text=True)
    assert {"hours_0", "retry_gaps", "max_attempts"} <= set(re.findall(r'data-field="(\w+)"', html))
    assert 'value="abc"' in html and 'value="99"' in html


def test_all_days_closed_is_refused(supervisor_client, factory) -> None:
    closed = {f"closed_{i}": "1" for i in range(7)}
    response = supervisor_client.post("/admin/settings", data=_form(supervisor_client, **closed))
    assert response.status_code == 400
    assert "хотя бы один рабочий день" in response.get_data(as_text=True)
    assert _versions(factory) == []


def test_a_stale_form_is_refused(supervisor_client, factory) -> None:
    stale = _form(supervisor_client, max_attempts="4")
    supervisor_client.post("/admin/settings", data=_form(supervisor_client, max_attempts="5"))
    response = supervisor_client.post("/admin/settings", data=stale)
    assert response.status_code == 400
    assert "изменил другой пользователь" in response.get_data(as_text=True)
    assert len(_versions(factory)) == 1


def test_no_change_saves_no_new_version(supervisor_client, factory) -> None:
    supervisor_client.post("/admin/settings", data=_form(supervisor_client, max_attempts="4"))
    again = supervisor_client.post(
        "/admin/settings", data=_form(supervisor_client, max_attempts="4")
    )
    assert again.status_code == 200
    assert "Изменений нет" in again.get_data(as_text=True)
    assert len(_versions(factory)) == 1


def test_without_csrf_nothing_is_saved(supervisor_client, factory) -> None:
    data = _form(supervisor_client, max_attempts="4")
    del data["csrf_token"]
    assert supervisor_client.post("/admin/settings", data=data).status_code == 400
    assert _versions(factory) == []
