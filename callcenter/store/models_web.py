"""Tables of the web part of the store (registered on ``models.Base``): users and call outcomes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base

ROLES = ("operator", "supervisor")
#: What an operator records after a call (the panel's outcome buttons).
OUTCOMES = ("booked", "callback_requested", "not_interested", "do_not_call", "wrong_number")


class User(Base):
    """Someone who logs in to the web panel: an operator (with an extension) or a supervisor."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('operator', 'supervisor')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    # The operator's phone extension (Asterisk's agent, e.g. "101"): the screen pop's room.
    extension: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]


class CallOutcome(Base):
    """What the operator recorded after a call: booked, callback requested, not interested…"""

    __tablename__ = "call_outcomes"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('booked', 'callback_requested', 'not_interested', 'do_not_call',"
            " 'wrong_number')",
            name="outcome",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: the operator may record the outcome before the listener stored the call.
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    operator: Mapped[str] = mapped_column(String(64))  # the user's username
    outcome: Mapped[str] = mapped_column(String(32))
    # The booking's date or the callback's time, as the operator entered it (ISO 8601).
    detail: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(index=True)
