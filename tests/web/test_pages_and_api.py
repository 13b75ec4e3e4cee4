"""Supervisor's calls-of-today page, the JSON API and its error mapping."""

from __future__ import annotations

import time

import pytest

from callcenter.calls.model import Direction, Disposition
from callcenter.errors import ConsentMissing, TaskAlreadyClaimed, UnknownCaller
from callcenter.store import queries
from callcenter.store.users import BadOutcome
from web.api.errors import status_for


@pytest.fixture
def stored_calls(factory, make_call):
    now = time.time()
    calls = [
        make_call(start_ts=now - 600, caller="89261112233", disposition=Disposition.ABANDONED),
        make_call(
            start_ts=now - 300,
            caller="89039556279",
            disposition=Disposition.ANSWERED,
            agent="101",
            talk_s=42.0,
            direction=Direction.INBOUND,
        ),
    ]
    with factory.begin() as s:
        for call in calls:
            queries.persist_call(s, call=call)
    return calls


def test_supervisor_sees_todays_calls_with_dispositions(supervisor_client, stored_calls):
    page = supervisor_client.get("/supervisor/").get_data(as_text=True)
    assert 'data-disposition="abandoned"' in page
    assert 'data-disposition="answered"' in page
    assert "брошен в очереди" in page
    assert page.index("89039556279") < page.index("89261112233")  # newest first


def test_empty_day_says_so(supervisor_client):
    assert "звонков ещё не было" in supervisor_client.get("/supervisor/").get_data(as_text=True)


def test_api_calls_returns_the_shared_payload(operator_client, stored_calls):
    body = operator_client.get("/api/calls?limit=1").get_json()
    assert len(body["calls"]) == 1
    call = body["calls"][0]
    assert call["linkedid"] == stored_calls[1].linkedid
    assert call["disposition"] == "answered"
    assert set(call) >= {"caller", "direction", "agent", "wait_s", "talk_s", "start_ts", "end_ts"}


@pytest.mark.parametrize("limit", ["0", "x", "100000"])
def test_api_refuses_a_bad_limit_as_json(operator_client, limit):
    response = operator_client.get(f"/api/calls?limit={limit}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "Bad Request"


def test_api_tasks_lists_open_tasks(operator_client, stored_calls):
    tasks = operator_client.get("/api/tasks").get_json()["tasks"]
    assert [t["phone"] for t in tasks] == ["+79261112233"]
    assert tasks[0]["reason"] == "abandoned_call"


def test_api_needs_a_login_and_answers_401_json(client):
    response = client.get("/api/tasks")
    assert response.status_code == 401
    assert response.get_json() == {"error": "Unauthorized", "message": response.json["message"]}


def test_unknown_api_route_is_json_404(operator_client):
    response = operator_client.get("/api/nothing")
    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UnknownCaller("x"), 404),
        (ConsentMissing("x"), 409),
        (TaskAlreadyClaimed("x"), 409),
        (BadOutcome("x"), 400),
    ],
)
def test_domain_errors_map_to_http(error, status):
    assert status_for(error) == status
