"""/admin/scripts: supervisors edit the playbook's scripts; every save is validated by the
loader's rules, stored as a new version (who, when, comment) and audited; the history shows
diffs and restores old versions as new ones; operators get the edited script on the next pop."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from callcenter.calls.effects import AgentRinging
from callcenter.playbook.loader import SCRIPTS_DIR
from callcenter.playbook.text import marketing_word
from callcenter.store.audit import list_access
from callcenter.store.models_playbook import ScriptVersion
from callcenter.store.playbook import list_versions
from tests.web.conftest import csrf_of, login, socket_for
from web import notifier_for
from web.admin.scripts import MAX_TEXT, russian_problem

SHIPPED_UNKNOWN = (SCRIPTS_DIR / "inbound_unknown.toml").read_text(encoding="utf-8")
SHIPPED_KNOWN = (SCRIPTS_DIR / "inbound_known.toml").read_text(encoding="utf-8")
NEW_LINE = "Меня зовут Анна, я администратор. Как я могу к вам обращаться?"


def _form(client, key: str, text: str, **fields) -> dict:
    page = client.get(f"/admin/scripts/{key}").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]*)"', page)
    assert base
    data = {
        "csrf_token": csrf_of(page),
        "base_version": base.group(1),
        "text": text,
        "comment": "",
        "action": "save",
    }
    data.update(fields)
    return data


def _save(client, key: str, text: str, **fields):
    return client.post(f"/admin/scripts/{key}", data=_form(client, key, text, **fields))


def _with_line(text: str, line: str) -> str:
    return text + f'\n[[lines]]\ntext = "{line}"\n'


def _versions(factory, key: str):
    with factory() as s:
        return list_versions(s, script_id=key)


def _page(response) -> str:
    return response.get_data(as_text=True)


def test_operators_get_403_everywhere(operator_client, supervisor_client) -> None:
    assert operator_client.get("/admin/scripts").status_code == 403
    assert operator_client.get("/admin/scripts/inbound_known").status_code == 403
    assert operator_client.get("/admin/scripts/inbound_known/versions/0").status_code == 403
    token = csrf_of(_page(operator_client.get("/operator/")))
    post = operator_client.post(
        "/admin/scripts/inbound_known", data={"csrf_token": token, "text": "x"}
    )
    assert post.status_code == 403
    restore = operator_client.post(
        "/admin/scripts/inbound_known/versions/0/restore", data={"csrf_token": token}
    )
    assert restore.status_code == 403


def test_the_list_shows_every_situation_and_the_objections(supervisor_client, factory) -> None:
    assert (
        _save(
            supervisor_client,
            "no_show",
            _with_line((SCRIPTS_DIR / "no_show.toml").read_text(encoding="utf-8"), "Ждём вас!"),
            comment="ещё одна фраза",
        ).status_code
        == 302
    )
    page = _page(supervisor_client.get("/admin/scripts"))
    rows = re.findall(r'<tr data-key="([a-z_]+)">', page)
    assert len(rows) == 9 and "objections" not in rows
    no_show = page.split('<tr data-key="no_show">')[1].split("</tr>")[0]
    assert "Не пришли на приём" in no_show
    assert "vera" in no_show and "ещё одна фраза" in no_show
    assert re.search(r"<td>1</td>", no_show)
    known = page.split('<tr data-key="inbound_known">')[1].split("</tr>")[0]
    assert "Входящий: звонит наш пациент" in known and "исходная" in known
    objections = page.split('id="objections-list"')[1]
    assert objections.index("Дорого") < objections.index("Нет времени")  # «дорого» first


def test_edit_page_lists_placeholders_and_previews_the_sample_card(supervisor_client) -> None:
    page = _page(supervisor_client.get("/admin/scripts/inbound_known"))
    for name in ("name", "doctor", "months_since_visit", "clinic"):
        assert f'data-placeholder="{{{name}}}"' in page
    assert "Клиника «{clinic}», здравствуйте!" in page  # the text in the textarea
    preview = page.split('id="script-preview"')[1]
    assert "Мария Петровна, добрый день!" in preview
    assert "7 месяцев" in preview


def test_preview_of_unsaved_text_saves_nothing(supervisor_client, factory) -> None:
    text = SHIPPED_KNOWN.replace("добрый день!", "рады вас слышать!")
    r = supervisor_client.post(
        "/admin/scripts/inbound_known",
        data=_form(supervisor_client, "inbound_known", text, action="preview"),
    )
    assert r.status_code == 200
    preview = _page(r).split('id="script-preview"')[1]
    assert "Мария Петровна, рады вас слышать!" in preview
    assert _versions(factory, "inbound_known") == []


def test_a_save_is_a_new_version_with_who_when_comment_and_an_audit_entry(
    supervisor_client, factory
) -> None:
    before = datetime.now(UTC)
    r = _save(
        supervisor_client,
        "inbound_unknown",
        _with_line(SHIPPED_UNKNOWN, NEW_LINE),
        comment="представляемся",
    )
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/admin/scripts/inbound_unknown?saved=1")
    [version] = _versions(factory, "inbound_unknown")
    assert (version.version, version.author, version.comment) == (1, "vera", "представляемся")
    assert version.created_at.replace(tzinfo=version.created_at.tzinfo or UTC) >= before - (
        timedelta(seconds=1)
    )
    assert NEW_LINE in version.text
    page = _page(supervisor_client.get(r.headers["Location"]))
    assert "Сохранено как версия 1." in page
    assert NEW_LINE in page.split('id="script-preview"')[1]
    with factory() as s:
        entries = list_access(
            s,
            since=before - timedelta(minutes=1),
            until=datetime.now(UTC) + timedelta(minutes=1),
            limit=10,
        )
    assert [(e.user, e.action, e.subject_kind, e.subject_id) for e in entries] == [
        ("vera", "edit_script", "script", "inbound_unknown")
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # A broken placeholder, on the line of the new [[lines]]'s text (the 5th line).
        ('text = "Здравствуйте, {name!"', 5, "сломанная подстановка"),
        (
            'text = "Здравствуйте, {nmae}!"\nfallback = "Здравствуйте!"',
            5,
            "неизвестная подстановка {nmae}",
        ),
        ('text = ""', 5, "поле «text» не может быть пустым"),
        ('text = "Для вас скидка 15 % на чистку!"', 5, "отметьте реплику marketing = true"),
        ('text = "Здравствуйте, {name}!"', 5, "нужен fallback"),
        ('text = "Привет"\nmarketting = true', 6, "неизвестное поле «marketting»"),
        ('text = "Не закрыта кавычка', 5, "ошибка синтаксиса TOML"),
    ],
)
def test_an_invalid_edit_is_refused_with_its_line_in_russian(
    supervisor_client, factory, text, line, message
) -> None:
    document = 'id = "no_show"\ntitle = "Неявка"\nsituation = "no_show"\n[[lines]]\n' + text + "\n"
    r = _save(supervisor_client, "no_show", document, comment="с ошибкой")
    assert r.status_code == 400
    page = _page(r)
    assert "Сценарий не сохранён" in page
    problems = page.split('id="script-problems"')[1].split("</div>")[0]
    assert f'data-line="{line}"' in problems and f"Строка {line}:" in problems
    assert message in problems
    assert str(escape(document.splitlines()[0])) in page  # the text is kept for fixing
    assert _versions(factory, "no_show") == []


def test_an_empty_text_is_refused(supervisor_client, factory) -> None:
    r = _save(supervisor_client, "no_show", "   \n")
    assert r.status_code == 400
    assert "Текст сценария пуст." in _page(r)
    assert _versions(factory, "no_show") == []


def test_a_clash_with_another_script_names_it(supervisor_client, factory) -> None:
    clash = SHIPPED_UNKNOWN.replace('situation = "inbound_unknown"', 'situation = "no_show"')
    r = _save(supervisor_client, "inbound_unknown", clash)
    assert r.status_code == 400
    problems = _page(r).split('id="script-problems"')[1].split("</div>")[0]
    assert "no_show.toml, строка 3:" in problems and str(SCRIPTS_DIR) not in problems
    assert "у ситуации «no_show» оказалось два сценария (второй — «inbound_unknown»)" in problems
    assert _versions(factory, "inbound_unknown") == []


def test_an_edit_on_a_stale_version_is_refused(supervisor_client, factory) -> None:
    stale = _form(supervisor_client, "no_show", "")
    text = (SCRIPTS_DIR / "no_show.toml").read_text(encoding="utf-8")
    assert (
        _save(supervisor_client, "no_show", _with_line(text, "Первая правка.")).status_code == 302
    )
    stale["text"] = _with_line(text, "Вторая правка.")
    r = supervisor_client.post("/admin/scripts/no_show", data=stale)
    assert r.status_code == 400
    assert "изменил другой пользователь" in _page(r)
    assert [v.version for v in _versions(factory, "no_show")] == [1]


def test_history_diff_and_restore_as_a_new_version(supervisor_client, factory) -> None:
    v1 = _with_line(SHIPPED_UNKNOWN, NEW_LINE)
    v2 = v1.replace("Меня зовут Анна", "Меня зовут Ольга")
    assert _save(supervisor_client, "inbound_unknown", v1, comment="первая").status_code == 302
    assert _save(supervisor_client, "inbound_unknown", v2, comment="вторая").status_code == 302
    edit = _page(supervisor_client.get("/admin/scripts/inbound_unknown"))
    history = edit.split('id="script-history"')[1]
    assert re.findall(r'data-version="(\d+)"', history) == ["2", "1", "0"]

    page = _page(supervisor_client.get("/admin/scripts/inbound_unknown/versions/2"))
    diff = page.split('id="version-diff"')[1].split("</div></div>")[0]
    assert '<div class="removed">-text = &#34;Меня зовут Анна' in diff
    assert '<div class="added">+text = &#34;Меня зовут Ольга' in diff
    assert "Эта версия действует сейчас" in page and "restore-form" not in page
    first = _page(supervisor_client.get("/admin/scripts/inbound_unknown/versions/1"))
    assert '<div class="added">+text = &#34;' + NEW_LINE in first  # against the shipped file

    token = csrf_of(first)
    r = supervisor_client.post(
        "/admin/scripts/inbound_unknown/versions/1/restore",
        data={"csrf_token": token, "comment": "Ольга уволилась"},
    )
    assert r.status_code == 302
    versions = _versions(factory, "inbound_unknown")
    assert [v.version for v in versions] == [3, 2, 1]  # nothing rewritten
    assert versions[0].text == v1 and versions[1].text == v2
    assert versions[0].comment == "Восстановлена версия 1: Ольга уволилась"
    r = supervisor_client.post(
        "/admin/scripts/inbound_unknown/versions/0/restore", data={"csrf_token": token}
    )
    assert r.status_code == 302
    latest = _versions(factory, "inbound_unknown")[0]
    assert (latest.version, latest.text) == (4, SHIPPED_UNKNOWN)
    assert latest.comment == "Восстановлена исходная версия"
    assert supervisor_client.get("/admin/scripts/inbound_unknown/versions/9").status_code == 404


def test_unknown_script_is_404(supervisor_client) -> None:
    assert supervisor_client.get("/admin/scripts/no_such_script").status_code == 404
    assert supervisor_client.get("/admin/scripts/..%2Fsecrets").status_code == 404


def test_without_csrf_nothing_is_saved_or_restored(supervisor_client, factory) -> None:
    data = _form(supervisor_client, "no_show", _with_line(SHIPPED_UNKNOWN, "x"))
    del data["csrf_token"]
    assert supervisor_client.post("/admin/scripts/no_show", data=data).status_code == 400
    r = supervisor_client.post("/admin/scripts/no_show/versions/0/restore", data={})
    assert r.status_code == 400
    assert _versions(factory, "no_show") == []


def test_objection_answers_are_edited_too(supervisor_client, factory) -> None:
    shipped = (SCRIPTS_DIR / "objections.toml").read_text(encoding="utf-8")
    page = _page(supervisor_client.get("/admin/scripts/objections"))
    preview = page.split('id="script-preview"')[1]
    assert preview.index("Дорого") < preview.index("Нет времени")
    assert "реклама: только с согласием" in preview  # the 10 % answer is marked
    unmarked = shipped.replace("marketing = true\n", "", 1)
    r = _save(supervisor_client, "objections", unmarked)
    assert r.status_code == 400
    assert "«скидка» — это предложение" in _page(r)
    edited = shipped.replace("Понимаю, времени всегда не хватает.", "Понимаю, все заняты.")
    assert _save(supervisor_client, "objections", edited).status_code == 302
    assert [v.version for v in _versions(factory, "objections")] == [1]


def test_operators_get_the_edited_script_on_the_next_pop(app, supervisor_client) -> None:
    """Through the screen pop (the notifier's card and script) an operator's panel receives."""
    edited = _with_line(SHIPPED_UNKNOWN, NEW_LINE)
    assert _save(supervisor_client, "inbound_unknown", edited).status_code == 302
    http = app.test_client()
    login(http, "anna")
    sio = socket_for(app, http, "/operator")
    try:
        sio.get_received("/operator")
        notifier = notifier_for(app)
        ring = AgentRinging("1795369641.7", "101", None, "89039556279", None, None, 1795369641.0)
        notifier.call_ringing(ring)
        assert notifier.flush()
        pops = [e["args"][0] for e in sio.get_received("/operator") if e["name"] == "pop"]
    finally:
        sio.disconnect("/operator")
    assert len(pops) == 1
    script = pops[0]["script"]
    assert script["id"] == "inbound_unknown"
    assert script["lines"][-1] == NEW_LINE


def test_a_known_callers_card_gets_the_edit_filled_in(supervisor_client, operator_client) -> None:
    """The operator's quick create returns the card and script the panel renders."""
    edited = SHIPPED_KNOWN.replace("добрый день!", "рады вас слышать!")
    assert _save(supervisor_client, "inbound_known", edited).status_code == 302
    token = csrf_of(_page(operator_client.get("/operator/")))
    r = operator_client.post(
        "/operator/patients",
        data={"full_name": "Смирнова Ольга Ивановна", "phone": "89165551234", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 201
    assert (
        "Ольга Ивановна, рады вас слышать! Слушаю вас, чем могу помочь?"
        in (r.get_json()["script"]["lines"])
    )


def test_every_loader_message_reads_in_russian() -> None:
    english = [
        "x (new version):3: id 'a' differs from the script's name 'b'",
        "x (new version):3: unknown situation 'z' (known: a, b)",
        "x (new version):1: a script needs [[lines]]",
        "x (new version):4: every line is marketing or limited to segments: some patients",
        "x (new version):2: id must be 'objections'",
        "x (new version):1: the objections file needs [[objections]]",
        "x (new version):5: unknown objection 'q' (known: a)",
        "x (new version):5: objection 'q' is answered twice",
        "x (new version):7: shortcut '1' is already taken by 'price_objection'",
        "x (new version):5: an objection needs [[objections.answers]]",
        "x (new version):5: every answer is marketing or limited to segments: add one",
        "x (new version):1: no answer to fear, thinking",
        'x (new version):5: a line must be a table with text = "…"',
        "x (new version):6: marketing must be true or false",
        "x (new version):6: segments must be a list of dms, dropped, sleeping",
        "x (new version):6: a fallback must not use placeholders: it is what",
        "x (new version):6: missing required field 'title'",
        "playbook: no script for situation 'no_show'",
        "x (new version): the author is required",
    ]
    for problem in english:
        shown = russian_problem(problem, name="x (new version)")
        assert not re.search(r"[a-z]{4,} [a-z]{3,}", shown.message), shown
    assert russian_problem(english[0], name="x (new version)").line == 3
    other = russian_problem("/s/no_show.toml:3: situation 'a' already has script 'b' (c)", name="x")
    assert (other.line, other.where) == (None, "no_show.toml, строка 3")


def test_a_stored_version_failing_todays_checks_is_flagged(supervisor_client, factory) -> None:
    """A version saved before a rule existed (here: an unmarked offer) is not in force."""
    text = _with_line(SHIPPED_UNKNOWN, "Сегодня скидка на осмотр!")
    with factory.begin() as s:
        s.add(
            ScriptVersion(
                script_id="inbound_unknown",
                version=1,
                text=text,
                author="vera",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                comment="до новых правил",
            )
        )
    listing = _page(supervisor_client.get("/admin/scripts"))
    row = listing.split('<tr data-key="inbound_unknown">')[1].split("</tr>")[0]
    assert "не действует" in row
    page = _page(supervisor_client.get("/admin/scripts/inbound_unknown"))
    assert "Последняя версия 1 не проходит нынешние проверки" in page
    assert "Сегодня скидка" not in page.split('id="script-preview"')[1]  # the file is shown
    fixed = _with_line(SHIPPED_UNKNOWN, "Спасибо за звонок!")
    assert _save(supervisor_client, "inbound_unknown", fixed).status_code == 302  # base is 1
    page = _page(supervisor_client.get("/admin/scripts/inbound_unknown"))
    assert "не проходит нынешние проверки" not in page


def test_an_overlong_text_is_refused(supervisor_client, factory) -> None:
    text = _with_line(SHIPPED_UNKNOWN, "Здравствуйте. " * (MAX_TEXT // 10))
    r = _save(supervisor_client, "inbound_unknown", text)
    assert r.status_code == 400
    assert f"Текст длиннее {MAX_TEXT} символов." in _page(r)
    assert _versions(factory, "inbound_unknown") == []


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Для вас скидка на чистку", "скидка"),
        ("Акция до конца месяца", "Акция"),
        ("Первая консультация бесплатно", "бесплатно"),
        ("−15 % на гигиену", "−15 %"),
        ("Дарим подарок к визиту", "подарок"),
        ("Нет ли боли, реакции на лечение?", None),
        ("Это на 100 % безопасно", None),
        ("Вы у нас не были уже {months_since_visit}", None),
    ],
)
def test_what_makes_a_line_an_offer(text, word) -> None:
    assert marketing_word(text) == word
