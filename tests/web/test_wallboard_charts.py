"""The dashboard's charts: Chart.js served from the app (no CDN), fed the period's figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from callcenter.replay import replay_trace
from callcenter.store import queries

BURST_DAY = "from=2026-11-22&to=2026-11-22"
VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"


@pytest.fixture
def burst(factory):
    with factory.begin() as s:
        for call in sorted(replay_trace("burst"), key=lambda c: c.end_ts):
            queries.persist_call(s, call=call)


def chart_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page)
    assert match, "no chart data on the dashboard"
    return json.loads(match.group(1))


def test_the_charts_get_the_burst_by_day_and_by_hour(supervisor_client, burst):
    page = supervisor_client.get(f"/supervisor/dashboard?{BURST_DAY}").get_data(as_text=True)
    data = chart_data(page)
    assert data["by_day"] == {
        "labels": ["22.11"],
        "answered": [6],
        "missed": [18],
        "abandoned": [16],
        "ivr_abandoned": [0],
    }
    hours = data["by_hour"]
    assert hours["labels"] == [f"{h:02d}" for h in range(24)]
    busy = hours["labels"].index("20")  # 17:47 UTC is 20:47 in Moscow
    assert (hours["answered"][busy], hours["missed"][busy], hours["abandoned"][busy]) == (6, 18, 16)
    assert sum(hours["answered"]) + sum(hours["missed"]) + sum(hours["abandoned"]) == 40
    assert data["agents"] == {
        "labels": ["101", "102", "103"],
        "answered": [2, 2, 2],
        "missed": [0, 0, 0],
        "callbacks": [0, 0, 0],
    }
    for chart in ("chart-by-day", "chart-by-hour", "chart-agents"):
        assert f'id="{chart}"' in page


def test_every_script_comes_from_the_app_itself(supervisor_client):
    page = supervisor_client.get("/supervisor/dashboard").get_data(as_text=True)
    sources = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert "/static/vendor/chart.umd.min.js" in sources
    assert all(src.startswith("/static/") for src in sources), sources
    served = supervisor_client.get("/static/vendor/chart.umd.min.js")
    assert served.status_code == 200
    assert b"Chart.js v4.5.1" in served.get_data()[:200]
    served.close()
    assert "MIT License" in (VENDOR / "chart.js.LICENSE.md").read_text()


def test_the_dashboard_links_the_xlsx_export_for_its_period(supervisor_client):
    page = supervisor_client.get(f"/supervisor/dashboard?{BURST_DAY}").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" id="xlsx-export">', page)
    assert link
    assert link.group(1).replace("&amp;", "&") == f"/api/v1/reports/figures.xlsx?{BURST_DAY}"
    plain = supervisor_client.get("/supervisor/dashboard").get_data(as_text=True)
    assert 'href="/api/v1/reports/figures.xlsx" id="xlsx-export"' in plain
