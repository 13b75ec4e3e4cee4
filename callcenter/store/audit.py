"""Reads and writes of the audit log (who opened which personal data, and when).

The caller owns the transaction, as in ``queries``: ``web.audit.audit_access`` wraps
``record_access`` in its own short unit of work so a page never loses its audit line to a
rollback of its own work, and a failing audit write never breaks the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.errors import CallcenterError
from callcenter.store.models_audit import AuditEntry

#: Column widths of ``audit_log`` (longer values are refused, never silently cut).
MAX_USER = 64
MAX_ACTION = 32
MAX_SUBJECT_KIND = 32
MAX_SUBJECT_ID = 64
#: The most entries one page of the log may ask for.
MAX_LIMIT = 1000


class BadAuditEntry(CallcenterError):
    """An audit entry or query that cannot be stored or run as given."""


@dataclass(frozen=True, slots=True)
class AccessView:
    """One audit log entry as pages and commands show it."""

    id: int
    at: datetime
    user: str
    action: str
    subject_kind: str
    subject_id: str
    detail: dict[str, Any] | None


def record_access(
    session: Session,
    *,
    user: str,
    action: str,
    subject_kind: str,
    subject_id: str | int,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """Add one audit entry; return its id.

    :raises BadAuditEntry: an empty or over-long field, or a naive ``at``.
    """
    subject = str(subject_id)
    for name, value, limit in (
        ("user", user, MAX_USER),
        ("action", action, MAX_ACTION),
        ("subject_kind", subject_kind, MAX_SUBJECT_KIND),
        ("subject_id", subject, MAX_SUBJECT_ID),
    ):
        if not value or not value.strip():
            raise BadAuditEntry(f"audit {name} must not be empty")
        if len(value) > limit:
            raise BadAuditEntry(f"audit {name} is longer than {limit} characters: {value[:80]!r}")
    _require_aware(at, "at")
    entry = AuditEntry(
        at=at,
        username=user,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject,
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry.id


def list_access(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    user: str | None = None,
    subject_kind: str | None = None,
    limit: int,
    before_id: int | None = None,
) -> list[AccessView]:
    """Return entries with ``since <= at < until``, newest first, at most ``limit`` of them.

    ``before_id`` continues a listing after its last entry (keyset paging: ids grow with time).

    :raises BadAuditEntry: a naive or reversed period, or a limit outside 1..MAX_LIMIT.
    """
    _require_aware(since, "since")
    _require_aware(until, "until")
    if until <= since:
        raise BadAuditEntry("the period must end after it starts")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadAuditEntry(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    query = select(AuditEntry).where(AuditEntry.at >= since, AuditEntry.at < until)
    if user:
        query = query.where(AuditEntry.username == user)
    if subject_kind:
        query = query.where(AuditEntry.subject_kind == subject_kind)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    query = query.order_by(AuditEntry.id.desc()).limit(limit)
    return [_view(entry) for entry in session.scalars(query)]


def audit_users(session: Session) -> list[str]:
    """Return every username that appears in the log, sorted (the page's filter choices)."""
    query = select(AuditEntry.username).distinct().order_by(AuditEntry.username)
    return list(session.scalars(query))


def _view(entry: AuditEntry) -> AccessView:
    return AccessView(
        id=entry.id,
        at=entry.at,
        user=entry.username,
        action=entry.action,
        subject_kind=entry.subject_kind,
        subject_id=entry.subject_id,
        detail=entry.detail,
    )


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise BadAuditEntry(f"{name} must be a timezone-aware datetime, got {value!r}")
