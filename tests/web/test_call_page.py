"""The call page: timeline, recording (Range, traversal, missing), words, tag corrections."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.config import Settings
from callcenter.replay import replay_trace
from callcenter.store import audit, corrections, queries, speech, users
from tests.web.conftest import PASSWORD, csrf_of
from web import create_app, notifier_for

SHARED_RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
TRANSFER_LINKEDID = "1795369538.60"  # the blind transfer of the `transfer` trace, 101 → 102
RECORDING = "q-20261122-174543-79857001122-1795369538.61.wav"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WORDS = [
    {"word": "здравствуйте", "start": 0.42, "end": 1.1, "conf": 0.9},
    {"word": "клиника", "start": 1.2, "end": 1.8, "conf": 0.8},
    {"word": "<b>запись</b>", "start": 6.5, "end": 7.0, "conf": 0.7},
]


@pytest.fixture
def transfer_call():
    [call] = [c for c in replay_trace("transfer") if c.linkedid == TRANSFER_LINKEDID]
    assert call.recording == RECORDING
    return call


@pytest.fixture
def recordings(tmp_path):
    """RECORDINGS_DIR: a folder of this test's own with the transfer call's real recording."""
    folder = tmp_path / "monitor"
    folder.mkdir()
    shutil.copyfile(SHARED_RECORDINGS / RECORDING, folder / RECORDING)
    return folder


@pytest.fixture
def app(web_db_url, factory, transfer_call, recordings):
    with factory.begin() as s:
        queries.persist_call(s, call=transfer_call)
    settings = Settings(database_url=web_db_url, demo=True, recordings_dir=str(recordings))
    app = create_app(settings, session_factory=factory, testing=True)
    yield app
    notifier_for(app).close()


def _login(client, username):
    token = csrf_of(client.get("/auth/login").get_data(as_text=True))
    client.post(
        "/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    return client


@pytest.fixture
def vera(app):
    return _login(app.test_client(), "vera")


def _store_transcript(factory, linkedid=TRANSFER_LINKEDID, words=WORDS, tags=("price_objection",)):
    with factory.begin() as s:
        row = speech.start_transcript(
            s, linkedid=linkedid, recording=RECORDING, model="test", now=NOW
        )
        speech.finish_transcript(
            s,
            row=row,
            status="done",
            text=" ".join(w["word"] for w in words),
            duration_s=8.0,
            words=list(words),
            now=NOW,
        )
        speech.add_tags(s, linkedid=linkedid, tags=tags, source="tagger", now=NOW)


def _timeline(page: str) -> list[tuple[str, str]]:
    block = page[page.index('id="timeline"') : page.index("</ol>")]
    return [
        (kind, re.sub(r"<time>.*?</time>", "", text).strip())
        for kind, text in re.findall(r'<li data-kind="(\w+)">(.*?)</li>', block, re.S)
    ]


def test_the_timeline_tells_queue_rings_answer_transfer_and_hang_up(vera):
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    kinds = [kind for kind, _ in _timeline(page)]
    assert kinds == [
        "started",
        "queued",
        "ringing",
        "ringing",
        "ringing",
        "answered",
        "leg_end",
        "leg_end",
        "transfer",
        "ringing",
        "answered",
        "ended",
    ]
    texts = dict(_timeline(page))
    assert "+79857001122" in texts["started"]
    assert "«reception»: ждал(а) 1,0 с" in texts["queued"]
    assert texts["transfer"] == "Слепой перевод от 101 (Иванова Анна) к 102 (Петрова Мария)"
    assert texts["ended"] == "Звонок завершён: отвечен"
    assert "101 → 102 (после перевода)" in page


def test_task_events_and_operator_outcomes_join_the_timeline(app, factory, make_call, vera):
    dropped = make_call(linkedid="1795369641.5", start_ts=1795369641.0)
    with factory.begin() as s:
        queries.persist_call(s, call=dropped)
        users.record_outcome(
            s,
            linkedid=dropped.linkedid,
            operator="anna",
            outcome="not_interested",
            detail=None,
            note="",
            at=NOW,
            phone=None,
        )
    page = vera.get(f"/supervisor/calls/{dropped.linkedid}").get_data(as_text=True)
    entries = _timeline(page)
    assert [k for k, _ in entries][-2:] == ["task", "outcome"]
    assert re.match(r"Открыта задача №\d+ \(пропущенный звонок\)", entries[-2][1])
    assert entries[-1][1] == "anna отметил(а) итог: не интересно"


def test_an_outbound_callback_names_the_number_dialled(factory, vera):
    [call] = [c for c in replay_trace("outbound_callback_answered") if c.callback_task == "1002"]
    with factory.begin() as s:
        queries.persist_call(s, call=call)
    page = vera.get(f"/supervisor/calls/{call.linkedid}").get_data(as_text=True)
    entries = _timeline(page)
    assert entries[0] == ("started", "Исходящий звонок на номер 79031234567")
    assert ("answered", "Ответил(а) 101 (Иванова Анна)") in entries
    assert entries[-1] == ("ended", "Звонок завершён: исходящий, отвечен")


def test_the_page_has_a_player_for_the_recording(vera):
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    assert f'src="/supervisor/calls/{TRANSFER_LINKEDID}/recording"' in page
    assert "recording-missing" not in page


def fetch(client, url, **kwargs):
    """GET and close the response (a served file stays open until then)."""
    with client.get(url, **kwargs) as response:
        return response.status_code, response.headers, response.get_data()


def test_the_recording_is_served_whole_and_by_byte_range(vera, recordings):
    data = (recordings / RECORDING).read_bytes()
    url = f"/supervisor/calls/{TRANSFER_LINKEDID}/recording"
    status, headers, body = fetch(vera, url)
    assert status == 200
    assert headers["Content-Type"] in ("audio/wav", "audio/x-wav")
    assert headers["Accept-Ranges"] == "bytes"
    assert body == data
    status, headers, body = fetch(vera, url, headers={"Range": "bytes=1000-1999"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert body == data[1000:2000]
    status, _, _ = fetch(vera, url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert status == 416


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "/etc/passwd", "sub/../../secret.wav", "escape.wav"]
)
def test_a_recording_name_leaving_the_folder_is_refused(
    factory, make_call, vera, recordings, tmp_path, name
):
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF-OUTSIDE-CONTENT")
    # A symlink inside the folder that points out of it is refused like ``..``.
    (recordings / "escape.wav").symlink_to(outside)
    call = make_call(linkedid="1795369641.66", recording=name)
    with factory.begin() as s:
        queries.persist_call(s, call=call)
    page = vera.get(f"/supervisor/calls/{call.linkedid}").get_data(as_text=True)
    assert 'id="recording-missing"' in page
    assert "недопустимое имя файла записи" in page
    assert "<audio" not in page
    status, _, body = fetch(vera, f"/supervisor/calls/{call.linkedid}/recording")
    assert status == 404
    assert b"OUTSIDE-CONTENT" not in body


def test_a_missing_recording_file_says_so(factory, make_call, vera):
    call = make_call(linkedid="1795369641.67", recording="q-gone.wav")
    with factory.begin() as s:
        queries.persist_call(s, call=call)
    page = vera.get(f"/supervisor/calls/{call.linkedid}").get_data(as_text=True)
    assert "Запись недоступна: файл записи не найден: q-gone.wav." in page
    status, _, body = fetch(vera, f"/supervisor/calls/{call.linkedid}/recording")
    assert status == 404
    assert "файл записи не найден: q-gone.wav" in body.decode()


def test_a_call_without_recording_says_so(factory, make_call, vera):
    call = make_call(linkedid="1795369641.68", recording=None)
    with factory.begin() as s:
        queries.persist_call(s, call=call)
    page = vera.get(f"/supervisor/calls/{call.linkedid}").get_data(as_text=True)
    assert "у звонка нет записи" in page


def test_transcript_words_carry_their_start_times_and_stay_text(factory, vera):
    _store_transcript(factory)
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    spans = re.findall(r'<span class="word"[^>]*data-start="([\d.]+)"[^>]*>(.*?)</span>', page)
    assert spans == [
        ("0.42", "здравствуйте"),
        ("1.20", "клиника"),
        ("6.50", "&lt;b&gt;запись&lt;/b&gt;"),
    ]


def test_a_transcript_not_done_yet_says_why(factory, vera):
    with factory.begin() as s:
        speech.fail_transcript(
            s,
            linkedid=TRANSFER_LINKEDID,
            recording=RECORDING,
            model="m",
            error="not audio",
            now=NOW,
        )
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    assert "расшифровать не удалось: not audio" in page
    assert 'class="word"' not in page


def _tag_form(vera):
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    form = page[page.index('id="tag-form"') : page.index("</form>", page.index('id="tag-form"'))]
    shown = re.findall(r'name="shown" value="(\w+)"', form)
    ticked = re.findall(r'name="tag" value="(\w+)" checked', form)
    return csrf_of(page), shown, ticked


def test_a_supervisor_corrects_tags_and_the_taggers_stay(factory, vera):
    _store_transcript(factory, tags=("price_objection", "booked"))
    token, shown, ticked = _tag_form(vera)
    assert shown == sorted(ticked) == ["booked", "price_objection"]
    response = vera.post(
        f"/supervisor/calls/{TRANSFER_LINKEDID}/tags",
        data={"csrf_token": token, "shown": shown, "tag": ["booked", "thinking"]},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/supervisor/calls/{TRANSFER_LINKEDID}#tags")
    with factory() as s:
        state = corrections.tag_state(s, linkedid=TRANSFER_LINKEDID)
        assert speech.list_tags(s, linkedid=TRANSFER_LINKEDID, source="tagger") == [
            "booked",
            "price_objection",
        ]
    assert state.effective == ("booked", "thinking")
    assert [(c.tag, c.action, c.by) for c in state.corrections] == [
        ("thinking", "add", "vera"),
        ("price_objection", "remove", "vera"),
    ]
    page = vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}").get_data(as_text=True)
    table = page[page.index('id="corrections"') :]
    assert "vera" in table and "добавил(а) «подумает»" in table and "убрал(а) «дорого»" in table
    assert '<li data-tag="price_objection" class="removed"' in page
    assert '<li data-tag="thinking" class="added"' in page


def test_tag_corrections_need_the_csrf_token(factory, vera):
    response = vera.post(f"/supervisor/calls/{TRANSFER_LINKEDID}/tags", data={"tag": ["fear"]})
    assert response.status_code == 400
    with factory() as s:
        assert corrections.list_corrections(s, linkedid=TRANSFER_LINKEDID) == []


def test_an_unknown_tag_is_a_400_that_says_which(factory, vera):
    token, _, _ = _tag_form(vera)
    response = vera.post(
        f"/supervisor/calls/{TRANSFER_LINKEDID}/tags",
        data={"csrf_token": token, "tag": ["expensive"]},
    )
    assert response.status_code == 400
    assert "Теги не изменены: unknown tag(s): expensive" in response.get_data(as_text=True)


def test_an_unknown_call_is_404(vera):
    assert vera.get("/supervisor/calls/404.404").status_code == 404
    assert vera.get("/supervisor/calls/404.404/recording").status_code == 404


def test_operators_get_403_on_the_call_page_its_recording_and_the_tag_form(app):
    anna = _login(app.test_client(), "anna")
    base = f"/supervisor/calls/{TRANSFER_LINKEDID}"
    assert anna.get(base).status_code == 403
    assert fetch(anna, f"{base}/recording")[0] == 403
    token = csrf_of(anna.get("/operator/").get_data(as_text=True))
    assert anna.post(f"{base}/tags", data={"csrf_token": token, "tag": ["fear"]}).status_code == 403


def test_the_call_list_links_each_call_to_its_page(vera):
    page = vera.get("/supervisor/calls?from=2026-11-22&to=2026-11-22").get_data(as_text=True)
    assert f'href="/supervisor/calls/{TRANSFER_LINKEDID}"' in page


def test_opening_a_transcript_and_playing_a_recording_are_audited(factory, vera):
    _store_transcript(factory)
    vera.get(f"/supervisor/calls/{TRANSFER_LINKEDID}")
    url = f"/supervisor/calls/{TRANSFER_LINKEDID}/recording"
    fetch(vera, url, headers={"Range": "bytes=0-"})
    fetch(vera, url, headers={"Range": "bytes=5000-"})  # the player seeking: not another listening
    with factory() as s:
        entries = audit.list_access(
            s,
            since=datetime.now(UTC) - timedelta(minutes=5),
            until=datetime.now(UTC) + timedelta(minutes=5),
            limit=50,
        )
    assert sorted((e.user, e.action, e.subject_kind, e.subject_id) for e in entries) == [
        ("vera", "open_transcript", "call", TRANSFER_LINKEDID),
        ("vera", "play_recording", "call", TRANSFER_LINKEDID),
    ]
