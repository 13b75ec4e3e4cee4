"""The operator panel: live screen pops and the outcome form after each call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.wrappers import Response

from callcenter.store import users
from web.security import current_user, role_required

bp = Blueprint("operator", __name__)

#: Outcome buttons: (outcome, label, keyboard shortcut).
OUTCOME_BUTTONS = [
    ("booked", "Записан", "1"),
    ("callback_requested", "Перезвонить", "2"),
    ("not_interested", "Не интересно", "3"),
    ("do_not_call", "Не звонить", "4"),
    ("wrong_number", "Ошиблись номером", "5"),
]


@bp.get("/")
@role_required("operator")
def panel() -> str:
    """Show the live panel (the pops arrive over Socket.IO)."""
    return render_template("operator/panel.html", outcome_buttons=OUTCOME_BUTTONS)


@bp.post("/outcome")
@role_required("operator")
def record_outcome() -> tuple[Response, int]:
    """Store the outcome of a call (CSRF checked by the app) and take the card off the screen.

    :raises BadOutcome: mapped to 400 by the API error handler.
    """
    from web import db, notifier_for

    user = current_user()
    assert user is not None  # role_required
    form = request.form
    outcome = form.get("outcome", "")
    detail = form.get("date") if outcome == "booked" else form.get("time")
    linkedid = form.get("linkedid", "")
    notifier = notifier_for(current_app)
    with db().begin() as s:
        row = users.record_outcome(
            s,
            linkedid=linkedid,
            operator=user.username,
            outcome=outcome,
            detail=detail,
            note=form.get("note", "").strip(),
            at=datetime.now(UTC),
            phone=notifier.registry.phone_of(linkedid),
        )
        body: dict[str, Any] = {"ok": True, "id": row.id, "outcome": row.outcome}
    if user.extension:
        notifier.dismiss(linkedid, extension=user.extension)
    return jsonify(body), 201
