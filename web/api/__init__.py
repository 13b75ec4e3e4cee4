"""JSON API: stored calls and open callback tasks, for any logged-in user; ``/api/v1``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from callcenter.store import queries, users
from web.api.serializers import call_row_payload
from web.api.v1 import bp as v1_bp
from web.security import login_required

bp = Blueprint("api", __name__)
# /api/v1/...: the call list as XLSX and the OpenAPI document (the figures: web.api.reports).
bp.register_blueprint(v1_bp, url_prefix="/v1")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError as exc:
        raise BadRequest(f"limit must be an integer, got {raw!r}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


@bp.get("/calls")
@login_required
def calls() -> Response:
    """Return the latest stored calls, newest first (``?limit=``, default 50)."""
    from web import db

    limit = _limit()
    with db()() as s:
        rows = [call_row_payload(c) for c in users.list_recent_calls(s, limit=limit)]
    return jsonify({"calls": rows})


@bp.get("/tasks")
@login_required
def tasks() -> Response:
    """Return open callback tasks in callback order."""
    from web import db

    with db()() as s:
        rows = [queries.task_row(t) for t in queries.list_open_tasks(s)]
    return jsonify({"tasks": rows})
