"""Tables: calls and their agent legs, callback tasks with their history, AMI link gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints so Alembic migrations can refer to (and drop) them on both back-ends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OPEN_TASK_WHERE = text("status = 'open'")


class UtcDateTime(TypeDecorator[datetime]):
    """Store timezone-aware datetimes; always read them back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and store everything as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime (SQLite hands back naive ones)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}


class Call(Base):
    """One finished call, as the tracker reported it."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))
    disposition: Mapped[str] = mapped_column(String(24))
    caller: Mapped[str | None] = mapped_column(String)  # raw, as Asterisk gave it
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164; None if withheld
    caller_name: Mapped[str | None] = mapped_column(String)
    did: Mapped[str | None] = mapped_column(String(32))
    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(32))
    agent_name: Mapped[str | None] = mapped_column(String)
    last_agent: Mapped[str | None] = mapped_column(String(32))
    wait_s: Mapped[float] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float)
    queue_wait_s: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime]
    # The AMI timestamps verbatim: the task rules compare them, free of datetime rounding.
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float] = mapped_column(Float)
    recording: Mapped[str | None] = mapped_column(String)
    callback_task: Mapped[str | None] = mapped_column(String(32))
    style: Mapped[str | None] = mapped_column(String(24))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    transfers: Mapped[list[str]] = mapped_column(JSON, default=list)

    legs: Mapped[list[CallLeg]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallLeg.id"
    )


class CallLeg(Base):
    """One administrator's part in a call."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    agent: Mapped[str] = mapped_column(String(32))
    agent_name: Mapped[str | None] = mapped_column(String)
    rang_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(24))

    call: Mapped[Call] = relationship(back_populates="legs")


class Task(Base):
    """A callback task: call this patient back."""

    __tablename__ = "tasks"
    __table_args__ = (
        # refused: the patient's consent does not allow the call (``close_reason`` says why).
        CheckConstraint("status IN ('open', 'closed', 'refused')", name="status"),
        CheckConstraint("kind IN ('service', 'marketing')", name="kind"),
        # One open task per number, enforced by the database on SQLite and PostgreSQL alike.
        Index(
            "uq_tasks_open_phone",
            "phone",
            unique=True,
            sqlite_where=OPEN_TASK_WHERE,
            postgresql_where=OPEN_TASK_WHERE,
        ),
        Index("ix_tasks_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None]
    first_call_linkedid: Mapped[str | None] = mapped_column(ForeignKey("calls.linkedid"))
    dropped_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The latest dropped call's start (AMI ts): a contact must end after it to close the task.
    last_drop_started_ts: Mapped[float | None] = mapped_column(Float)
    patient_id: Mapped[int | None] = mapped_column(Integer)
    # An operator took the task: the dialer rings only this extension for it (operator first).
    assigned_extension: Mapped[str | None] = mapped_column(String(32))

    events: Mapped[list[TaskEvent]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskEvent.id"
    )
    attempt_rows: Mapped[list[TaskAttempt]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskAttempt.id"
    )


class TaskEvent(Base):
    """Something that happened to a task: opened, another drop, closed."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(24))  # "opened" | "repeat_drop" | "closed"
    call_linkedid: Mapped[str | None] = mapped_column(ForeignKey("calls.linkedid"))
    detail: Mapped[str | None] = mapped_column(String)

    task: Mapped[Task] = relationship(back_populates="events")


class TaskAttempt(Base):
    """One outbound call the dialer placed for a task."""

    __tablename__ = "task_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    action_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # No foreign key: the attempt row exists before its call has ended and been stored.
    call_linkedid: Mapped[str | None] = mapped_column(String(64))

    task: Mapped[Task] = relationship(back_populates="attempt_rows")


class AmiGap(Base):
    """A period when the AMI link was down and calls may have gone unseen."""

    __tablename__ = "ami_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String)
    recovered_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
