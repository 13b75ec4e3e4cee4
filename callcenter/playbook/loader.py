"""Load the playbook's TOML files and validate them; every problem names its file and line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.playbook.errors import PlaybookInvalid
from callcenter.playbook.model import (
    OBJECTION_KEYS,
    OBJECTIONS_ID,
    SEGMENTS,
    SITUATION_KINDS,
    Line,
    Objection,
    Playbook,
    Script,
)
from callcenter.playbook.text import check_template, marketing_word, placeholders_in

#: The scripts shipped with the package; a clinic's edits are stored versions on top of them.
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"

_SCRIPT_KEYS = frozenset({"id", "title", "situation", "lines"})
_OBJECTIONS_KEYS = frozenset({"id", "objections"})
_OBJECTION_KEYS = frozenset({"key", "title", "shortcut", "answers"})
_LINE_KEYS = frozenset({"text", "fallback", "marketing", "segments"})
_TOML_ERROR_LINE = re.compile(r"at line (\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One playbook document: its script id, where it came from, and its TOML text."""

    id: str
    name: str  # a file path, or a stored version's description, for error messages
    text: str


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Load and validate every ``*.toml`` in ``path`` (default: the shipped scripts).

    :raises PlaybookInvalid: listing every problem in every file, each with file and line.
    """
    directory = Path(path) if path is not None else SCRIPTS_DIR
    return build_playbook(read_sources(directory).values(), where=str(directory))


def read_sources(directory: Path = SCRIPTS_DIR) -> dict[str, Source]:
    """Return the directory's playbook documents by script id (the file name's stem)."""
    if not directory.is_dir():
        raise PlaybookInvalid([f"{directory}: not a directory"])
    return {
        path.stem: Source(id=path.stem, name=str(path), text=path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.toml"))
    }


def build_playbook(sources: Iterable[Source], *, where: str = "playbook") -> Playbook:
    """Validate the documents together and return the playbook they make.

    :raises PlaybookInvalid: a document is malformed, a situation has no script or two.
    """
    problems: list[str] = []
    scripts: dict[str, Script] = {}
    objections: tuple[Objection, ...] | None = None
    texts: dict[str, str] = {}
    for source in sources:
        texts[source.id] = source.text
        parsed, found = parse_source(source)
        problems.extend(found)
        if isinstance(parsed, Script):
            other = scripts.get(parsed.situation)
            if other is not None:
                line = _Doc(source).key_line("situation")
                problems.append(
                    f"{source.name}:{line}: situation '{parsed.situation}' already has "
                    f"script '{other.id}' ({other.source})"
                )
            else:
                scripts[parsed.situation] = parsed
        elif parsed is not None:
            objections = parsed
    if OBJECTIONS_ID not in texts:
        problems.append(f"{where}: no objection answers ({OBJECTIONS_ID}.toml)")
    if not problems:
        problems.extend(
            f"{where}: no script for situation '{kind}'"
            for kind in SITUATION_KINDS
            if kind not in scripts
        )
    if problems or objections is None:
        raise PlaybookInvalid(problems)
    return Playbook(scripts=scripts, objections=objections, texts=texts)


def check_source(source: Source) -> list[str]:
    """Return the problems of one document on its own (empty when it is valid)."""
    return parse_source(source)[1]


def parse_source(source: Source) -> tuple[Script | tuple[Objection, ...] | None, list[str]]:
    """Parse one document into a script or the objection answers, with its problems."""
    try:
        data = tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_ERROR_LINE.search(str(exc))
        line = f":{match.group(1)}" if match else ""
        return None, [f"{source.name}{line}: not valid TOML: {exc}"]
    doc = _Doc(source)
    parsed: Script | tuple[Objection, ...] | None
    if source.id == OBJECTIONS_ID:
        parsed = _parse_objections(data, doc)
    else:
        parsed = _parse_script(data, doc)
    if doc.problems:
        return None, doc.problems
    return parsed, []


@dataclass(slots=True)
class _Doc:
    """A document being validated: finds lines for problems and collects them."""

    source: Source
    problems: list[str] = field(default_factory=list)
    _lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = self.source.text.splitlines()

    def problem(self, message: str, *, line: int) -> None:
        self.problems.append(f"{self.source.name}:{line}: {message}")

    def key_line(self, key: str, *, start: int = 1) -> int:
        """Return the line that sets ``key`` at or after ``start`` (``start`` if none does)."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        return self._first(lambda text: bool(pattern.match(text)), start=start) or start

    def find(self, needle: str, *, start: int = 1) -> int:
        """Return the first line at or after ``start`` containing ``needle``'s first line."""
        first = needle.splitlines()[0] if needle.strip() else needle
        return self._first(lambda text: first in text, start=start) or start

    def header_line(self, table: str, *, index: int) -> int:
        """Return the line of the ``index``-th ``[[table]]`` header (1 if there are fewer)."""
        pattern = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        seen = 0
        for number, text in enumerate(self._lines, start=1):
            if pattern.match(text):
                if seen == index:
                    return number
                seen += 1
        return 1

    def _first(self, predicate: Callable[[str], bool], *, start: int) -> int | None:
        for number in range(start, len(self._lines) + 1):
            if predicate(self._lines[number - 1]):
                return number
        return None


def _parse_script(data: dict[str, Any], doc: _Doc) -> Script | None:
    _check_keys(data, allowed=_SCRIPT_KEYS, what="a script", doc=doc, start=1)
    script_id = _string(data, "id", doc=doc, start=1)
    if script_id is not None and script_id != doc.source.id:
        doc.problem(
            f"id '{script_id}' differs from the script's name '{doc.source.id}'",
            line=doc.key_line("id"),
        )
    title = _string(data, "title", doc=doc, start=1)
    situation = _string(data, "situation", doc=doc, start=1)
    if situation is not None and situation not in SITUATION_KINDS:
        doc.problem(
            f"unknown situation '{situation}' (known: {', '.join(SITUATION_KINDS)})",
            line=doc.key_line("situation"),
        )
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        doc.problem("a script needs [[lines]]", line=doc.key_line("lines"))
        return None
    lines = [
        _parse_line(raw, doc=doc, start=doc.header_line("lines", index=index), what="a line")
        for index, raw in enumerate(raw_lines)
    ]
    if all(line is not None and not _for_everyone(line) for line in lines):
        doc.problem(
            "every line is marketing or limited to segments: some patients would hear nothing",
            line=doc.header_line("lines", index=0),
        )
    if doc.problems or title is None or situation is None:
        return None
    return Script(
        id=doc.source.id,
        title=title,
        situation=situation,
        lines=tuple(line for line in lines if line is not None),
        source=doc.source.name,
    )


def _parse_objections(data: dict[str, Any], doc: _Doc) -> tuple[Objection, ...] | None:
    _check_keys(data, allowed=_OBJECTIONS_KEYS, what="the objections file", doc=doc, start=1)
    file_id = _string(data, "id", doc=doc, start=1)
    if file_id is not None and file_id != OBJECTIONS_ID:
        doc.problem(f"id must be '{OBJECTIONS_ID}'", line=doc.key_line("id"))
    raw_objections = data.get("objections")
    if not isinstance(raw_objections, list) or not raw_objections:
        doc.problem("the objections file needs [[objections]]", line=1)
        return None
    objections: dict[str, Objection] = {}
    shortcuts: dict[str, str] = {}
    answer_index = 0
    for index, raw in enumerate(raw_objections):
        start = doc.header_line("objections", index=index)
        if not isinstance(raw, dict):
            doc.problem("an objection must be a [[objections]] table", line=start)
            continue
        _check_keys(raw, allowed=_OBJECTION_KEYS, what="an objection", doc=doc, start=start)
        key = _string(raw, "key", doc=doc, start=start)
        title = _string(raw, "title", doc=doc, start=start)
        shortcut = _string(raw, "shortcut", doc=doc, start=start)
        if key is not None and key not in OBJECTION_KEYS:
            doc.problem(
                f"unknown objection '{key}' (known: {', '.join(OBJECTION_KEYS)})",
                line=doc.key_line("key", start=start),
            )
        elif key is not None and key in objections:
            doc.problem(f"objection '{key}' is answered twice", line=start)
        if shortcut is not None and shortcut in shortcuts:
            doc.problem(
                f"shortcut '{shortcut}' is already taken by '{shortcuts[shortcut]}'",
                line=doc.key_line("shortcut", start=start),
            )
        raw_answers = raw.get("answers")
        if not isinstance(raw_answers, list) or not raw_answers:
            doc.problem("an objection needs [[objections.answers]]", line=start)
            continue
        answers = []
        for raw_answer in raw_answers:
            answer_start = doc.header_line("objections.answers", index=answer_index)
            answer_index += 1
            answers.append(_parse_line(raw_answer, doc=doc, start=answer_start, what="an answer"))
        if all(answer is not None and not _for_everyone(answer) for answer in answers):
            doc.problem(
                "every answer is marketing or limited to segments: add one for everyone",
                line=start,
            )
        if key is None or title is None or shortcut is None or None in answers:
            continue
        shortcuts[shortcut] = key
        objections[key] = Objection(
            key=key,
            title=title,
            shortcut=shortcut,
            answers=tuple(answer for answer in answers if answer is not None),
        )
    missing = [key for key in OBJECTION_KEYS if key not in objections]
    if missing and not doc.problems:
        doc.problem(f"no answer to {', '.join(missing)}", line=1)
    return tuple(objections[key] for key in OBJECTION_KEYS if key in objections)


def _parse_line(raw: Any, *, doc: _Doc, start: int, what: str) -> Line | None:
    if not isinstance(raw, dict):
        doc.problem(f'{what} must be a table with text = "…"', line=start)
        return None
    before = len(doc.problems)
    _check_keys(raw, allowed=_LINE_KEYS, what=what, doc=doc, start=start)
    text = _string(raw, "text", doc=doc, start=start)
    fallback = _string(raw, "fallback", doc=doc, start=start, required=False)
    marketing = raw.get("marketing", False)
    if not isinstance(marketing, bool):
        doc.problem("marketing must be true or false", line=doc.key_line("marketing", start=start))
    segments = raw.get("segments", [])
    if not isinstance(segments, list) or not all(s in SEGMENTS for s in segments):
        doc.problem(
            f"segments must be a list of {', '.join(sorted(SEGMENTS))}",
            line=doc.key_line("segments", start=start),
        )
    if marketing is False:
        offer = next((w for t in (text, fallback) if t and (w := marketing_word(t))), None)
        if offer is not None:
            doc.problem(
                f"'{offer}' makes this an offer: mark it marketing = true (said only with"
                " the patient's marketing consent)",
                line=doc.find(offer, start=start),
            )
    for template in (text, fallback):
        for problem in check_template(template or ""):
            doc.problem(problem.message, line=doc.find(problem.needle, start=start))
    if text is not None and placeholders_in(text) and fallback is None:
        doc.problem(
            'a line with placeholders needs a fallback = "…" for a card that lacks them',
            line=doc.key_line("text", start=start),
        )
    if fallback is not None and placeholders_in(fallback):
        doc.problem(
            "a fallback must not use placeholders: it is what is said when they are missing",
            line=doc.key_line("fallback", start=start),
        )
    if len(doc.problems) > before or text is None:
        return None
    return Line(
        text=text.strip(),
        fallback=fallback.strip() if fallback is not None else None,
        marketing=marketing,
        segments=tuple(segments),
    )


def _for_everyone(line: Line) -> bool:
    """Return True when the line is said to every patient, whatever their consent or segment."""
    return not line.marketing and not line.segments


def _check_keys(
    data: Mapping[str, Any], *, allowed: frozenset[str], what: str, doc: _Doc, start: int
) -> None:
    # An unknown key is most often a typo, and a mistyped «marketing» would let an offer through.
    for key in data:
        if key not in allowed:
            doc.problem(
                f"unknown field '{key}' in {what} (allowed: {', '.join(sorted(allowed))})",
                line=doc.key_line(key, start=start),
            )


def _string(
    data: Mapping[str, Any], key: str, *, doc: _Doc, start: int, required: bool = True
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            doc.problem(f"missing required field '{key}'", line=start)
        return None
    if not isinstance(value, str) or not value.strip():
        doc.problem(f"'{key}' must be non-empty text", line=doc.key_line(key, start=start))
        return None
    return value
