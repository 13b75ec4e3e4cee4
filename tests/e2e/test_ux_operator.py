"""In Chromium: the operator's card in the clinic's formats, and the outcome form's own checks.

The recorded `answered` trace rings 101 and 102 (simulator → listener → notifier, as in
test_operator_panel). The card shows the last visit as dd.mm.yyyy and notes as dd.mm.yyyy HH:MM;
the outcome form asks for the date or time an outcome needs before it sends anything, in
Russian, and marks the chosen outcome for screen readers.
"""

from __future__ import annotations

import re

import pytest

from callcenter.config import Settings
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models_web import CallOutcome
from tests.e2e.test_operator_panel import SECRET, Listener, log_in, seed
from web import create_app, notifier_for
from web.server import start_web_in_thread

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_card_dates_and_outcome_form_checks(browser, artifacts, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'ux-operator.db'}"
    upgrade(db_url)
    factory = create_session_factory(create_db_engine(db_url))
    seed(factory)
    settings = Settings(
        database_url=db_url, ami_secret=SECRET, ami_backoff_initial_s=0.05, demo=True
    )
    app = create_app(settings, session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    base = server.url
    listener = Listener(settings, notifier_for(app), speed=1.0)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        log_in(page, base, "anna")
        page.wait_for_url(f"{base}/operator/")
        # Before the socket is up the indicator says it is connecting, not that it is down.
        page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        page.wait_for_selector("#callbacks-loading", state="hidden")
        assert page.is_visible("#callbacks-empty")
        listener.start()

        card = page.wait_for_selector("article.pop", timeout=20_000)
        # The clinic's formats: the visit's date, a note's moment without seconds.
        assert card.query_selector(".visit").text_content().startswith("12.05.2026 · ")
        note = card.query_selector(".notes li").text_content()
        assert re.search(r" — admin — \d\d\.\d\d\.\d{4} \d\d:\d\d$", note), note

        page.wait_for_selector("article.pop[data-state=ended]", timeout=30_000)
        page.wait_for_selector("form.outcome:not([hidden])")
        page.focus("body")
        error = "form.outcome .form-error"
        # A callback with no time: the form says what is missing and sends nothing.
        page.keyboard.press("2")
        chosen = page.locator('form.outcome button[data-outcome="callback_requested"]')
        assert chosen.get_attribute("aria-pressed") == "true"
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"{error}:has-text('Укажите, когда перезвонить.')")
        assert page.evaluate("document.activeElement.name") == "time"
        # A booking with no date: the same (the keys work again once out of the field).
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("1")
        assert chosen.get_attribute("aria-pressed") == "false"
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"{error}:has-text('Укажите дату записи.')")
        page.screenshot(path=artifacts / "ux-operator-outcome-check.png", full_page=True)
        with factory() as s:
            assert s.query(CallOutcome).count() == 0
        # With the date it is saved and the card leaves.
        page.fill("form.outcome input[name=date]", "2026-12-01")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("article.pop", state="detached", timeout=5_000)
        with factory() as s:
            [row] = s.query(CallOutcome).all()
            assert (row.outcome, row.detail) == ("booked", "2026-12-01")
    finally:
        context.close()
        listener.stop()
