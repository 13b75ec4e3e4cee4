"""Supervisors edit the playbook (``/admin/scripts``): scripts and objection answers, versioned.

A script is edited as its TOML document; every save is validated by the playbook loader's rules
(``save_script_version``) and stored as a new version with who, when and a comment. The history
shows each version's diff against the one before it; "restore" saves an old text as a new
version, so history is never rewritten. Operators get the edited script on their next pop:
pops read ``current_playbook`` each time.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from callcenter.playbook.errors import PlaybookInvalid
from callcenter.playbook.loader import SCRIPTS_DIR, Source, parse_source, read_sources
from callcenter.playbook.model import OBJECTIONS_ID, SITUATION_KINDS, Line, Objection, Script
from callcenter.playbook.select import situation_for
from callcenter.playbook.text import PLACEHOLDERS, fill, placeholders_in
from callcenter.store.models_playbook import ScriptVersion
from callcenter.store.playbook import (
    StoredVersion,
    current_sources,
    get_version,
    list_versions,
    save_script_version,
)
from web.admin import bp
from web.admin.clinic_settings import local_time
from web.audit import audit_access
from web.security import current_user, role_required

#: What each placeholder is, as the editor lists them.
PLACEHOLDER_LABELS = {
    "name": "имя и отчество пациента («Мария Петровна»)",
    "doctor": "врач последнего визита",
    "months_since_visit": "сколько месяцев прошло с последнего визита («7 месяцев»)",
    "clinic": "название клиники (в карточке его пока нет: звучит запасной вариант)",
}
SITUATION_LABELS = {
    "inbound_known": "Входящий: наш пациент",
    "inbound_unknown": "Входящий: новый номер",
    "callback_missed": "Перезвон после пропущенного",
    "callback_abandoned": "Перезвон: не дождались ответа",
    "sleeping_care": "«Забота»: давно не были",
    "nps_followup": "Как вы себя чувствуете (3–5 дней после визита)",
    "care_after_treatment": "Забота на следующий день после лечения",
    "no_show": "Не пришли на приём",
    "dms_reminder": "Напоминание о ДМС",
}
SEGMENT_LABELS = {"sleeping": "давно не были", "dropped": "ушедшие", "dms": "ДМС"}

#: The sample patient the preview is filled from: the same card shape a pop gets.
SAMPLE_CARD: dict[str, Any] = {
    "known": True,
    "patient": {"full_name": "Иванова Мария Петровна"},
    "last_visit": {"doctor": "Петров Сергей Иванович"},
    "months_since_visit": 7,
    "segments": ["sleeping", "dropped", "dms"],
    "consent": {"marketing": True, "do_not_call": False},
}
SAMPLE_DESCRIPTION = (
    "Иванова Мария Петровна, врач — Петров Сергей Иванович, не была 7 месяцев, "
    "сегменты: давно не были, ушедшие, ДМС; согласие на рекламу есть"
)

#: The loader's problems (English, for logs and the CLI) as the editor shows them.
_RUSSIAN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), text)
    for pattern, text in (
        (r"not valid TOML: (?P<a>.*)", "ошибка синтаксиса TOML: {a}"),
        (
            r"id '(?P<a>[^']*)' differs from the script's name '(?P<b>[^']*)'",
            "id «{a}» не совпадает с именем сценария «{b}»",
        ),
        (
            r"unknown situation '(?P<a>[^']*)' \(known: (?P<b>.*)\)",
            "неизвестная ситуация «{a}» (известны: {b})",
        ),
        (r"a script needs \[\[lines\]\]", "в сценарии нет ни одной реплики [[lines]]"),
        (
            r"every line is marketing or limited to segments.*",
            "все реплики рекламные или только для сегментов: некоторым пациентам нечего сказать",
        ),
        (r"id must be '(?P<a>[^']*)'", "id должен быть «{a}»"),
        (
            r"the objections file needs \[\[objections\]\]",
            "нет ни одного возражения [[objections]]",
        ),
        (
            r"an objection must be a \[\[objections\]\] table",
            "возражение — это таблица [[objections]]",
        ),
        (
            r"unknown objection '(?P<a>[^']*)' \(known: (?P<b>.*)\)",
            "неизвестное возражение «{a}» (известны: {b})",
        ),
        (r"objection '(?P<a>[^']*)' is answered twice", "возражение «{a}» описано дважды"),
        (
            r"shortcut '(?P<a>[^']*)' is already taken by '(?P<b>[^']*)'",
            "клавиша «{a}» уже занята возражением «{b}»",
        ),
        (
            r"an objection needs \[\[objections\.answers\]\]",
            "у возражения нет ответов [[objections.answers]]",
        ),
        (
            r"every answer is marketing or limited to segments.*",
            "все ответы рекламные или только для сегментов: добавьте ответ для всех",
        ),
        (r"no answer to (?P<a>.*)", "нет ответа на возражения: {a}"),
        (r"a line must be a table.*", 'реплика должна быть таблицей с text = "…"'),
        (r"an answer must be a table.*", 'ответ должен быть таблицей с text = "…"'),
        (r"marketing must be true or false", "marketing — только true или false"),
        (r"segments must be a list of (?P<a>.*)", "segments — список из: {a}"),
        (
            r"unknown placeholder '(?P<a>[^']*)' \(known: (?P<b>.*)\)",
            "неизвестная подстановка {a} (доступны: {b})",
        ),
        (
            r"broken placeholder: unmatched '(?P<a>.)' in (?P<b>.*)",
            "сломанная подстановка: непарная скобка «{a}» в {b}",
        ),
        (
            r"a line with placeholders needs a fallback.*",
            'у реплики с подстановками нужен fallback = "…" — что сказать, если в карточке нет '
            "данных",
        ),
        (
            r"a fallback must not use placeholders.*",
            "в fallback не должно быть подстановок: его говорят, когда данных нет",
        ),
        (
            r"unknown field '(?P<a>[^']*)' in .* \(allowed: (?P<b>.*)\)",
            "неизвестное поле «{a}» (допустимы: {b})",
        ),
        (r"missing required field '(?P<a>[^']*)'", "не заполнено обязательное поле «{a}»"),
        (r"'(?P<a>[^']*)' must be non-empty text", "поле «{a}» не может быть пустым"),
        (
            r"situation '(?P<a>[^']*)' already has script '(?P<b>[^']*)'.*",
            "у ситуации «{a}» оказалось два сценария (второй — «{b}»): у каждой ситуации "
            "один сценарий",
        ),
        (r"no script for situation '(?P<a>[^']*)'", "нет сценария для ситуации «{a}»"),
        (r"no objection answers.*", "нет ответов на возражения"),
        (
            r"'(?P<a>[^']*)' makes this an offer.*",
            "«{a}» — это предложение: отметьте реплику marketing = true "
            "(её говорят только пациентам с согласием на рекламу)",
        ),
        (r"the author is required", "не указан автор изменения"),
        (r"a script id is .*", "имя сценария: строчные латинские буквы, цифры и «_»"),
    )
)
_WITH_LINE = re.compile(r"^(?P<name>.*?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)
_WITHOUT_LINE = re.compile(r"^(?P<name>[^:]*): (?P<message>.*)$", re.DOTALL)
#: Longest comment kept with a version.
MAX_COMMENT = 500
#: Longest script text (the longest shipped one is about 2 000 characters).
MAX_TEXT = 50_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One problem of an edited text, in Russian; ``line`` is in the edited text, if known."""

    line: int | None
    where: str | None  # another document the problem is in (the edit clashes with it)
    message: str


def russian_problem(problem: str, *, name: str) -> Problem:
    """Return a loader problem (``"<name>:<line>: <message>"``) for the editor, in Russian."""
    match = _WITH_LINE.match(problem) or _WITHOUT_LINE.match(problem)
    if match is None:
        return Problem(line=None, where=None, message=_russian(problem))
    groups = match.groupdict()
    line = int(groups["line"]) if groups.get("line") else None
    # Another document: named by its file name, never by the server's path.
    where = None if groups["name"] == name else groups["name"].rsplit("/", 1)[-1]
    if where is not None and line is not None:
        where, line = f"{where}, строка {line}", None
    return Problem(line=line, where=where, message=_russian(groups["message"]))


def _russian(message: str) -> str:
    for pattern, text in _RUSSIAN:
        match = pattern.fullmatch(message)
        if match:
            return text.format(**match.groupdict())
    return message


# --- the list ------------------------------------------------------------------------------


@bp.get("/scripts")
@role_required("supervisor")
def scripts_list() -> str:
    """Every script (situation, title, version in force, who and when) and the objections."""
    from web import db, settings

    tz = settings().timezone
    shipped = read_sources(SCRIPTS_DIR)
    with db()() as s:
        sources = current_sources(s)
        latest = _latest_versions(s)
    rows: list[dict[str, Any]] = []
    objections: tuple[Objection, ...] = ()
    objections_info: dict[str, Any] | None = None
    for key in shipped:
        parsed, _ = parse_source(sources[key])
        stored = latest.get(key)
        info = {
            "key": key,
            "version": stored.version if stored else 0,
            # A stored version failing today's checks is not what operators get: the file is.
            "in_force": stored is None or stored.text == sources[key].text,
            "author": stored.author if stored else "",
            "at": local_time(stored.created_at, tz) if stored else "",
            "comment": stored.comment if stored else "",
        }
        if isinstance(parsed, Script):
            rows.append(
                {
                    **info,
                    "title": parsed.title,
                    "situation": parsed.situation,
                    "situation_label": SITUATION_LABELS.get(parsed.situation, parsed.situation),
                    "lines": len(parsed.lines),
                }
            )
        elif key == OBJECTIONS_ID:
            objections = parsed or ()
            objections_info = info
    order = {kind: i for i, kind in enumerate(SITUATION_KINDS)}
    rows.sort(key=lambda r: (order.get(str(r["situation"]), len(order)), str(r["key"])))
    return render_template(
        "admin/scripts.html",
        rows=rows,
        objections=[
            {"title": o.title, "shortcut": o.shortcut, "answers": len(o.answers)}
            for o in objections
        ],
        objections_info=objections_info,
    )


def _latest_versions(session: Session) -> dict[str, StoredVersion]:
    latest: dict[str, StoredVersion] = {}
    for version in list_versions(session):  # newest first within each script
        latest.setdefault(version.script_id, version)
    return latest


# --- editing -------------------------------------------------------------------------------


@bp.get("/scripts/<key>")
@role_required("supervisor")
def script_edit(key: str) -> str:
    """The editor: the text in force, its preview from a sample card, the history."""
    from web import db

    shipped = _shipped_or_404(key)
    with db()() as s:
        text, in_force, latest = _text_in_force(s, key, shipped)
        history = _history(s, key)
    saved = request.args.get("saved", type=int)
    message = f"Сохранено как версия {saved}." if saved else None
    problems = []
    if in_force != latest:
        problems.append(
            Problem(
                line=None,
                where=None,
                message=f"Последняя версия {latest} не проходит нынешние проверки, поэтому "
                "операторы видят исходный текст (он и показан). Исправьте и сохраните.",
            )
        )
    return _editor(
        key,
        text=text,
        base=str(latest),
        comment="",
        history=history,
        message=message,
        warnings=problems,
    )


@bp.post("/scripts/<key>")
@role_required("supervisor")
def script_save(key: str) -> Response | tuple[str, int] | str:
    """Preview the posted text, or validate and save it as a new version (nothing on error)."""
    from web import db

    _shipped_or_404(key)
    user = current_user()
    assert user is not None  # role_required
    text = request.form.get("text", "").replace("\r\n", "\n")
    comment = request.form.get("comment", "").strip()
    base = request.form.get("base_version", "")
    preview_only = request.form.get("action") == "preview"
    problems: list[Problem] = []
    if not text.strip():
        problems.append(Problem(line=None, where=None, message="Текст сценария пуст."))
    elif len(text) > MAX_TEXT:
        problems.append(
            Problem(line=None, where=None, message=f"Текст длиннее {MAX_TEXT} символов.")
        )
    if len(comment) > MAX_COMMENT:
        problems.append(
            Problem(
                line=None,
                where=None,
                message=f"Комментарий длиннее {MAX_COMMENT} символов.",
            )
        )
    new_version: int | None = None
    with db().begin() as s:
        latest = _latest_number(s, key)
        if not problems and not preview_only and base != str(latest):
            problems.append(
                Problem(
                    line=None,
                    where=None,
                    message="Пока вы редактировали, сценарий изменил другой пользователь "
                    f"(последняя версия теперь {latest}). Откройте его заново и внесите "
                    "изменения ещё раз.",
                )
            )
        if not problems and preview_only:
            problems = _check(key, text)
        elif not problems:
            try:
                new_version = save_script_version(
                    s, script_id=key, text=text, author=user.username, comment=comment
                )
            except PlaybookInvalid as exc:
                name = f"{key} (new version)"
                problems = [russian_problem(p, name=name) for p in exc.problems]
        history = _history(s, key)
    if new_version is not None:
        audit_access("edit_script", "script", key)  # its own transaction, after ours
        return redirect(url_for("admin.script_edit", key=key, saved=new_version))
    if preview_only and not problems:
        return _editor(key, text=text, base=base, comment=comment, history=history, message=None)
    page = _editor(key, text=text, base=base, comment=comment, history=history, problems=problems)
    return page, 400


@bp.get("/scripts/<key>/versions/<int:version>")
@role_required("supervisor")
def script_version(key: str, version: int) -> str:
    """One version: its text, what changed against the version before it, and "restore"."""
    from web import db, settings

    shipped = _shipped_or_404(key)
    with db()() as s:
        stored = _version_or_404(s, key, version)
        previous = _version_or_404(s, key, version - 1) if stored is not None else None
        latest = _latest_number(s, key)
    text = stored.text if stored is not None else shipped.text
    before = previous.text if previous is not None else shipped.text
    return render_template(
        "admin/scripts_version.html",
        key=key,
        version=version,
        stored=stored,
        at=local_time(stored.created_at, settings().timezone) if stored else "",
        text=text,
        diff=_diff(before, text, version=version) if version > 0 else [],
        is_current=version == latest,
    )


@bp.post("/scripts/<key>/versions/<int:version>/restore")
@role_required("supervisor")
def script_restore(key: str, version: int) -> Response | tuple[str, int]:
    """Save an old version's text as a new version (the history keeps everything)."""
    from web import db

    shipped = _shipped_or_404(key)
    user = current_user()
    assert user is not None  # role_required
    problems: list[Problem] = []
    new_version: int | None = None
    with db().begin() as s:
        stored = _version_or_404(s, key, version)
        text = stored.text if stored is not None else shipped.text
        label = f"версия {version}" if version else "исходная версия"
        comment = f"Восстановлена {label}"
        extra = request.form.get("comment", "").strip()[:MAX_COMMENT]
        if extra:
            comment = f"{comment}: {extra}"
        try:
            new_version = save_script_version(
                s, script_id=key, text=text, author=user.username, comment=comment
            )
        except PlaybookInvalid as exc:
            name = f"{key} (new version)"
            problems = [russian_problem(p, name=name) for p in exc.problems]
        history = _history(s, key)
        latest = _latest_number(s, key)
    if new_version is not None:
        audit_access("edit_script", "script", key)
        return redirect(url_for("admin.script_edit", key=key, saved=new_version))
    page = _editor(
        key,
        text=text,
        base=str(latest),
        comment=comment,
        history=history,
        problems=[
            Problem(
                line=None,
                where=None,
                message=f"Версию {version} нельзя восстановить: она не проходит проверку.",
            ),
            *problems,
        ],
    )
    return page, 400


# --- helpers -------------------------------------------------------------------------------


def _shipped_or_404(key: str) -> Source:
    source = read_sources(SCRIPTS_DIR).get(key)
    if source is None:
        abort(404)
    return source


def _version_or_404(session: Session, key: str, version: int) -> StoredVersion | None:
    """Return a stored version; None for version 0, the shipped file."""
    if version == 0:
        return None
    stored = get_version(session, script_id=key, version=version)
    if stored is None:
        abort(404)
    return stored


def _latest_number(session: Session, key: str) -> int:
    latest = session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.script_id == key)
    )
    return int(latest or 0)


def _text_in_force(session: Session, key: str, shipped: Source) -> tuple[str, int, int]:
    """Return the text operators get now, its version (0: the shipped file) and the latest one.

    The latest stored version is in force unless it fails today's checks (then the file is).
    """
    source = current_sources(session).get(key, shipped)
    latest = _latest_number(session, key)
    stored = get_version(session, script_id=key, version=latest) if latest else None
    in_force = latest if stored is not None and stored.text == source.text else 0
    return source.text, in_force, latest


def _history(session: Session, key: str) -> list[dict[str, Any]]:
    from web import settings

    tz = settings().timezone
    rows = [
        {
            "version": v.version,
            "author": v.author,
            "at": local_time(v.created_at, tz),
            "comment": v.comment,
        }
        for v in list_versions(session, script_id=key)
    ]
    rows.append({"version": 0, "author": "", "at": "", "comment": "Исходная версия (из поставки)"})
    return rows


def _check(key: str, text: str) -> list[Problem]:
    """Return the problems of the text on its own (the preview; saving checks the rest too)."""
    name = f"{key} (new version)"
    _, problems = parse_source(Source(id=key, name=name, text=text))
    return [russian_problem(p, name=name) for p in problems]


def _editor(
    key: str,
    *,
    text: str,
    base: str,
    comment: str,
    history: list[dict[str, Any]],
    message: str | None = None,
    problems: list[Problem] | None = None,
    warnings: list[Problem] | None = None,
) -> str:
    problems = problems or []
    preview = None if problems else _preview(key, text)
    return render_template(
        "admin/scripts_edit.html",
        key=key,
        text=text,
        base=base,
        comment=comment,
        history=history,
        message=message,
        problems=problems,
        warnings=warnings or [],
        preview=preview,
        placeholders=[(p, PLACEHOLDER_LABELS.get(p, p)) for p in sorted(PLACEHOLDERS)],
        sample=SAMPLE_DESCRIPTION,
        max_comment=MAX_COMMENT,
    )


def _preview(key: str, text: str) -> dict[str, Any] | None:
    """Return the text filled from the sample card as the panel would say it, line by line."""
    parsed, problems = parse_source(Source(id=key, name=key, text=text))
    if problems or parsed is None:
        return None
    if isinstance(parsed, Script):
        values = situation_for(card=SAMPLE_CARD, call_kind=parsed.situation).placeholder_values()
        return {
            "title": parsed.title,
            "situation": SITUATION_LABELS.get(parsed.situation, parsed.situation),
            "groups": [{"title": None, "lines": [_said(line, values) for line in parsed.lines]}],
        }
    values = situation_for(card=SAMPLE_CARD, call_kind="inbound").placeholder_values()
    return {
        "title": "Ответы на возражения",
        "situation": None,
        "groups": [
            {
                "title": f"{o.title} (клавиша {o.shortcut})",
                "lines": [_said(answer, values) for answer in o.answers],
            }
            for o in parsed
        ],
    }


def _said(line: Line, values: dict[str, str]) -> dict[str, Any]:
    text = fill(line.text, values=values) if placeholders_in(line.text) <= values.keys() else None
    return {
        "text": text if text is not None else line.fallback or "",
        "fallback": line.fallback if placeholders_in(line.text) else None,
        "marketing": line.marketing,
        "segments": [SEGMENT_LABELS.get(s, s) for s in line.segments],
    }


def _diff(before: str, after: str, *, version: int) -> list[dict[str, str]]:
    """Return the unified diff of two versions as rows with a kind for the page to colour."""
    rows = []
    previous = f"версия {version - 1}" if version > 1 else "исходная версия"
    for row in difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        fromfile=previous,
        tofile=f"версия {version}",
        lineterm="",
    ):
        if row.startswith(("---", "+++")):
            kind = "file"
        elif row.startswith("@@"):
            kind = "hunk"
        elif row.startswith("+"):
            kind = "added"
        elif row.startswith("-"):
            kind = "removed"
        else:
            kind = "same"
        rows.append({"kind": kind, "text": row})
    return rows
