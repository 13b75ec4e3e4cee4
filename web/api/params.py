"""Query-string parameters of the report API: period, thresholds, call-list filters, limit.

Bad values raise ``BadPeriod`` or ``BadRequest``; the one handler in ``web/api/errors.py``
turns them into the JSON 400 ``{"error": "Bad Request", "message": ...}``.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

from callcenter.reports.figures import OUTCOME_TAGS
from callcenter.store.reports import CallFilter
from web.supervisor import DISPOSITION_LABELS, period_from_request

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def limit_from_request() -> int:
    """Return ``?limit=`` (1..MAX_LIMIT, default DEFAULT_LIMIT)."""
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError as exc:
        raise BadRequest(f"limit must be an integer, got {raw!r}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def call_filter_from_request() -> CallFilter:
    """Return the call list's filters: period, disposition, agent, phone, tag.

    :raises BadRequest: an unknown disposition or tag (a filter that can match nothing is a
        mistake worth saying, not an empty list).
    """
    disposition = request.args.get("disposition") or None
    if disposition is not None and disposition not in DISPOSITION_LABELS:
        raise BadRequest(f"unknown disposition {disposition!r}")
    tag = (request.args.get("tag") or "").strip() or None
    if tag is not None and tag not in OUTCOME_TAGS:
        raise BadRequest(f"unknown tag {tag!r}; known tags: {', '.join(OUTCOME_TAGS)}")
    return CallFilter(
        period=period_from_request(),
        disposition=disposition,
        agent=(request.args.get("agent") or "").strip() or None,
        phone=(request.args.get("phone") or "").strip() or None,
        tag=tag,
    )
