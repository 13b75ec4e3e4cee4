"""In Chromium: a ringing call raises a desktop notification when the panel's tab is hidden.

Headless Chromium shows no desktop, so the page's ``Notification`` is replaced by a recorder
(permission "granted") and ``document.hidden`` is forced true; what is checked is our panel's
decision to notify and what it says.
"""

from __future__ import annotations

import pytest

from callcenter.config import Settings
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from tests.e2e.test_operator_panel import CALLER, SECRET, Listener, log_in, seed
from web import create_app, notifier_for
from web.server import start_web_in_thread

pytestmark = pytest.mark.slow

BACKGROUND_TAB = """
Object.defineProperty(document, "hidden", { get: () => true });
window.__notes = [];
class RecordingNotification {
  constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
  close() {}
}
RecordingNotification.permission = "granted";
RecordingNotification.requestPermission = () => Promise.resolve("granted");
window.Notification = RecordingNotification;
"""


@pytest.mark.timeout(120)
def test_hidden_panel_gets_one_desktop_notification_with_the_callers_name(
    browser, artifacts, tmp_path
):
    db_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    seed(factory)
    settings = Settings(
        database_url=db_url, ami_secret=SECRET, ami_backoff_initial_s=0.05, demo=True
    )
    app = create_app(settings, session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    notifier = notifier_for(app)
    listener = Listener(settings, notifier, speed=1.0)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(BACKGROUND_TAB)
        log_in(page, server.url, "anna")
        page.wait_for_url(f"{server.url}/operator/")
        page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        assert page.is_hidden("#notify-enable")  # permission already granted
        listener.start()
        page.wait_for_selector("article.pop", timeout=20_000)
        page.wait_for_function("window.__notes.length > 0", timeout=5_000)
        page.wait_for_selector("article.pop[data-state=live]", timeout=10_000)
        notes = page.evaluate("window.__notes")
        # One notification per call, even though the pop is re-rendered when answered.
        assert len(notes) == 1
        assert "Иванова Мария Петровна" in notes[0]["title"]
        assert notes[0]["body"].endswith(CALLER[-10:])
        page.screenshot(path=artifacts / "07-notified-in-background.png")
    finally:
        context.close()
        listener.stop()
        server.stop()
        notifier.close()
        engine.dispose()
