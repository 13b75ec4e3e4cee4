"""Supervisor reports in the browser and over the JSON API: figures, CSV, call list, roles."""

from __future__ import annotations

import csv
import io
import re

import pytest

from callcenter.replay import replay_trace
from callcenter.store import queries

BURST_DAY = "from=2026-11-22&to=2026-11-22"


@pytest.fixture
def burst(factory):
    for call in sorted(replay_trace("burst"), key=lambda c: c.end_ts):
        with factory.begin() as s:
            queries.persist_call(s, call=call)


def test_dashboard_shows_the_burst_figures(supervisor_client, burst):
    page = supervisor_client.get(f"/supervisor/dashboard?{BURST_DAY}").get_data(as_text=True)
    assert "Показатели за 22.11.2026 — 22.11.2026" in page
    totals = page[page.index('id="totals"') : page.index('id="drops"')]
    assert "<td>40</td>" in totals
    assert re.search(r'data-figure="dropped_calls">34<', page)
    assert 'data-agent="101"' in page
    assert "20:00" in page  # the busy hour, clinic time
    assert 'title="20:00 — 40 вход., 6 отв."' in page  # the hour chart's busiest bar


def test_dashboard_defaults_to_the_last_seven_days_and_says_when_empty(supervisor_client):
    page = supervisor_client.get("/supervisor/dashboard").get_data(as_text=True)
    assert "входящих звонков нет" in page
    assert page.count('type="date"') == 2


def test_api_figures_match_the_dashboard(supervisor_client, burst):
    body = supervisor_client.get(f"/api/v1/reports/figures?{BURST_DAY}").get_json()
    totals = body["totals"]
    assert (totals["inbound"], totals["answered"], totals["abandoned"]) == (40, 6, 16)
    assert totals["queue_timeout"] == 18
    assert body["period"] == {"from": "2026-11-22", "to": "2026-11-22", "timezone": "Europe/Moscow"}
    agents = supervisor_client.get(f"/api/v1/reports/agents?{BURST_DAY}").get_json()["agents"]
    assert sum(a["answered"] for a in agents) == 6


@pytest.mark.parametrize(
    "query",
    ["from=2026-02-30", "from=22.11.2026", "from=2026-11-22&to=2026-11-01", "from=2999-01-01"],
)
def test_bad_periods_are_400_as_json_on_the_api(supervisor_client, query):
    response = supervisor_client.get(f"/api/v1/reports/figures?{query}")
    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"] == "Bad Request"
    assert response.get_json()["message"]


def test_bad_period_is_an_html_400_on_the_pages(supervisor_client):
    response = supervisor_client.get("/supervisor/dashboard?from=nonsense")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Ошибка 400" in page and "Неверный период" in page and "YYYY-MM-DD" in page
    response = supervisor_client.get(
        "/supervisor/calls?from=2026-11-22&to=2026-11-01", headers={"Accept": "application/json"}
    )
    assert response.status_code == 400 and "starts after it ends" in response.get_json()["message"]


def test_figures_csv_is_streamed(supervisor_client, burst):
    response = supervisor_client.get(f"/supervisor/dashboard.csv?{BURST_DAY}")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["bucket", "inbound"]
    assert rows[1][:2] == ["period", "40"]


def test_call_list_csv_streams_every_filtered_call(supervisor_client, burst):
    response = supervisor_client.get(f"/supervisor/calls.csv?{BURST_DAY}&disposition=abandoned")
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "linkedid"
    assert len(rows) == 1 + 16
    assert {r[3] for r in rows[1:]} == {"abandoned"}


def test_call_list_pages_by_keyset_and_filters(supervisor_client, burst):
    seen: list[str] = []
    url = f"/supervisor/calls?{BURST_DAY}"
    while url:
        page = supervisor_client.get(url).get_data(as_text=True)
        seen += re.findall(r'data-linkedid="([^"]+)"', page)
        found = re.search(r'id="next-page" href="([^"]+)"', page)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert len(seen) == len(set(seen)) == 40
    page = supervisor_client.get(f"/supervisor/calls?{BURST_DAY}&agent=102").get_data(as_text=True)
    assert len(re.findall(r"data-linkedid=", page)) == 2
    api = supervisor_client.get(f"/api/v1/reports/calls?{BURST_DAY}&limit=30").get_json()
    assert len(api["calls"]) == 30 and api["next"]
    rest = supervisor_client.get(
        f"/api/v1/reports/calls?{BURST_DAY}&limit=30&after={api['next']}"
    ).get_json()
    assert len(rest["calls"]) == 10 and rest["next"] is None


def test_bad_cursor_and_disposition_are_400(supervisor_client):
    assert supervisor_client.get("/api/v1/reports/calls?after=zzz").status_code == 400
    assert supervisor_client.get("/api/v1/reports/calls?disposition=x").status_code == 400


def _guarded_get_routes(app):
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments:
            continue
        if rule.endpoint.startswith(("supervisor.", "reports_api.")):
            yield rule.rule


def test_operator_gets_403_on_every_supervisor_page_and_report_route(app, operator_client):
    routes = list(_guarded_get_routes(app))
    assert "/supervisor/dashboard" in routes and "/api/v1/reports/figures" in routes
    for route in routes:
        assert operator_client.get(route).status_code == 403, route


def test_anonymous_api_call_is_401_json(client):
    response = client.get("/api/v1/reports/figures")
    assert response.status_code == 401 and response.is_json
