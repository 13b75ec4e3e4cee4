"""The supervisor's call review: tag corrections, kept apart from the tagger's tags; task history.

The caller owns the transaction. A correction adds a tag the tagger missed or removes one it
got wrong; the tagger's rows in ``call_tags`` stay as they were, so comparing them with the
corrected tags later measures the tagger. The tags a call "has" are the tagger's with every
correction applied in order (``apply_corrections``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.errors import CallcenterError
from callcenter.speech.tagger import TAGS
from callcenter.store import queries
from callcenter.store.models import Task, TaskEvent
from callcenter.store.models_corrections import TagCorrection
from callcenter.store.speech import SOURCE_TAGGER, list_tags

ADD = "add"
REMOVE = "remove"


class BadTagCorrection(CallcenterError):
    """A correction that cannot be stored: an unknown tag or call, a tag both added and removed."""


@dataclass(frozen=True, slots=True)
class CorrectionView:
    """One stored correction, as the call page lists it."""

    tag: str
    action: str  # "add" | "remove"
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TagState:
    """A call's tags: the tagger's, the corrected ones, and what the corrections changed."""

    tagger: tuple[str, ...]
    effective: tuple[str, ...]
    corrections: tuple[CorrectionView, ...]

    @property
    def added(self) -> tuple[str, ...]:
        """Return the tags supervisors added that the tagger did not give."""
        return tuple(t for t in self.effective if t not in self.tagger)

    @property
    def removed(self) -> tuple[str, ...]:
        """Return the tagger's tags that supervisors removed."""
        return tuple(t for t in self.tagger if t not in self.effective)


def apply_corrections(tagger: Iterable[str], corrections: Iterable[CorrectionView]) -> list[str]:
    """Return the tags after applying the corrections in order (the latest word on a tag wins).

    >>> from datetime import UTC, datetime
    >>> at = datetime(2026, 11, 23, tzinfo=UTC)
    >>> apply_corrections(
    ...     ["booked", "price_objection"],
    ...     [CorrectionView("price_objection", "remove", "vera", at),
    ...      CorrectionView("thinking", "add", "vera", at)],
    ... )
    ['booked', 'thinking']
    """
    tags = set(tagger)
    for correction in corrections:
        if correction.action == ADD:
            tags.add(correction.tag)
        else:
            tags.discard(correction.tag)
    return sorted(tags)


def list_corrections(session: Session, *, linkedid: str) -> list[CorrectionView]:
    """Return the call's corrections, oldest first."""
    rows = session.scalars(
        select(TagCorrection).where(TagCorrection.linkedid == linkedid).order_by(TagCorrection.id)
    )
    return [CorrectionView(tag=r.tag, action=r.action, by=r.by, at=r.at) for r in rows]


def tag_state(session: Session, *, linkedid: str) -> TagState:
    """Return the call's tags: the tagger's, the corrections, and the result."""
    tagger = list_tags(session, linkedid=linkedid, source=SOURCE_TAGGER)
    corrections = list_corrections(session, linkedid=linkedid)
    return TagState(
        tagger=tuple(tagger),
        effective=tuple(apply_corrections(tagger, corrections)),
        corrections=tuple(corrections),
    )


def correct_tags(
    session: Session,
    *,
    linkedid: str,
    add: Sequence[str],
    remove: Sequence[str],
    by: str,
    now: datetime,
) -> list[CorrectionView]:
    """Store a supervisor's additions and removals; return the ones that changed something.

    Adding a tag the call already has, or removing one it lacks, stores nothing.

    :raises BadTagCorrection: an unknown tag, a tag both added and removed, no author, or a call
        that is not stored.
    """
    unknown = sorted({*add, *remove} - set(TAGS))
    if unknown:
        raise BadTagCorrection(f"unknown tag(s): {', '.join(unknown)}")
    both = sorted(set(add) & set(remove))
    if both:
        raise BadTagCorrection(f"tag(s) both added and removed: {', '.join(both)}")
    if not by.strip():
        raise BadTagCorrection("a correction needs the supervisor's name")
    if queries.get_call(session, linkedid=linkedid) is None:
        raise BadTagCorrection(f"no stored call {linkedid!r}")
    current = set(tag_state(session, linkedid=linkedid).effective)
    changes = [(tag, ADD) for tag in sorted(set(add)) if tag not in current]
    changes += [(tag, REMOVE) for tag in sorted(set(remove)) if tag in current]
    stored = []
    for tag, action in changes:
        session.add(TagCorrection(linkedid=linkedid, tag=tag, action=action, by=by, at=now))
        stored.append(CorrectionView(tag=tag, action=action, by=by, at=now))
    session.flush()
    return stored


@dataclass(frozen=True, slots=True)
class CallTaskEvent:
    """Something a call did to a callback task (opened it, another drop, closed it)."""

    at: datetime
    kind: str  # "opened" | "repeat_drop" | "closed"
    task_id: int
    reason: str
    detail: str | None


def call_task_events(session: Session, *, linkedid: str) -> list[CallTaskEvent]:
    """Return the task events this call caused, oldest first (the call page's timeline)."""
    rows = session.execute(
        select(TaskEvent.at, TaskEvent.kind, Task.id, Task.reason, TaskEvent.detail)
        .join(Task, Task.id == TaskEvent.task_id)
        .where(TaskEvent.call_linkedid == linkedid)
        .order_by(TaskEvent.at, TaskEvent.id)
    )
    return [
        CallTaskEvent(at=at, kind=kind, task_id=task_id, reason=reason, detail=detail)
        for at, kind, task_id, reason, detail in rows
    ]
