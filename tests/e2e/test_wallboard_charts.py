"""In Chromium: the dashboard draws its charts with the vendored Chart.js (no network)."""

from __future__ import annotations

import pytest

from callcenter.config import Settings
from callcenter.replay import replay_trace
from callcenter.store import queries, users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from web import create_app, notifier_for
from web.server import start_web_in_thread

PASSWORD = "e2e password"

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
def test_dashboard_charts_draw_the_burst(browser, artifacts, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'charts.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    with factory.begin() as s:
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
        for call in sorted(replay_trace("burst"), key=lambda c: c.end_ts):
            queries.persist_call(s, call=call)
    app = create_app(Settings(database_url=db_url, demo=True), session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    base = server.url
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    outside: list[str] = []
    try:
        page = context.new_page()
        # Nothing may be fetched from anywhere but the app (the clinic may have no internet).
        page.on(
            "request",
            lambda r: None if r.url.startswith(base) else outside.append(r.url),
        )
        page.goto(f"{base}/auth/login")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base}/supervisor/dashboard?from=2026-11-22&to=2026-11-22")
        page.wait_for_selector("#chart-by-hour", state="visible")
        assert page.is_visible("#chart-by-day")
        assert page.is_hidden("#hour-chart")  # the server-drawn fallback gives way
        stacks = page.evaluate(
            """() => window.dashboardCharts.byHour.data.datasets.map(
                   d => [d.label, d.data[20]])"""
        )
        assert stacks == [
            ["Отвечено", 6],
            ["Пропущено", 18],
            ["Брошено в очереди", 16],
            ["Потеряно до очереди", 0],
        ]
        agents = page.evaluate(
            """() => [window.dashboardCharts.agents.data.labels,
                      window.dashboardCharts.agents.data.datasets.map(d => d.data)]"""
        )
        assert agents == [["101", "102", "103"], [[2, 2, 2], [0, 0, 0], [0, 0, 0]]]
        # The canvas was painted: some pixels are not blank.
        painted = page.evaluate(
            """() => {
                const c = document.getElementById('chart-by-hour');
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < px.length; i += 4) { if (px[i] > 0) { n++; } }
                return n;
            }"""
        )
        assert painted > 1000
        page.locator("#chart-by-hour").scroll_into_view_if_needed()
        page.screenshot(path=artifacts / "dashboard-charts.png", full_page=True)
        assert outside == []
    finally:
        context.close()
        server.stop()
        notifier_for(app).close()
        engine.dispose()
