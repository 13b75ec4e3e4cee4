"""In Chromium: each role's navigation bar reaches each of its pages, and no link is broken.

The supervisor's bar names every supervisor and admin page; the operator's names only the
panel. Each page has its title and heading, the bar marks it as the current page, the top bar
says who is logged in and offers to log out. Every link reachable from a role's pages answers
without a 4xx/5xx (the operator's only 403s are the supervisor pages typed in by hand), no
English is left in the visible text, and a keyboard user can skip to the content and sees
where the focus is. Screenshots of every page go to tests/e2e/artifacts.
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from callcenter.config import Settings
from callcenter.replay import replay_trace
from callcenter.store import queries, users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from web import create_app
from web.server import start_web_in_thread

PASSWORD = "e2e password"
#: The `transfer` trace's calls are on this clinic day; the call list opens on it.
TRACE_DAY = "2026-11-22"
DESKTOP = {"width": 1440, "height": 900}
LAPTOP = {"width": 1280, "height": 720}

#: (nav endpoint, path, words in the <title>, words in the <h1>, screenshot name).
SUPERVISOR_PAGES = [
    ("supervisor.calls_today", "/supervisor/", "Сегодня", "Звонки за", "today"),
    ("supervisor.dashboard", "/supervisor/dashboard", "Дашборд", "Показатели за", "dashboard"),
    ("supervisor.wallboard", "/supervisor/wallboard", "Табло", "Табло", "wallboard"),
    ("supervisor.calls", "/supervisor/calls", "Звонки", "Звонки за", "calls"),
    ("supervisor.agents", "/supervisor/agents", "Администраторы", "Администраторы за", "agents"),
    ("admin.audit_log", "/admin/audit", "Журнал доступа", "Журнал доступа", "audit"),
    (
        "admin.clinic_settings",
        "/admin/settings",
        "Настройки клиники",
        "Настройки клиники",
        "settings",
    ),
    ("admin.scripts_list", "/admin/scripts", "Сценарии", "Сценарии разговоров", "scripts"),
    ("admin.forget_form", "/admin/forget", "«Забыть пациента»", "«Забыть пациента»", "forget"),
]
OPERATOR_PAGES = [("operator.panel", "/operator/", "Панель администратора", "Звонки", "panel")]

#: Latin words the UI may show: file formats, keys, user names, the queue's name in Asterisk,
#: the NPS survey's name.
ALLOWED_LATIN = {
    "csv",
    "excel",
    "ctrl",
    "enter",
    "shift",
    "nps",
    "vera",
    "anna",
    "reception",
}

pytestmark = pytest.mark.slow


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ux")
    db_url = f"sqlite:///{tmp / 'ux.db'}"
    upgrade(db_url)
    factory = create_session_factory(create_db_engine(db_url))
    with factory.begin() as s:
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
        users.create_user(s, username="anna", password=PASSWORD, role="operator", extension="101")
        for call in replay_trace("transfer"):
            queries.persist_call(s, call=call)
    settings = Settings(database_url=db_url, demo=True, recordings_dir=str(tmp / "monitor"))
    app = create_app(settings, session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    yield server.url


def log_in(browser, base: str, username: str, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{base}/auth/login")
    assert page.title().startswith("Вход")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return context, page


def latin_words(text: str) -> set[str]:
    """Return the Latin words of ``text`` that the UI should not show (Russian UI)."""
    text = re.sub(r"\S+\.(wav|mp3|csv|xlsx)\b", " ", text)  # file names are names
    words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", text)}
    return {w for w in words if w not in ALLOWED_LATIN}


def check_page(page, endpoint: str, title: str, heading: str) -> None:
    assert title in page.title(), (endpoint, page.title())
    assert page.title().endswith("Колл-центр клиники")
    assert heading in page.text_content("h1"), (endpoint, page.text_content("h1"))
    assert page.locator("h1").count() == 1
    current = page.locator('.main-nav a[aria-current="page"]')
    assert current.count() == 1 and current.get_attribute("data-nav") == endpoint
    # Identifiers in <code> and keys in <kbd> are not words of the UI.
    shown = page.evaluate(
        "() => { const b = document.body.cloneNode(true);"
        " b.querySelectorAll('code, kbd, script, template').forEach(e => e.remove());"
        " document.documentElement.appendChild(b); const t = b.innerText; b.remove(); return t; }"
    )
    english = latin_words(shown)
    assert not english, f"{endpoint}: English left in the UI: {sorted(english)}"


def crawl(context, base: str, starts: list[str], limit: int = 120) -> dict[str, int]:
    """Fetch every same-site link reachable from ``starts`` (as the logged-in user)."""
    seen: dict[str, int] = {}
    queue = deque(urljoin(base, s) for s in starts)
    while queue and len(seen) < limit:
        url = urldefrag(queue.popleft())[0]
        if url in seen:
            continue
        response = context.request.get(url, max_redirects=5)
        seen[url] = response.status
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        parser = _Links()
        parser.feed(response.text())
        for href in parser.hrefs:
            target = urljoin(url, href)
            if urlsplit(target).netloc == urlsplit(base).netloc and target not in seen:
                queue.append(target)
    return seen


def test_supervisor_navigation_reaches_every_page_with_title_and_heading(
    browser, server, artifacts
):
    base = server
    context, page = log_in(browser, base, "vera")
    try:
        assert page.url == f"{base}/supervisor/"
        # Who is logged in, in which role, and the way out.
        assert page.text_content("#who-name") == "vera"
        assert page.text_content("#who-role").strip() == "руководитель"
        assert page.is_visible("#logout")
        nav = [a.get_attribute("data-nav") for a in page.locator(".main-nav a").all()]
        assert nav == [endpoint for endpoint, *_ in SUPERVISOR_PAGES]
        for endpoint, path, title, heading, name in SUPERVISOR_PAGES:
            page.click(f'.main-nav a[data-nav="{endpoint}"]')
            page.wait_for_url(f"{base}{path}")
            check_page(page, endpoint, title, heading)
            page.screenshot(path=artifacts / f"ux-supervisor-{name}.png", full_page=True)
            if endpoint == "supervisor.wallboard":
                # The hall's TV: the board alone, full screen.
                page.click("#fullscreen")
                page.wait_for_function("document.fullscreenElement !== null")
                assert page.evaluate("document.fullscreenElement.id") == "wallboard-page"
                page.evaluate("document.exitFullscreen()")
        # The call page: reached from the call list, "Звонки" stays current.
        page.goto(f"{base}/supervisor/calls?from={TRACE_DAY}&to={TRACE_DAY}")
        # Numbers as people read them, whatever form the exchange sent them in.
        numbers = page.locator("#call-list .phone-number").all_text_contents()
        assert numbers and all(
            re.fullmatch(r"\+7\u00a0\d{3}\u00a0\d{3}-\d\d-\d\d", n) for n in numbers
        ), numbers
        page.click("#call-list tbody tr a >> nth=0")
        page.wait_for_url(re.compile(r".*/supervisor/calls/[^/?]+$"))
        check_page(page, "supervisor.calls", "Звонок", "Звонок")
        assert page.locator("#timeline li").count() >= 2
        page.screenshot(path=artifacts / "ux-supervisor-call.png", full_page=True)
        # The small laptop: the bar stays one row and every link stays visible.
        page.set_viewport_size(LAPTOP)
        page.goto(f"{base}/supervisor/dashboard")
        bar = page.locator(".topbar").bounding_box()
        assert bar is not None and bar["height"] < 50, bar
        for link in page.locator(".main-nav a").all():
            assert link.is_visible()
        page.screenshot(path=artifacts / "ux-supervisor-dashboard-1280.png")
        # Logging out ends at the login page; the panel then asks to log in again.
        page.click("#logout")
        page.wait_for_url(f"{base}/auth/login")
        page.goto(f"{base}/supervisor/dashboard")
        assert page.url.startswith(f"{base}/auth/login")
    finally:
        context.close()


def test_operator_sees_only_the_panel_and_supervisor_pages_are_refused(browser, server, artifacts):
    base = server
    context, page = log_in(browser, base, "anna")
    try:
        assert page.url == f"{base}/operator/"
        assert page.text_content("#who-name") == "anna"
        assert "администратор · доб. 101" in page.text_content("#who-role")
        nav = [a.get_attribute("data-nav") for a in page.locator(".main-nav a").all()]
        assert nav == ["operator.panel"]
        endpoint, _, title, heading, name = OPERATOR_PAGES[0]
        check_page(page, endpoint, title, heading)
        page.wait_for_selector("#conn[data-state=up]", timeout=10_000)
        assert page.text_content("#conn") == "на связи"
        page.screenshot(path=artifacts / f"ux-operator-{name}.png", full_page=True)
        # Typed in by hand, a supervisor page is refused in Russian, with the bar still there.
        for path in ("/supervisor/", "/supervisor/dashboard", "/admin/audit", "/admin/"):
            response = page.goto(f"{base}{path}")
            assert response is not None and response.status == 403, path
            assert "Ошибка 403" in page.text_content("h1")
            assert page.locator(".main-nav a").count() == 1
        page.screenshot(path=artifacts / "ux-operator-403.png")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("username", "starts"),
    [
        (
            "vera",
            [path for _, path, *_ in SUPERVISOR_PAGES]
            + [f"/supervisor/calls?from={TRACE_DAY}&to={TRACE_DAY}", "/admin/"],
        ),
        ("anna", ["/operator/"]),
    ],
)
def test_no_link_reachable_from_a_roles_pages_is_broken(browser, server, username, starts):
    context, _ = log_in(browser, server, username)
    try:
        statuses = crawl(context, server, starts)
    finally:
        context.close()
    broken = {url: status for url, status in statuses.items() if status >= 400}
    assert not broken, broken
    # The crawl went somewhere: every start page, and for the supervisor call pages and exports.
    assert len(statuses) >= len(starts)
    if username == "vera":
        assert any(re.search(r"/supervisor/calls/[^/?]+$", url) for url in statuses)
        assert any(url.endswith(".csv") or ".csv?" in url for url in statuses)


def test_empty_states_and_keyboard_focus(browser, server):
    base = server
    context, page = log_in(browser, base, "vera")
    try:
        page.goto(f"{base}/supervisor/calls?from=2026-01-05&to=2026-01-05")
        assert "Пока нет звонков" in page.text_content(".empty")
        page.goto(f"{base}/supervisor/calls?from=2026-01-05&to=2026-01-05&phone=000")
        assert "Звонков по этим условиям нет" in page.text_content(".empty")
        assert page.is_visible("#reset-filters")
        # A bad period is explained on the page, in Russian, with the bar to go elsewhere.
        response = page.goto(f"{base}/supervisor/calls?from=2026-13-01")
        assert response is not None and response.status == 400
        assert "Неверный период" in page.text_content("main")
        assert page.locator(".main-nav a").count() == len(SUPERVISOR_PAGES)
        # A library's English default (405 here) gives way to Russian words.
        response = page.goto(f"{base}/admin/forget/check")
        assert response is not None and response.status == 405
        assert "Ошибка 405" in page.text_content("h1")
        assert not latin_words(page.inner_text("main"))
        # The scripts' number format is the pages' one (wallboard, today's live lists).
        shown = page.evaluate(
            "['89261112233', '+79161234567', '9267883690', '101', '+44 20 7946 0958']"
            ".map(window.clinicFormat.phone)"
        )
        nb = "\u00a0"
        assert shown == [
            f"+7{nb}926{nb}111-22-33",
            f"+7{nb}916{nb}123-45-67",
            f"+7{nb}926{nb}788-36-90",
            "101",
            "+44 20 7946 0958",
        ]
        # Keyboard: the first Tab lands on "skip to content", which is then visible and
        # outlined; the next Tabs walk the bar in order.
        page.goto(f"{base}/supervisor/dashboard")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        assert page.is_visible(".skip-link")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "brand"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.nav") == "supervisor.calls_today"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.nav") == "supervisor.dashboard"
    finally:
        context.close()
