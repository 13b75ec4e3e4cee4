"""In Chromium: the queue pause (state from the simulator's QueueMemberPause), quick create of
an unknown caller, keyboard shortcuts, and the callback list (take, close) across two operators.

The web server (threaded) and the listener (simulator → AmiClient → tracker → notifier) run in
this process, as ``callcenter serve``/``demo`` run them; the panel's QueuePause goes through
the listener's own client.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.ami.simulator import AmiSimulator
from callcenter.config import Settings
from callcenter.notify import FanoutNotifier
from callcenter.runtime import build_listener
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Task
from callcenter.store.models_patients import Patient, PatientPhone
from web import create_app, notifier_for
from web.operator.live import install_live_panel
from web.server import start_web_in_thread

SECRET = "e2e-tools-secret"
PASSWORD = "e2e password"
CALLER = "+79161234567"  # the caller of the `answered` trace (no patient here: unknown)

pytestmark = pytest.mark.slow


class Listener:
    """The simulator and the listener on an asyncio loop in a thread; binds the panel's port."""

    def __init__(self, settings: Settings, app, *, traces: list[str]) -> None:
        self.settings, self.traces = settings, traces
        self.live = install_live_panel(app)
        self.notifier = FanoutNotifier(notifier_for(app), self.live.states)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop_event: asyncio.Event | None = None
        self.sim: AmiSimulator | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="e2e-listener", daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(15), "listener did not start"
        assert self.error is None, self.error

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
        async with AmiSimulator(traces=self.traces, speed=1.0, port=0, secret=SECRET) as sim:
            self.sim = sim
            process = build_listener(
                self.settings.with_overrides(ami_port=sim.port), notifier=self.notifier
            )
            self.live.commands.bind(process.client)
            await process.start()
            await sim.wait_for_client()
            self.ready.set()
            try:
                await self.stop_event.wait()
            finally:
                await process.stop()

    def call(self, fn) -> None:
        """Run ``fn`` on the listener's loop (the simulator's failure switches)."""
        self.loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        if self.error is not None:
            raise self.error


@pytest.fixture
def clinic(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    with factory.begin() as s:
        users.create_user(s, username="anna", password=PASSWORD, role="operator", extension="101")
        users.create_user(s, username="boris", password=PASSWORD, role="operator", extension="102")
    settings = Settings(
        database_url=db_url, ami_secret=SECRET, ami_backoff_initial_s=0.05, demo=True
    )
    app = create_app(settings, session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    yield app, server.url, factory, settings
    server.stop()
    notifier_for(app).close()
    engine.dispose()


def log_in(browser, base: str, username: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/operator/")
    page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
    return context, page


@pytest.mark.timeout(120)
def test_pause_shows_the_state_asterisk_reports(browser, artifacts, clinic):
    app, base, _, settings = clinic
    listener = Listener(settings, app, traces=[])  # no calls: the recorded queue members only
    listener.start()
    context, page = log_in(browser, base, "boris")  # 102, free in the recorded snapshot
    try:
        page.select_option("#pause-form select[name=reason]", "lunch")
        page.click("#pause-on")
        # The label comes from the simulator's QueueMemberPause, through the tracker.
        page.wait_for_selector("#agent[data-status=paused]", timeout=5_000)
        assert page.text_content("#agent-state") == "Пауза"
        assert listener.sim is not None
        assert listener.sim.pause_requests[-1]["Interface"] == "Local/102@agents/n"
        assert listener.sim.pause_requests[-1]["Reason"] == "Обед"
        page.screenshot(path=artifacts / "10-operator-paused.png")

        # A reload shows the state Asterisk last reported.
        page.reload()
        page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        assert page.text_content("#agent-state") == "Пауза"

        # Asterisk stops answering: a clear message, and the state stays as it was.
        listener.live.commands.timeout = 0.5
        listener.call(listener.sim.stall)
        page.click("#pause-off")
        page.wait_for_selector("#pause-error:has-text('не ответила')", timeout=5_000)
        assert page.text_content("#agent-state") == "Пауза"
        page.screenshot(path=artifacts / "11-operator-pause-error.png")
        listener.call(listener.sim.resume)

        page.click("#pause-off")
        page.wait_for_selector("#agent[data-status=free]", timeout=5_000)
        assert page.text_content("#agent-state") == "Свободен"
        assert page.text_content("#pause-error") == ""
    finally:
        context.close()
        listener.stop()


@pytest.mark.timeout(120)
def test_quick_create_and_shortcuts_on_an_unknown_caller(browser, artifacts, clinic):
    app, base, factory, settings = clinic
    context, page = log_in(browser, base, "anna")
    listener = Listener(settings, app, traces=["answered"])
    listener.start()
    try:
        card = page.wait_for_selector("article.pop", timeout=20_000)
        assert card.query_selector(".name").text_content() == "Новый звонящий"
        form = page.wait_for_selector("article.pop form.quick-create:not([hidden])")
        assert form.query_selector("input[name=phone]").input_value() == CALLER
        page.screenshot(path=artifacts / "12-new-caller-card.png")

        # Bad input first: an empty name, then a birth date in the future.
        form.query_selector("button[type=submit]").click()
        page.wait_for_selector("form.quick-create .form-error:has-text('Укажите ФИО')")

        # The call goes live (101 answers): the outcome keys are armed, yet typing digits into
        # the quick-create fields must not choose an outcome.
        page.wait_for_selector("article.pop[data-state=live]", timeout=15_000)
        page.fill("form.quick-create input[name=full_name]", "")
        page.type("form.quick-create input[name=full_name]", "Смирнова Ольга 1 2 3")
        page.type("form.quick-create input[name=note]", "перезвонить после 4")
        assert page.eval_on_selector("form.outcome input[name=outcome]", "e => e.value") == ""
        assert page.query_selector("form.outcome button.chosen") is None
        page.fill("form.quick-create input[name=full_name]", "Смирнова Ольга Ивановна")
        page.fill("form.quick-create input[name=birth_date]", "2999-01-01")
        form.query_selector("button[type=submit]").click()
        page.wait_for_selector("form.quick-create .form-error:has-text('в будущем')")
        page.fill("form.quick-create input[name=birth_date]", "1980-12-31")
        # Ctrl+Enter in a quick-create field saves the patient, not the call's outcome.
        page.focus("form.quick-create input[name=birth_date]")
        page.keyboard.press("Control+Enter")

        # The card re-renders as a known patient, with the known caller's script.
        page.wait_for_selector("article.pop .name:has-text('Смирнова Ольга Ивановна')")
        page.wait_for_selector("article.pop form.quick-create", state="hidden")
        assert "перезвонить после 4" in page.text_content("article.pop .notes")
        assert page.text_content("form.outcome .form-error") == ""  # no outcome submit tried
        with factory() as s:
            [patient] = s.query(Patient).all()
            assert [p.phone for p in patient.phones] == [CALLER]

        # Objection answers: Shift+1 opens «Дорого»; the bare 1 stays the outcome key.
        page.focus("body")
        answer = page.wait_for_selector(".objection-answer", state="attached")
        assert not answer.is_visible()
        assert "Shift+1" in page.text_content("button.objection")
        page.keyboard.press("Shift+Digit1")
        page.wait_for_selector(".objection-answer:visible")
        assert page.query_selector("form.outcome button.chosen") is None
        page.keyboard.press("1")
        assert page.eval_on_selector("form.outcome input[name=outcome]", "e => e.value") == (
            "booked"
        )
        assert page.is_visible(".objection-answer")  # the outcome key left it alone
        page.screenshot(path=artifacts / "13-created-patient-objection.png")

        # Click-to-call from the card: a task taken by 101, in 101's callback list.
        page.click("article.pop .call-this")
        page.wait_for_selector("article.pop .call-error:has-text('сначала зазвонит ваш телефон')")
        page.wait_for_selector("li.callback .cb-reason:has-text('звонок из карточки')")
        assert page.text_content("li.callback .cb-name") == "Смирнова Ольга Ивановна"
        with factory() as s:
            [task] = s.query(Task).filter(Task.reason == "click_to_call").all()
            assert (task.phone, task.assigned_extension) == (CALLER, "101")
    finally:
        context.close()
        listener.stop()


def _add_task(factory, *, phone: str, reason: str) -> int:
    now = datetime.now(UTC)
    with factory.begin() as s:
        task = Task(
            phone=phone,
            reason=reason,
            kind="service",
            status="open",
            opened_at=now - timedelta(hours=1),
            due_at=now - timedelta(minutes=5),
            attempts=1,
        )
        s.add(task)
        s.flush()
        return task.id


@pytest.mark.timeout(120)
def test_callback_list_take_and_close_across_operators(browser, artifacts, clinic):
    app, base, factory, _ = clinic
    with factory.begin() as s:
        patient = Patient(full_name="Иванова Мария Петровна")
        patient.phones.append(PatientPhone(phone=CALLER))
        s.add(patient)
    taken = _add_task(factory, phone=CALLER, reason="missed_call")
    closed = _add_task(factory, phone="+79039556279", reason="abandoned_call")
    anna_ctx, anna = log_in(browser, base, "anna")
    boris_ctx, boris = log_in(browser, base, "boris")
    try:
        for page in (anna, boris):
            page.wait_for_selector(f"li.callback[data-task-id='{taken}']")
            page.wait_for_selector(f"li.callback[data-task-id='{closed}']")
        row = anna.query_selector(f"li.callback[data-task-id='{taken}']")
        assert row.query_selector(".cb-name").text_content() == "Иванова Мария Петровна"
        assert row.query_selector(".cb-reason").text_content() == "пропущенный звонок"
        assert row.query_selector(".cb-attempts").text_content() == "попыток: 1"
        assert "Сценарий" in row.query_selector(".cb-script").text_content()
        anna.screenshot(path=artifacts / "14-callback-list.png")

        # 101 takes it: it leaves 102's list at once (callbacks_changed), stays on 101's.
        row.query_selector(".cb-take").click()
        boris.wait_for_selector(f"li.callback[data-task-id='{taken}']", state="detached")
        anna.wait_for_selector("#callbacks-error:has-text('сначала зазвонит ваш телефон')")
        assert anna.query_selector(f"li.callback[data-task-id='{taken}']") is not None
        boris.screenshot(path=artifacts / "15-callback-taken-elsewhere.png")

        # 102 closes the other one with a reason: gone from both lists.
        other = boris.query_selector(f"li.callback[data-task-id='{closed}']")
        other.query_selector("select[name=reason]").select_option("wrong_number")
        other.query_selector(".cb-close").click()
        boris.wait_for_selector(f"li.callback[data-task-id='{closed}']", state="detached")
        anna.wait_for_selector(f"li.callback[data-task-id='{closed}']", state="detached")
        with factory() as s:
            assert s.get(Task, closed).status == "closed"
            assert s.get(Task, taken).assigned_extension == "101"
        anna.screenshot(path=artifacts / "16-callback-closed.png")
    finally:
        anna_ctx.close()
        boris_ctx.close()


@pytest.mark.timeout(60)
def test_wrap_up_ends_by_itself_on_the_panel(browser, clinic):
    from callcenter.calls.effects import OperatorStateChanged, OperatorStatus

    app, base, _, _ = clinic
    live = install_live_panel(app)
    live.states.operator_state(
        OperatorStateChanged("101", "Иванова Анна", OperatorStatus.WRAP_UP, 100.0, until=103.0)
    )
    context, page = log_in(browser, base, "anna")
    try:
        assert page.text_content("#agent-state") == "Поствызывная обработка"
        # Asterisk sends no event when wrap-up ends: the panel counts its length itself.
        page.wait_for_selector("#agent[data-status=free]", timeout=5_000)
        assert page.text_content("#agent-state") == "Свободен"
    finally:
        context.close()
