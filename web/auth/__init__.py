"""Log in and out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from callcenter.store import users
from web.security import log_in

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Return ``target`` only when it is a path on this site (no open redirect).

    >>> _safe_next("/operator/"), _safe_next("//evil.example/"), _safe_next("https://x/")
    ('/operator/', None, None)
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Show the login form; on POST check the password and start a session."""
    from web import db

    error = None
    if request.method == "POST":
        with db()() as s:
            user = users.authenticate(
                s,
                username=request.form.get("username", ""),
                password=request.form.get("password", ""),
            )
        if user is not None:
            target = _safe_next(request.args.get("next"))
            log_in(user)
            return redirect(target or url_for("index"))
        error = "Неверное имя пользователя или пароль"
    status = 401 if error else 200
    return render_template("auth/login.html", error=error), status  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """End the session."""
    session.clear()
    return redirect(url_for("auth.login"))
