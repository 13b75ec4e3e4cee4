"""Tables of the speech part of the store (registered on ``models.Base``).

``transcripts``: one row per call (by linkedid) whose recording was queued for transcription:
its status, the error of a failed job, the text, the duration and the words with their
timings (JSON: ``[{"word", "start", "end", "conf"}, …]``, read whole by the supervisor page).
``call_tags``: the outcome tags of a call, from the tagger or set by a supervisor.
``phone_flags``: numbers flagged from a call, e.g. ``wrong_number``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base

TRANSCRIPT_STATUSES = ("queued", "done", "no_audio", "failed")
TAG_SOURCES = ("tagger", "supervisor")


class Transcript(Base):
    """The transcription of one call's recording."""

    __tablename__ = "transcripts"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'done', 'no_audio', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: a job may be queued for a call another process is still storing.
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    recording: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float | None] = mapped_column(Float)
    words: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class CallTag(Base):
    """One outcome tag of a call."""

    __tablename__ = "call_tags"
    __table_args__ = (
        CheckConstraint("source IN ('tagger', 'supervisor')", name="source"),
        UniqueConstraint("linkedid", "tag", "source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class PhoneFlag(Base):
    """A number flagged from a call (``wrong_number``): once per number and flag."""

    __tablename__ = "phone_flags"
    __table_args__ = (UniqueConstraint("phone", "flag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    flag: Mapped[str] = mapped_column(String(32))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
