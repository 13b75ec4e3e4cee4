"""/admin/audit: the audit log page for supervisors, with filters and paging (Russian UI)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.store.audit import record_access
from web.admin import AUDIT_PAGE_SIZE


def _seed(factory, rows):
    with factory.begin() as s:
        for user, action, kind, subject, at in rows:
            record_access(s, user=user, action=action, subject_kind=kind, subject_id=subject, at=at)


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', html)]


def _today() -> str:
    return datetime.now(ZoneInfo("Europe/Moscow")).date().isoformat()


def test_operators_get_403_and_visitors_the_login_page(client, operator_client) -> None:
    assert operator_client.get("/admin/audit").status_code == 403
    assert operator_client.get("/admin/").status_code == 403
    response = client.get("/admin/audit")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_lists_todays_entries_newest_first_in_russian(supervisor_client, factory) -> None:
    now = datetime.now(UTC)
    _seed(
        factory,
        [
            ("anna", "open_card", "patient", 7, now - timedelta(minutes=2)),
            ("boris", "play_recording", "call", "1795369641.5", now - timedelta(minutes=1)),
            ("anna", "open_card", "patient", 9, now - timedelta(days=30)),  # outside the period
        ],
    )
    page = supervisor_client.get("/admin/audit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Журнал доступа к персональным данным" in html
    assert "прослушал запись" in html and "открыл карточку" in html
    assert len(_ids(html)) == 2
    assert html.index("1795369641.5") < html.index('<td class="subject">7</td>')
    assert '<td class="subject">9</td>' not in html


def test_filters_by_user_and_kind(supervisor_client, factory) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    _seed(
        factory,
        [
            ("anna", "open_card", "patient", 7, now),
            ("boris", "open_card", "patient", 8, now),
            ("boris", "open_transcript", "call", "1795369641.5", now),
        ],
    )
    html = supervisor_client.get("/admin/audit?user=boris").get_data(as_text=True)
    assert len(_ids(html)) == 2 and '<td class="subject">7</td>' not in html
    html = supervisor_client.get("/admin/audit?user=boris&kind=call").get_data(as_text=True)
    assert len(_ids(html)) == 1 and "1795369641.5" in html
    html = supervisor_client.get("/admin/audit?user=nobody").get_data(as_text=True)
    assert _ids(html) == [] and "Записей за этот период по этим условиям нет." in html


def test_paging_walks_every_entry_once(supervisor_client, factory) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    total = AUDIT_PAGE_SIZE + 7
    _seed(
        factory,
        [("anna", "open_card", "patient", n, now + timedelta(seconds=n)) for n in range(total)],
    )
    first = supervisor_client.get(f"/admin/audit?from={_today()}&to={_today()}")
    html = first.get_data(as_text=True)
    page1 = _ids(html)
    assert len(page1) == AUDIT_PAGE_SIZE
    link = re.search(r'id="next-page" href="([^"]+)"', html)
    assert link, "no next page link"
    second = supervisor_client.get(link.group(1).replace("&amp;", "&"))
    page2 = _ids(second.get_data(as_text=True))
    assert len(page2) == 7
    assert not set(page1) & set(page2)
    assert 'id="next-page"' not in second.get_data(as_text=True)
    assert 'id="first-page"' in second.get_data(as_text=True)


def test_bad_period_and_bad_cursor_say_what_is_wrong(supervisor_client) -> None:
    page = supervisor_client.get("/admin/audit?from=2026-13-01")
    assert page.status_code == 400
    assert "Неверный период" in page.get_data(as_text=True)
    page = supervisor_client.get("/admin/audit?from=2026-11-10&to=2026-11-01")
    assert page.status_code == 400
    page = supervisor_client.get("/admin/audit?before=abc")
    assert page.status_code == 400
    assert "целое число" in page.get_data(as_text=True)


def test_subject_text_is_escaped(supervisor_client, factory) -> None:
    _seed(factory, [("anna", "open_card", "patient", "<b>x</b>", datetime.now(UTC))])
    html = supervisor_client.get("/admin/audit").get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
