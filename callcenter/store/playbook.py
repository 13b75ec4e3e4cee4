"""Stored versions of the playbook's scripts, and the playbook they make. The caller owns the
transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.playbook.errors import PlaybookInvalid
from callcenter.playbook.loader import (
    SCRIPTS_DIR,
    Source,
    build_playbook,
    check_source,
    read_sources,
)
from callcenter.playbook.model import Playbook
from callcenter.store.db import lock_key
from callcenter.store.models_playbook import ScriptVersion

log = logging.getLogger(__name__)

_SCRIPT_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredVersion:
    """One saved version of a script, as the history page lists it."""

    script_id: str
    version: int
    text: str
    author: str
    created_at: datetime
    comment: str


def save_script_version(
    session: Session,
    *,
    script_id: str,
    text: str,
    author: str,
    comment: str,
    now: datetime | None = None,
    scripts_dir: Path = SCRIPTS_DIR,
) -> int:
    """Validate ``text`` as the new version of ``script_id``, store it and return its number.

    :raises PlaybookInvalid: the text (or the playbook it would make) has problems, each with
        its line; nothing is stored.
    """
    name = f"{script_id} (new version)"
    problems: list[str] = []
    if not _SCRIPT_ID.fullmatch(script_id):
        problems.append(f"{name}: a script id is lowercase latin letters, digits and '_'")
    if not author.strip():
        problems.append(f"{name}: the author is required")
    if problems:
        raise PlaybookInvalid(problems)
    lock_key(session, key=f"playbook:{script_id}")
    new = Source(id=script_id, name=name, text=text)
    problems = check_source(new)
    if not problems:
        # Valid on its own is not enough: it must still fit the rest (one script per situation).
        sources = _current_sources(session, scripts_dir=scripts_dir)
        sources[script_id] = new
        try:
            build_playbook(sources.values(), where="playbook")
        except PlaybookInvalid as exc:
            problems = list(exc.problems)
    if problems:
        raise PlaybookInvalid(problems)
    latest = session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.script_id == script_id)
    )
    version = (latest or 0) + 1
    session.add(
        ScriptVersion(
            script_id=script_id,
            version=version,
            text=text,
            author=author.strip(),
            created_at=now or datetime.now(UTC),
            comment=comment.strip(),
        )
    )
    session.flush()
    return version


def list_versions(session: Session, *, script_id: str | None = None) -> list[StoredVersion]:
    """Return the stored versions, of one script or all, newest first within each script."""
    query = select(ScriptVersion).order_by(ScriptVersion.script_id, ScriptVersion.version.desc())
    if script_id is not None:
        query = query.where(ScriptVersion.script_id == script_id)
    return [_stored(row) for row in session.scalars(query)]


def get_version(session: Session, *, script_id: str, version: int) -> StoredVersion | None:
    """Return one stored version, or None when there is no such version."""
    row = session.scalar(
        select(ScriptVersion).where(
            ScriptVersion.script_id == script_id, ScriptVersion.version == version
        )
    )
    return _stored(row) if row is not None else None


def current_playbook(session: Session, *, scripts_dir: Path = SCRIPTS_DIR) -> Playbook:
    """Return the playbook: the shipped files overlaid with the latest stored version of each.

    :raises PlaybookInvalid: the result is not a valid playbook.
    """
    return build_playbook(_current_sources(session, scripts_dir=scripts_dir).values())


def current_sources(session: Session, *, scripts_dir: Path = SCRIPTS_DIR) -> dict[str, Source]:
    """Return the documents in force by script id: the latest valid stored version, else the file.

    A document's ``name`` says which: the file's path, or «<id> version <n> by <author>».
    """
    return _current_sources(session, scripts_dir=scripts_dir)


def _current_sources(session: Session, *, scripts_dir: Path) -> dict[str, Source]:
    sources = read_sources(scripts_dir)
    latest = (
        select(ScriptVersion.script_id, func.max(ScriptVersion.version).label("version"))
        .group_by(ScriptVersion.script_id)
        .subquery()
    )
    rows = session.scalars(
        select(ScriptVersion).join(
            latest,
            (ScriptVersion.script_id == latest.c.script_id)
            & (ScriptVersion.version == latest.c.version),
        )
    )
    for row in rows:
        source = Source(
            id=row.script_id,
            name=f"{row.script_id} version {row.version} by {row.author}",
            text=row.text,
        )
        problems = check_source(source)
        if problems:
            # Valid when saved, so the rules changed since; the shipped file keeps the panel up.
            log.warning("ignoring stored script %s: %s", source.name, "; ".join(problems))
            continue
        sources[row.script_id] = source
    return sources


def _stored(row: ScriptVersion) -> StoredVersion:
    return StoredVersion(
        script_id=row.script_id,
        version=row.version,
        text=row.text,
        author=row.author,
        created_at=row.created_at,
        comment=row.comment,
    )
