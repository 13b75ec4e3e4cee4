"""web.audit.audit_access: records the logged-in user, and never breaks the page on failure."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import g

from callcenter.store import users
from callcenter.store.audit import list_access
from tests.web.conftest import PASSWORD
from web.audit import ANONYMOUS, audit_access


def _entries(factory):
    now = datetime.now(UTC)
    with factory() as s:
        return list_access(
            s, since=now - timedelta(hours=1), until=now + timedelta(hours=1), limit=50
        )


def test_records_the_logged_in_user_action_subject_and_time(app, factory) -> None:
    with factory() as s:
        vera = users.authenticate(s, username="vera", password=PASSWORD)
    before = datetime.now(UTC)
    with app.test_request_context("/"):
        g.user = vera
        audit_access("open_card", "patient", 42)
    (entry,) = _entries(factory)
    assert (entry.user, entry.action, entry.subject_kind, entry.subject_id) == (
        "vera",
        "open_card",
        "patient",
        "42",
    )
    assert before <= entry.at <= datetime.now(UTC)


def test_without_a_user_the_entry_names_anonymous(app, factory) -> None:
    with app.test_request_context("/"):
        audit_access("open_transcript", "call", "1795369641.3")
    (entry,) = _entries(factory)
    assert entry.user == ANONYMOUS


def test_a_failing_write_is_logged_and_swallowed(app, factory, caplog) -> None:
    with app.test_request_context("/"), caplog.at_level(logging.ERROR, logger="web.audit"):
        audit_access("open_card", "patient", "x" * 200)  # too long for the column: refused
    assert _entries(factory) == []
    assert any("audit entry not stored" in r.getMessage() for r in caplog.records)


def test_a_view_that_audits_records_the_request_user(app, factory) -> None:
    """Through a real request: the before_request hook's user is the one recorded."""

    @app.get("/_test/card/<int:patient_id>")
    def _card(patient_id: int) -> str:
        audit_access("open_card", "patient", patient_id)
        return "ok"

    client = app.test_client()
    from tests.web.conftest import login

    assert login(client, "anna").status_code == 302
    assert client.get("/_test/card/5").status_code == 200
    (entry,) = _entries(factory)
    assert (entry.user, entry.subject_id) == ("anna", "5")
