"""Tables of the 152-ФЗ hygiene part of the store (registered on ``models.Base``).

``audit_log``: who opened which patient card, transcript or recording and when, plus the
privacy actions themselves ("forget me", retention runs). A subject is named by its kind and id;
a phone number is never stored here, only its SHA-256 (as the do-not-call list keeps it).
``transcript_requeues``: the maintenance sweep's count of re-queued transcription jobs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base


class AuditEntry(Base):
    """One access to personal data, or one privacy action, by a user (or the system)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # The supervisor page reads a period newest first, optionally for one user or kind.
        Index("ix_audit_log_at_id", "at", "id"),
        Index("ix_audit_log_username_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    # The username, not a foreign key: the log must outlive a deactivated or deleted account.
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # "open_card", "play_recording", "forget"…
    subject_kind: Mapped[str] = mapped_column(String(32))  # "patient", "call", "phone_hash"…
    subject_id: Mapped[str] = mapped_column(String(64))
    # What a privacy action did (counts), never personal data.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TranscriptRequeue(Base):
    """How often the maintenance sweep queued a call's transcription again, and when last.

    One row per call that needed it; the sweep never re-queues a call more than
    ``TRANSCRIBE_MAX_REQUEUES`` times, nor twice within ``TRANSCRIBE_REQUEUE_AFTER``.
    """

    __tablename__ = "transcript_requeues"

    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    requeues: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime]
