"""Bad input on every report route of /api/v1: a JSON 400 that says what is wrong."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

ROUTES = [
    "/api/v1/reports/figures",
    "/api/v1/reports/agents",
    "/api/v1/reports/calls",
    "/api/v1/reports/figures.xlsx",
    "/api/v1/calls.xlsx",
]
FUTURE = (date.today() + timedelta(days=30)).isoformat()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-11-22&to=2026-11-01", "starts after it ends"),
        (f"from={FUTURE}&to={FUTURE}", "future"),
        ("from=2026-02-30", "YYYY-MM-DD"),
        ("to=22.11.2026", "YYYY-MM-DD"),
        ("from=2020-01-01&to=2026-11-01", "longer than"),
    ],
)
def test_bad_periods_are_json_400(supervisor_client, route, query, message):
    response = supervisor_client.get(f"{route}?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.is_json
    body = response.get_json()
    assert body["error"] == "Bad Request" and message in body["message"]


@pytest.mark.parametrize("route", ROUTES[:2] + ROUTES[3:4])
@pytest.mark.parametrize("query", ["short_abandon_s=five", "win_back_days=1.5"])
def test_bad_thresholds_are_json_400(supervisor_client, route, query):
    response = supervisor_client.get(f"{route}?{query}")
    assert response.status_code == 400 and "bad threshold" in response.get_json()["message"]


@pytest.mark.parametrize("route", ["/api/v1/reports/calls", "/api/v1/calls.xlsx"])
def test_a_tag_that_does_not_exist_is_400_naming_the_known_tags(supervisor_client, route):
    response = supervisor_client.get(f"{route}?tag=expensive")
    assert response.status_code == 400 and response.is_json
    message = response.get_json()["message"]
    assert "unknown tag 'expensive'" in message and "price_objection" in message


def test_empty_parameters_mean_the_default_period(supervisor_client):
    body = supervisor_client.get("/api/v1/reports/figures?from=&to=&tag=").get_json()
    first, last = (
        date.fromisoformat(body["period"]["from"]),
        date.fromisoformat(body["period"]["to"]),
    )
    assert (last - first).days == 6
    assert supervisor_client.get("/api/v1/reports/calls?from=&to=&tag=&limit=").status_code == 200


def test_an_empty_period_has_zero_counts_and_no_rates(supervisor_client):
    body = supervisor_client.get("/api/v1/reports/figures?from=2026-01-01&to=2026-01-31").get_json()
    assert body["totals"]["inbound"] == 0 and body["totals"]["service_level"] is None
    assert len(body["by_day"]) == 31 and len(body["by_hour"]) == 24
    assert body["agents"] == [] and body["tags"] == [] and body["drops"]["tasks"] == 0
    calls = supervisor_client.get("/api/v1/reports/calls?from=2026-01-01&to=2026-01-31")
    assert calls.get_json() == {"calls": [], "next": None}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "between 1 and"),
        ("limit=many", "integer"),
        ("after=not-a-cursor", "bad page cursor"),
        ("disposition=lost", "unknown disposition"),
    ],
)
def test_bad_call_list_parameters_are_json_400(supervisor_client, query, message):
    response = supervisor_client.get(f"/api/v1/reports/calls?{query}")
    assert response.status_code == 400 and message in response.get_json()["message"]
