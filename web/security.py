"""Login state, roles and CSRF: a per-session token checked on every state-changing request."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy.orm import Session, sessionmaker

from callcenter.store import users
from callcenter.store.users import UserView

F = TypeVar("F", bound=Callable[..., Any])

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token() -> str:
    """Return this session's CSRF token, creating it on first use (templates call this)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """Refuse (400) a state-changing request whose token is missing or not this session's."""
    if request.method not in _UNSAFE_METHODS:
        return
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        abort(400, description="CSRF token missing or invalid")


def load_user(factory: sessionmaker[Session]) -> UserView | None:
    """Return the logged-in user from the session cookie, or None."""
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None
    with factory() as db:
        return users.get_user(db, user_id=user_id)


def log_in(user: UserView) -> None:
    """Start a fresh session for the user (a new CSRF token, no fixation)."""
    session.clear()
    session["uid"] = user.id
    csrf_token()


def current_user() -> UserView | None:
    """Return the user of this request (set by the app's before_request hook)."""
    return cast(UserView | None, g.get("user"))


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page (JSON routes get 401 from the API handler)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.path.startswith("/api/"):
                abort(401)
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def role_required(role: str) -> Callable[[F], F]:
    """Allow only users of ``role``; others get 403."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.path))
            if user.role != role:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate
