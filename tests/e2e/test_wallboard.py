"""In Chromium: the wallboard follows the recorded `burst` trace (40 callers within 4 s).

Web server (threaded, free port) + listener (AMI simulator → client → tracker → notifier) in
this process, as `callcenter demo` runs them. The simulator shifts the trace to now, so its
calls are today's and today's figures tick.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.reports.figures import ReportOptions
from callcenter.runtime import build_listener
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from web import create_app, notifier_for
from web.server import start_web_in_thread

SECRET = "e2e-ami-secret"
PASSWORD = "e2e password"
#: Lower than the clinic's 20 s so that, at double speed, callers cross it for sure.
THRESHOLD_S = 5.0

pytestmark = pytest.mark.slow


class BurstListener:
    """The simulator playing `burst` and the listener, on an asyncio loop in a thread."""

    def __init__(self, settings: Settings, notifier, *, speed: float) -> None:
        self.settings, self.notifier, self.speed = settings, notifier, speed
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="e2e-burst", daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(15), "listener did not start"

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        async with AmiSimulator(
            traces=["burst"], speed=self.speed, port=0, secret=SECRET, rewrite_first_play=True
        ) as sim:
            process = build_listener(
                self.settings.with_overrides(ami_port=sim.port), notifier=self.notifier
            )
            await process.start()
            self.ready.set()
            try:
                await self.stop_event.wait()
            finally:
                await process.stop()

    def stop(self) -> None:
        if not self.thread.is_alive() and self.error is None:
            return
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        if self.error is not None:
            raise self.error


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def figure(page, name: str) -> str:
    return page.text_content(f"#today [data-figure={name}]")


@pytest.mark.timeout(150)
def test_wallboard_follows_the_burst_and_a_reload_mid_traffic_shows_the_live_state(
    browser, artifacts, tmp_path
):
    db_url = f"sqlite:///{tmp_path / 'wallboard.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    with factory.begin() as s:
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
    settings = Settings(
        database_url=db_url, ami_secret=SECRET, ami_backoff_initial_s=0.05, demo=True
    )
    app = create_app(settings, session_factory=factory)
    notifier = notifier_for(app)
    notifier.board.configure(
        timezone=settings.timezone, options=ReportOptions(service_level_s=THRESHOLD_S)
    )
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    base = server.url
    listener = BurstListener(settings, notifier, speed=2.0)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in(page, base, "vera")
        page.goto(f"{base}/supervisor/wallboard")
        page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        assert figure(page, "inbound") == "0"
        assert page.is_visible("#waiting-empty")
        assert page.is_hidden("#sl-alert")
        # The live list of today's calls, open next to the wallboard.
        today = context.new_page()
        today.goto(f"{base}/supervisor/")
        today.wait_for_selector("#conn[data-state=up]", timeout=10_000)

        listener.start()

        # The callers pour in: the waiting list fills, the phones ring, someone answers.
        page.wait_for_function(
            "document.querySelectorAll('#waiting tbody tr').length >= 20", timeout=20_000
        )
        page.wait_for_selector("#operators li[data-status=on_call]", timeout=20_000)
        # Waits tick in the browser: past the threshold the row turns red and the alert shows.
        page.wait_for_selector("#waiting tr.over", timeout=20_000)
        page.wait_for_selector("#sl-alert:not([hidden])", timeout=5_000)
        assert "дольше 5 с" in page.text_content("#sl-alert")
        page.screenshot(path=artifacts / "wallboard-01-burst.png", full_page=True)

        # A second wallboard opened mid-traffic starts from the live state, not from empty.
        second = context.new_page()
        second.goto(f"{base}/supervisor/wallboard")
        embedded = json.loads(second.text_content("#board-data"))
        assert embedded["waiting"], "the page came without the callers waiting now"
        assert embedded["operators"], "the page came without the administrators' states"
        assert second.query_selector_all("#waiting tbody tr")
        assert second.query_selector_all("#operators li")
        second.close()

        # Today's figures tick as the calls end, up to the trace's hand-checked totals.
        page.wait_for_function(
            "document.querySelector('#today [data-figure=inbound]').textContent === '40'",
            timeout=60_000,
        )
        assert (figure(page, "answered"), figure(page, "missed"), figure(page, "abandoned")) == (
            "6",
            "18",
            "16",
        )
        page.wait_for_selector("#waiting-empty:not([hidden])", timeout=10_000)
        page.wait_for_selector("#sl-alert[hidden]", state="attached", timeout=5_000)
        page.screenshot(path=artifacts / "wallboard-02-after-burst.png", full_page=True)

        # Each call that ended links to its page, which the store can show by now.
        assert len(today.query_selector_all("#ended li a")) == 40
        today.click("#ended li[data-disposition=answered] a")
        today.wait_for_selector("#timeline li[data-kind=answered]")
        # The recorded answered calls name a file this machine does not have.
        assert "файл записи не найден" in today.text_content("#recording-missing")
    finally:
        context.close()
        listener.stop()
        server.stop()
        notifier.close()
        engine.dispose()
