"""JSON API of the supervisor's figures: ``/api/v1/reports/...`` (supervisors only).

Errors (a malformed or reversed period, a bad cursor, an unknown tag) go through the one
handler in ``web/api/errors.py`` and come back as JSON.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from callcenter.reports import xlsx
from callcenter.reports.figures import figures_payload
from callcenter.store import reports
from web.api.params import call_filter_from_request, limit_from_request
from web.api.serializers import call_row_payload
from web.api.xlsx import xlsx_response
from web.security import login_required, role_required
from web.supervisor import load_period_figures

bp = Blueprint("reports_api", __name__)


@bp.get("/figures")
@login_required
@role_required("supervisor")
def figures() -> Response:
    """Return every figure of ``?from=&to=`` (default: the last 7 days)."""
    return jsonify(figures_payload(load_period_figures()))


@bp.get("/figures.xlsx")
@login_required
@role_required("supervisor")
def figures_xlsx() -> Response:
    """Export the period's figures (by day, by hour, administrators, tags) as XLSX."""
    figs = load_period_figures()
    name = f"figures-{figs.period.first.isoformat()}-{figs.period.last.isoformat()}.xlsx"
    return xlsx_response(lambda target: xlsx.write_figures(figs, target), name)


@bp.get("/agents")
@login_required
@role_required("supervisor")
def agents() -> Response:
    """Return the per-administrator figures of the period."""
    figs = load_period_figures()
    return jsonify(
        {
            "period": figures_payload(figs)["period"],
            "agents": [asdict(a) for a in figs.agents],
        }
    )


@bp.get("/calls")
@login_required
@role_required("supervisor")
def calls() -> Response:
    """Return one page of the filtered call list and the next page's cursor (``?after=``)."""
    from web import db

    limit = limit_from_request()
    filters = call_filter_from_request()
    with db()() as s:
        page, cursor = reports.list_calls_page(
            s, filters=filters, after=request.args.get("after") or None, limit=limit
        )
        rows = [call_row_payload(call) for call in page]
    return jsonify({"calls": rows, "next": cursor})
