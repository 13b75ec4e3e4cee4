"""Recording a call's outcome from the panel; markup from callers is escaped on pages."""

from __future__ import annotations

import time

from callcenter.calls.effects import AgentRinging, CallAnswered
from callcenter.calls.model import Disposition
from callcenter.store import queries, users
from tests.web.conftest import csrf_of, login, socket_for
from web import notifier_for


def panel_token(client) -> str:
    return csrf_of(client.get("/operator/").get_data(as_text=True))


def test_outcome_is_stored_with_its_date(operator_client, factory):
    response = operator_client.post(
        "/operator/outcome",
        data={
            "csrf_token": panel_token(operator_client),
            "linkedid": "1795369641.7",
            "outcome": "booked",
            "date": "2026-11-30",
            "note": "к терапевту, <b>утро</b>",
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201
    assert response.get_json()["outcome"] == "booked"
    with factory() as s:
        [row] = users.list_outcomes(s, linkedid="1795369641.7")
    assert (row.operator, row.detail, row.note) == (
        "anna",
        "2026-11-30",
        "к терапевту, <b>утро</b>",
    )


def test_outcome_without_csrf_or_with_a_forged_one_is_refused(operator_client, factory):
    data = {"linkedid": "1.1", "outcome": "not_interested"}
    assert operator_client.post("/operator/outcome", data=data).status_code == 400
    forged = {**data, "csrf_token": "x" * 43}
    assert operator_client.post("/operator/outcome", data=forged).status_code == 400
    with factory() as s:
        assert users.list_outcomes(s, linkedid="1.1") == []


def test_csrf_header_is_accepted_like_the_field(operator_client):
    response = operator_client.post(
        "/operator/outcome",
        data={"linkedid": "1.1", "outcome": "wrong_number"},
        headers={"X-CSRF-Token": panel_token(operator_client), "Accept": "application/json"},
    )
    assert response.status_code == 201


def test_callback_without_a_time_is_a_json_400(operator_client):
    response = operator_client.post(
        "/operator/outcome",
        data={
            "csrf_token": panel_token(operator_client),
            "linkedid": "1.1",
            "outcome": "callback_requested",
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "needs a date or time" in response.get_json()["message"]


def test_supervisor_cannot_record_outcomes(supervisor_client):
    token = csrf_of(supervisor_client.get("/supervisor/").get_data(as_text=True))
    response = supervisor_client.post(
        "/operator/outcome", data={"csrf_token": token, "linkedid": "1.1", "outcome": "booked"}
    )
    assert response.status_code == 403


def test_recording_the_outcome_takes_the_ended_card_off_the_screen(app, make_call):
    http = app.test_client()
    login(http, "anna")
    sio = socket_for(app, http, "/operator")
    notifier = notifier_for(app)
    notifier.call_ringing(AgentRinging("9.9", "101", None, "89039556279", None, None, 1.0))
    notifier.call_answered(CallAnswered("9.9", "101", None, 2.0))
    notifier.call_ended(make_call(linkedid="9.9", disposition=Disposition.ANSWERED, agent="101"))
    assert notifier.flush()
    assert [
        p["linkedid"] for p in sio.emit("sync", {}, namespace="/operator", callback=True)["pops"]
    ] == ["9.9"]
    sio.get_received("/operator")
    http.post(
        "/operator/outcome",
        data={"csrf_token": panel_token(http), "linkedid": "9.9", "outcome": "not_interested"},
    )
    assert notifier.flush()
    assert sio.emit("sync", {}, namespace="/operator", callback=True)["pops"] == []
    assert [e["name"] for e in sio.get_received("/operator")] == ["pop_withdrawn"]
    sio.disconnect("/operator")


def test_markup_in_a_caller_name_is_escaped_on_the_supervisor_page(
    supervisor_client, factory, make_call
):
    call = make_call(start_ts=time.time() - 60, caller_name="<script>alert(1)</script>")
    with factory.begin() as s:
        queries.persist_call(s, call=call)
    page = supervisor_client.get("/supervisor/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
