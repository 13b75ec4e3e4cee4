"""In Chromium: on the call page, clicking a transcript word moves the player to that word.

The recording is the real one of the `transfer` trace's first call (tests/fixtures/recordings),
served by the supervisor's recording route with HTTP Range requests, as a browser seeks.
"""

from __future__ import annotations

import shutil
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.config import Settings
from callcenter.replay import replay_trace
from callcenter.store import corrections, queries, speech, users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from web import create_app, notifier_for
from web.server import start_web_in_thread

PASSWORD = "e2e password"
LINKEDID = "1795369538.60"
RECORDING = "q-20261122-174543-79857001122-1795369538.61.wav"
SHARED_RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: Word timings inside the 20 s recording (the page's behaviour, not recognition, is tested).
WORDS = [
    {"word": "здравствуйте", "start": 0.5, "end": 1.2, "conf": 0.9},
    {"word": "дорого", "start": 3.25, "end": 3.9, "conf": 0.8},
    {"word": "подумаю", "start": 9.75, "end": 10.4, "conf": 0.8},
]

pytestmark = pytest.mark.slow


def seed(factory) -> None:
    [call] = [c for c in replay_trace("transfer") if c.linkedid == LINKEDID]
    with factory.begin() as s:
        users.create_user(s, username="vera", password=PASSWORD, role="supervisor")
        queries.persist_call(s, call=call)
        row = speech.start_transcript(
            s, linkedid=LINKEDID, recording=RECORDING, model="test", now=NOW
        )
        speech.finish_transcript(
            s,
            row=row,
            status="done",
            text=" ".join(w["word"] for w in WORDS),
            duration_s=20.4,
            words=WORDS,
            now=NOW,
        )
        speech.add_tags(s, linkedid=LINKEDID, tags=["price_objection"], source="tagger", now=NOW)


def current_time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


@pytest.mark.timeout(90)
def test_clicking_a_word_seeks_the_player_and_tags_are_corrected(browser, artifacts, tmp_path):
    recordings = tmp_path / "monitor"
    recordings.mkdir()
    shutil.copyfile(SHARED_RECORDINGS / RECORDING, recordings / RECORDING)
    db_url = f"sqlite:///{tmp_path / 'call.db'}"
    upgrade(db_url)
    engine = create_db_engine(db_url)
    factory = create_session_factory(engine)
    seed(factory)
    settings = Settings(database_url=db_url, demo=True, recordings_dir=str(recordings))
    app = create_app(settings, session_factory=factory)
    server = start_web_in_thread(app, host="127.0.0.1", port=0)
    base = server.url
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{base}/auth/login")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/supervisor/")
        # From the call list to the call page.
        page.goto(f"{base}/supervisor/calls?from=2026-11-22&to=2026-11-22")
        page.click(f'#call-list tr[data-linkedid="{LINKEDID}"] a')
        page.wait_for_url(f"{base}/supervisor/calls/{LINKEDID}")
        assert page.is_visible("#timeline li[data-kind=transfer]")
        # The player knows the recording's length: the route served it.
        page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=10_000)
        duration = page.evaluate("document.getElementById('player').duration")
        with wave.open(str(recordings / RECORDING)) as wav:
            assert duration == pytest.approx(wav.getnframes() / wav.getframerate(), abs=0.1)
        assert current_time(page) == 0

        page.click('#transcript .word[data-start="9.75"]')
        page.wait_for_function(
            "Math.abs(document.getElementById('player').currentTime - 9.75) < 0.5",
            timeout=5_000,
        )
        page.click('#transcript .word[data-start="3.25"]')
        page.wait_for_function(
            "Math.abs(document.getElementById('player').currentTime - 3.25) < 0.5",
            timeout=5_000,
        )
        # The keyboard does the same (the words are focusable buttons).
        page.focus('#transcript .word[data-start="0.50"]')
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('player').currentTime < 1.5", timeout=5_000)
        page.evaluate("document.getElementById('player').pause()")
        page.screenshot(path=artifacts / "call-page-01-transcript.png", full_page=True)

        # The supervisor corrects the tags: «дорого» off, «подумает» on.
        page.uncheck("#tag-form input[name=tag][value=price_objection]")
        page.check("#tag-form input[name=tag][value=thinking]")
        page.click("#tag-form button[type=submit]")
        page.wait_for_selector("#corrections")
        assert page.is_visible('#tag-list li.added[data-tag="thinking"]')
        assert page.is_visible('#tag-list li.removed[data-tag="price_objection"]')
        page.screenshot(path=artifacts / "call-page-02-tags-corrected.png", full_page=True)
        with factory() as s:
            state = corrections.tag_state(s, linkedid=LINKEDID)
        assert state.tagger == ("price_objection",)
        assert state.effective == ("thinking",)

        # The file goes away while the page is open: the player says it cannot load it...
        (recordings / RECORDING).unlink()
        # (a new URL: Chromium would play the bytes it cached for the old one)
        page.evaluate(
            "const p = document.getElementById('player'); p.src = p.src + '?again'; p.load()"
        )
        page.wait_for_selector("#player-error", timeout=5_000)
        # ...and the page, built again, says the file is missing instead of showing a player.
        page.reload()
        assert "файл записи не найден" in page.text_content("#recording-missing")
        assert page.query_selector("#player") is None
    finally:
        context.close()
        server.stop()
        notifier_for(app).close()
        engine.dispose()
