"""Reads and writes of the web part: users, the outcomes operators record, the calls pages list.

The caller owns the transaction, as in ``queries``; ``add_user`` is the one exception, a
whole unit of work for ``callcenter users add``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from callcenter.errors import CallcenterError
from callcenter.store import patients, queries
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import Call
from callcenter.store.models_web import OUTCOMES, ROLES, CallOutcome, User


class UserError(CallcenterError):
    """A user cannot be created as asked (bad role, missing extension, taken name)."""


class BadOutcome(CallcenterError):
    """An outcome the panel does not know, or one missing its date/time."""


@dataclass(frozen=True, slots=True)
class UserView:
    """What the web layer keeps of a logged-in user (no hash, no session ties)."""

    id: int
    username: str
    role: str
    extension: str | None


def _view(user: User) -> UserView:
    return UserView(id=user.id, username=user.username, role=user.role, extension=user.extension)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    extension: str | None = None,
    now: datetime | None = None,
) -> UserView:
    """Create an active user with a salted password hash.

    :raises UserError: for an unknown role, an operator without an extension, a taken name or an
        empty password.
    """
    username = username.strip()
    if not username:
        raise UserError("username must not be empty")
    if not password:
        raise UserError("password must not be empty")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "operator" and not extension:
        raise UserError("an operator needs an extension (the phone the screen pops on)")
    user = User(
        username=username,
        password_hash=generate_password_hash(password),
        role=role,
        extension=extension or None,
        active=True,
        created_at=now or datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise UserError(f"user {username!r} already exists") from exc
    return _view(user)


def authenticate(session: Session, *, username: str, password: str) -> UserView | None:
    """Return the active user with this name and password, or None."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        # Hash anyway, so a wrong name takes as long as a wrong password.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return _view(user)


def get_user(session: Session, *, user_id: int) -> UserView | None:
    """Return the active user with this id, or None (deleted or deactivated)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return _view(user)


def add_user(
    database_url: str,
    *,
    username: str,
    password: str,
    role: str,
    extension: str | None = None,
) -> UserView:
    """Migrate the database, then create a user in one transaction (``callcenter users add``).

    :raises UserError: see ``create_user``.
    """
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        with create_session_factory(engine).begin() as session:
            return create_user(
                session, username=username, password=password, role=role, extension=extension
            )
    finally:
        engine.dispose()


def record_outcome(
    session: Session,
    *,
    linkedid: str,
    operator: str,
    outcome: str,
    detail: str | None,
    note: str | None,
    at: datetime,
    phone: str | None = None,
) -> CallOutcome:
    """Store what the operator recorded after a call.

    «Do not call» also puts the number (``phone``, else the stored call's) on the do-not-call
    list at once, so no dialer rings it again.

    :raises BadOutcome: for an unknown outcome, or a booking/callback without its date or time.
    """
    if outcome not in OUTCOMES:
        raise BadOutcome(f"unknown outcome {outcome!r}")
    if not linkedid:
        raise BadOutcome("the outcome needs the call's linkedid")
    if outcome in ("booked", "callback_requested") and not detail:
        raise BadOutcome(f"{outcome} needs a date or time")
    row = CallOutcome(
        linkedid=linkedid,
        operator=operator,
        outcome=outcome,
        detail=(detail or None) if outcome in ("booked", "callback_requested") else None,
        note=note or None,
        at=at,
    )
    session.add(row)
    session.flush()
    if outcome == "do_not_call":
        if phone is None:
            call = queries.get_call(session, linkedid=linkedid)
            phone = call.phone if call is not None else None
        if phone is not None:
            patients.add_do_not_call(session, phone=phone, at=at, by=operator)
    return row


def list_outcomes(session: Session, *, linkedid: str) -> list[CallOutcome]:
    """Return the outcomes recorded for one call, oldest first."""
    return list(
        session.scalars(
            select(CallOutcome).where(CallOutcome.linkedid == linkedid).order_by(CallOutcome.id)
        )
    )


def list_calls_since(session: Session, *, since: datetime) -> list[tuple[Call, str | None]]:
    """Return calls that started at or after ``since``, newest first, with the last outcome."""
    calls = list(
        session.scalars(
            select(Call).where(Call.started_at >= since).order_by(Call.started_at.desc())
        )
    )
    return [(call, _last_outcome(session, call.linkedid)) for call in calls]


def list_recent_calls(session: Session, *, limit: int) -> list[Call]:
    """Return the latest stored calls, newest first."""
    return list(session.scalars(select(Call).order_by(Call.started_at.desc()).limit(limit)))


def _last_outcome(session: Session, linkedid: str) -> str | None:
    return session.scalar(
        select(CallOutcome.outcome)
        .where(CallOutcome.linkedid == linkedid)
        .order_by(CallOutcome.id.desc())
        .limit(1)
    )


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("timing-equaliser")
