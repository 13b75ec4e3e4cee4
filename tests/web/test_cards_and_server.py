"""The fallback card's shape, and serving the app from a thread."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime

from callcenter.calls.model import Disposition
from callcenter.store import patients, queries, users
from web import notifier_for
from web.realtime.cards import load_pop_content
from web.server import start_web_in_thread

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
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_pop_content_of_a_dropped_caller(factory, make_call):
    dropped = make_call(caller="89261112233", disposition=Disposition.ABANDONED)
    with factory.begin() as s:
        queries.persist_call(s, call=dropped)
    with factory() as s:
        card, script = load_pop_content(s, caller="89261112233", now=NOW)
    assert set(card) == CARD_KEYS
    assert card["phone"] == "+79261112233"
    assert card["known"] is False
    assert [t["reason"] for t in card["open_tasks"]] == ["abandoned_call"]
    assert [c["linkedid"] for c in card["recent_calls"]] == [dropped.linkedid]
    assert script is not None and script["lines"]
    json.dumps([card, script])  # goes over Socket.IO as is


def test_do_not_call_outcome_puts_the_number_on_the_list(factory, make_call):
    call = make_call(caller="89261112233", disposition=Disposition.ANSWERED, agent="101")
    with factory.begin() as s:
        queries.persist_call(s, call=call)
        users.record_outcome(
            s,
            linkedid=call.linkedid,
            operator="anna",
            outcome="do_not_call",
            detail=None,
            note=None,
            at=NOW,
        )
    with factory() as s:
        card, _ = load_pop_content(s, caller="89261112233", now=NOW)
        assert patients.is_do_not_call(s, phone="+79261112233")
    assert card["consent"]["do_not_call"] is True


def test_web_server_runs_in_a_thread_and_stops(app):
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    try:
        with urllib.request.urlopen(f"{server.url}/auth/login", timeout=5) as response:
            assert response.status == 200
            assert "Вход" in response.read().decode()
        with urllib.request.urlopen(
            f"{server.url}/static/vendor/socket.io.min.js", timeout=5
        ) as response:
            assert b"Socket.IO v4" in response.read()[:200]
    finally:
        server.stop()
    assert notifier_for(app) is not None
