"""In Chromium: a supervisor edits a script, inserts a placeholder with its button, sees the
preview filled from the sample card, saves a new version and is shown the line of an error."""

from __future__ import annotations

import pytest

from callcenter.config import Settings
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.playbook import list_versions
from web import create_app, notifier_for
from web.server import start_web_in_thread

PASSWORD = "e2e password"

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
def test_supervisor_edits_a_script_and_sees_the_preview(browser, artifacts, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'scripts.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    with factory.begin() as s:
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
    app = create_app(Settings(database_url=db_url, demo=True), session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    base = server.url
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{base}/auth/login")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()

        page.goto(f"{base}/admin/scripts")
        page.click('#scripts-list tr[data-key="inbound_known"] a')
        page.wait_for_url(f"{base}/admin/scripts/inbound_known")
        original = page.input_value("#script-text")
        # Type a new line; the {name} placeholder goes in with its button, at the cursor.
        page.fill("#script-text", original.rstrip("\n") + '\n\n[[lines]]\ntext = "Спасибо, ')
        page.click('button.insert-placeholder[data-placeholder="{name}"]')
        page.keyboard.type('! Ждём вас."\nfallback = "Спасибо! Ждём вас."\n')
        assert 'text = "Спасибо, {name}! Ждём вас."' in page.input_value("#script-text")
        page.click("#preview-button")
        page.wait_for_load_state()
        preview = page.locator("#script-preview")
        assert "Спасибо, Мария Петровна! Ждём вас." in preview.inner_text()
        page.screenshot(path=artifacts / "admin-scripts-01-preview.png", full_page=True)
        with factory() as s:
            assert list_versions(s, script_id="inbound_known") == []  # a preview saves nothing

        page.fill("input[name=comment]", "благодарим в конце")
        page.click("#save-button")
        page.wait_for_url(f"{base}/admin/scripts/inbound_known?saved=1")
        assert "Сохранено как версия 1." in page.inner_text("main, body")
        assert page.is_visible('#script-history tr[data-version="1"]')

        # A mistyped placeholder: refused, with its line, and the line is selected on click.
        text = page.input_value("#script-text").replace("Спасибо, {name}!", "Спасибо, {nmae}!")
        page.fill("#script-text", text)
        page.click("#save-button")
        page.wait_for_load_state()
        problem = page.locator("#script-problems li[data-line]").first
        assert "неизвестная подстановка {nmae}" in problem.inner_text()
        line = int(problem.get_attribute("data-line") or 0)
        assert "{nmae}" in text.splitlines()[line - 1]
        problem.click()
        selected = page.evaluate(
            "(() => { const a = document.getElementById('script-text');"
            " return a.value.slice(a.selectionStart, a.selectionEnd); })()"
        )
        assert selected == text.splitlines()[line - 1]
        page.screenshot(path=artifacts / "admin-scripts-02-error-line.png", full_page=True)
        with factory() as s:
            assert [v.version for v in list_versions(s, script_id="inbound_known")] == [1]
    finally:
        context.close()
        server.stop()
        notifier_for(app).close()
        engine.dispose()
