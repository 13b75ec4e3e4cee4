"""Reads and writes of the transcription re-queue sweep (``callcenter.maintenance``).

A recorded call needs its transcription queued again when, some minutes after it ended, it has
no transcript row (the job was lost: Huey's storage wiped, the listener could not queue it), or
its row is ``failed``, or still ``queued`` (the worker died mid-job). Each call is re-queued at
most ``max_requeues`` times and never twice within the waiting time; the count is kept in
``transcript_requeues`` and taken under a row lock, so two sweeps at once queue a call once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.store.models import Call
from callcenter.store.models_audit import TranscriptRequeue
from callcenter.store.models_speech import Transcript

#: Transcript states the sweep retries ("done" and "no_audio" are final).
RETRIED_STATES = ("failed", "queued")


def requeue_candidates(
    session: Session, *, ended_before: datetime, max_requeues: int, limit: int
) -> list[str]:
    """Return linkedids of recorded calls whose transcription should be queued again, oldest
    first: ended before ``ended_before``, unfinished, re-queued fewer than ``max_requeues``
    times and not since ``ended_before``."""
    query = (
        select(Call.linkedid)
        .outerjoin(Transcript, Transcript.linkedid == Call.linkedid)
        .outerjoin(TranscriptRequeue, TranscriptRequeue.linkedid == Call.linkedid)
        .where(
            Call.recording.is_not(None),
            Call.recording != "",
            Call.ended_at < ended_before,
            or_(Transcript.id.is_(None), Transcript.status.in_(RETRIED_STATES)),
            func.coalesce(TranscriptRequeue.requeues, 0) < max_requeues,
            or_(TranscriptRequeue.last_at.is_(None), TranscriptRequeue.last_at < ended_before),
        )
        .order_by(Call.ended_at, Call.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim_requeue(
    session: Session,
    *,
    linkedid: str,
    now: datetime,
    not_since: datetime,
    max_requeues: int,
) -> int | None:
    """Count one re-queue of the call; return the new count, or None when another sweep got
    there first (re-queued since ``not_since``) or the limit is reached."""
    row = session.scalar(
        select(TranscriptRequeue)
        .where(TranscriptRequeue.linkedid == linkedid)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        try:
            with session.begin_nested():
                session.add(TranscriptRequeue(linkedid=linkedid, requeues=1, last_at=now))
            return 1
        except IntegrityError:
            # Another sweep inserted it first: it re-queued the call.
            return None
    if row.requeues >= max_requeues or row.last_at >= not_since:
        return None
    row.requeues += 1
    row.last_at = now
    session.flush()
    return row.requeues


def requeue_count(session: Session, *, linkedid: str) -> int:
    """Return how often the sweep re-queued the call (0 if never)."""
    row = session.get(TranscriptRequeue, linkedid)
    return 0 if row is None else row.requeues
