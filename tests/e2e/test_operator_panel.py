"""In Chromium: the AMI simulator rings a ring-all queue, 101 answers, 102's card is withdrawn.

Web server (threaded, free port) + listener (simulator → client → tracker → SocketIONotifier)
in this process, as `callcenter demo` runs them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, date, datetime

import pytest

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.runtime import build_listener
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models_patients import Patient, PatientNote, PatientPhone, Visit
from web import create_app, notifier_for
from web.server import start_web_in_thread

SECRET = "e2e-ami-secret"
PASSWORD = "e2e password"
CALLER = "+79161234567"  # the caller of the `answered` trace
EVIL_NAME = "<script>window.__xss = 1</script>Иванова Мария Петровна"
EVIL_NOTE = '<img src="x" onerror="window.__xss = 2">боится анестезии'

pytestmark = pytest.mark.slow


def seed(factory) -> None:
    now = datetime.now(UTC)
    with factory.begin() as s:
        users.create_user(s, username="anna", password=PASSWORD, role="operator", extension="101")
        users.create_user(s, username="boris", password=PASSWORD, role="operator", extension="102")
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
        patient = Patient(full_name=EVIL_NAME, doctor="Петров И. И.")
        patient.phones.append(PatientPhone(phone=CALLER))
        s.add(patient)
        s.flush()
        s.add(PatientNote(patient_id=patient.id, text=EVIL_NOTE, author="admin", created_at=now))
        s.add(
            Visit(
                patient_id=patient.id,
                visit_date=date(2026, 5, 12),
                doctor="Петров И. И.",
                service="консультация терапевта",
                status="completed",
            )
        )


class Listener:
    """The simulator and the listener on an asyncio loop in a thread."""

    def __init__(self, settings: Settings, notifier, *, speed: float) -> None:
        self.settings, self.notifier, self.speed = settings, notifier, speed
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="e2e-listener", daemon=True)

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
            traces=["answered"], speed=self.speed, port=0, secret=SECRET
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
            return  # never started
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


@pytest.mark.timeout(120)
def test_ring_all_pop_answer_withdraw_outcome(browser, artifacts, tmp_path):
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
    base = server.url
    notifier = notifier_for(app)
    listener = Listener(settings, notifier, speed=1.0)
    contexts = []
    try:
        anna_ctx, boris_ctx = browser.new_context(), browser.new_context()
        contexts += [anna_ctx, boris_ctx]
        anna, boris = anna_ctx.new_page(), boris_ctx.new_page()
        for page, name in ((anna, "anna"), (boris, "boris")):
            log_in(page, base, name)
            page.wait_for_url(f"{base}/operator/")
            page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        anna.screenshot(path=artifacts / "01-panel-idle.png")
        vera_ctx = browser.new_context()
        contexts.append(vera_ctx)
        vera = vera_ctx.new_page()
        log_in(vera, base, "vera")
        vera.wait_for_url(f"{base}/supervisor/")
        vera.wait_for_selector("#conn[data-state=up]", timeout=10_000)

        listener.start()  # the call starts ringing ~4 s of trace time later

        # Both phones of the ring-all queue ring: both cards pop.
        anna_card = anna.wait_for_selector("article.pop", timeout=20_000)
        boris.wait_for_selector("article.pop", timeout=5_000)
        assert anna_card.query_selector(".name").text_content() == EVIL_NAME
        assert EVIL_NOTE in anna_card.query_selector(".notes").text_content()
        assert "Петров" in anna_card.query_selector(".visit").text_content()
        assert CALLER in anna_card.query_selector(".phone").text_content()
        anna.screenshot(path=artifacts / "02-ringing-101.png")

        # 101 answers: the card goes live there and leaves 102's screen within a second.
        anna.wait_for_selector("article.pop[data-state=live]", timeout=10_000)
        answered_at = time.monotonic()
        boris.wait_for_selector("article.pop", state="detached", timeout=1_000)
        assert time.monotonic() - answered_at < 1.5
        assert boris.is_visible("#idle")
        boris.screenshot(path=artifacts / "03-withdrawn-102.png")

        # The markup in the name and the note never ran.
        assert anna.evaluate("window.__xss") is None
        assert anna.query_selector("article.pop script") is None
        assert anna.query_selector("article.pop img") is None

        # A reload mid-call brings the live card back.
        anna.reload()
        anna.wait_for_selector("article.pop[data-state=live]", timeout=10_000)

        # The outcome, by keyboard: 1 = booked, a date, a note, Ctrl+Enter.
        anna.wait_for_selector("form.outcome:not([hidden])")
        anna.keyboard.press("1")
        assert anna.is_visible("form.outcome .detail-date")
        anna.fill("form.outcome input[name=date]", "2026-12-01")
        anna.fill("form.outcome textarea[name=note]", "записана на 1 декабря")
        anna.wait_for_selector("article.pop[data-state=ended]", timeout=30_000)
        anna.screenshot(path=artifacts / "04-ended-outcome-101.png")
        anna.focus("form.outcome textarea[name=note]")
        anna.keyboard.press("Control+Enter")
        anna.wait_for_selector("article.pop", state="detached", timeout=5_000)
        with factory() as s:
            [call] = users.list_recent_calls(s, limit=5)
            [outcome] = users.list_outcomes(s, linkedid=call.linkedid)
        assert (outcome.operator, outcome.outcome, outcome.detail) == (
            "anna",
            "booked",
            "2026-12-01",
        )

        # An operator is refused the supervisor's page; the supervisor sees the call.
        response = anna.goto(f"{base}/supervisor/")
        assert response.status == 403
        anna.screenshot(path=artifacts / "05-operator-refused.png")
        # The supervisor saw the call live and as it ended.
        vera.wait_for_selector("#ended li[data-disposition=answered]", timeout=5_000)
        assert vera.is_visible("#live-empty")
        vera.screenshot(path=artifacts / "06-supervisor-calls.png")
        # The trace's calls carry the recorded day's timestamps, so the API, not «today», shows it.
        calls = vera.goto(f"{base}/api/calls?limit=5").json()["calls"]
        assert [(c["disposition"], c["agent"]) for c in calls] == [("answered", "101")]
    finally:
        for ctx in contexts:
            ctx.close()
        listener.stop()
        server.stop()
        notifier.close()
        engine.dispose()
