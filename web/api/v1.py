"""``/api/v1`` routes outside the report figures: the call list as XLSX, the OpenAPI document.

Mounted under the ``api`` blueprint (``/api``) with the prefix ``/v1``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from callcenter.reports import xlsx
from callcenter.store import reports
from web.api.params import call_filter_from_request
from web.api.xlsx import xlsx_response
from web.security import login_required, role_required

bp = Blueprint("v1", __name__)


@bp.get("/calls.xlsx")
@login_required
@role_required("supervisor")
def calls_xlsx() -> Response:
    """Export every call matching the filters as XLSX (rows written as they are read)."""
    from web import db
    from web.supervisor import DISPOSITION_LABELS

    filters = call_filter_from_request()
    factory = db()

    def write(target: object) -> None:
        with factory() as s:
            xlsx.write_calls(
                reports.iter_call_rows(s, filters=filters),
                target,  # type: ignore[arg-type]
                timezone=filters.period.timezone,
                disposition_labels=DISPOSITION_LABELS,
            )

    name = f"calls-{filters.period.first.isoformat()}-{filters.period.last.isoformat()}.xlsx"
    return xlsx_response(write, name)


@bp.get("/openapi.json")
@login_required
def openapi() -> Response:
    """Return the OpenAPI 3.1 document of every ``/api/v1`` route (any logged-in user)."""
    from web.api.openapi import openapi_document

    return jsonify(openapi_document())
