"""Supervisor pages: today's calls, the period's figures, administrators, a call list, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, render_template, request, stream_with_context
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from callcenter.reports.figures import (
    BadPeriod,
    Figures,
    Period,
    ReportOptions,
    figure_csv_rows,
    parse_period,
)
from callcenter.store import reports, users
from callcenter.store.models import Call
from callcenter.store.reports import CallFilter
from web.security import role_required

bp = Blueprint("supervisor", __name__)


@bp.record_once
def _configure_wallboard(state: BlueprintSetupState) -> None:
    """Give the live wallboard the clinic's time zone, for today's figures."""
    from web import notifier_for, settings

    app = cast(Flask, state.app)
    with app.app_context():
        notifier_for(app).board.configure(timezone=settings().timezone)


DISPOSITION_LABELS = {
    "answered": "отвечен",
    "abandoned": "брошен в очереди",
    "queue_timeout": "пропущен (очередь)",
    "ivr_abandoned": "брошен в меню",
    "no_answer": "пропущен",
    "busy": "занято",
    "failed": "ошибка",
    "outbound_answered": "исходящий, отвечен",
    "outbound_failed": "исходящий, не дозвонились",
}
OUTCOME_LABELS = {
    "booked": "записан",
    "callback_requested": "перезвонить",
    "not_interested": "не интересно",
    "do_not_call": "не звонить",
    "wrong_number": "ошиблись номером",
}


@bp.get("/")
@role_required("supervisor")
def calls_today() -> str:
    """List today's calls (clinic time zone), newest first."""
    from web import db, settings

    zone = ZoneInfo(settings().timezone)
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    with db()() as s:
        rows = [
            {
                "time": call.started_at.astimezone(zone).strftime("%H:%M:%S"),
                "direction": "входящий" if call.direction == "inbound" else "исходящий",
                "caller": call.caller or "—",
                "caller_name": call.caller_name or "",
                "agent": call.agent or "—",
                "disposition": call.disposition,
                "disposition_label": DISPOSITION_LABELS.get(call.disposition, call.disposition),
                "wait_s": round(call.wait_s),
                "talk_s": round(call.talk_s),
                "outcome": OUTCOME_LABELS.get(outcome, outcome) if outcome else "",
            }
            for call, outcome in users.list_calls_since(s, since=midnight)
        ]
    return render_template("supervisor/calls_today.html", rows=rows, day=midnight.date())


OPERATOR_STATUS_LABELS = {
    "free": "свободен",
    "ringing": "звонит",
    "on_call": "разговор",
    "wrap_up": "после звонка",
    "paused": "пауза",
    "unavailable": "недоступен",
}


@bp.get("/wallboard")
@role_required("supervisor")
def wallboard() -> str:
    """Show the live wallboard: callers waiting, administrators' states, today's figures.

    The page starts from the board as it is now; Socket.IO keeps it current.
    """
    from web import notifier_for

    board = notifier_for(current_app).board.snapshot()
    return render_template(
        "supervisor/wallboard.html", board=board, status_labels=OPERATOR_STATUS_LABELS
    )


# --- Reports: dashboard, administrators, call list, CSV exports -------------------------------

CALL_CSV_HEADER = [
    "linkedid",
    "started_at",
    "direction",
    "disposition",
    "caller",
    "phone",
    "caller_name",
    "queue",
    "agent",
    "last_agent",
    "wait_s",
    "queue_wait_s",
    "talk_s",
]
PAGE_SIZE = 50


@bp.errorhandler(BadPeriod)
def bad_period(exc: BadPeriod) -> tuple[Response | str, int]:
    """Say on the page what is wrong with the period (JSON clients get the usual JSON 400)."""
    from web.api.errors import error_response, wants_json_response

    if wants_json_response():
        return error_response(400, str(exc))
    page = render_template("errors/error.html", status=400, message=f"Неверный период: {exc}")
    return page, 400


def clinic_today() -> date:
    """Return today's date in the clinic's time zone."""
    from web import settings

    return datetime.now(ZoneInfo(settings().timezone)).date()


def period_from_request() -> Period:
    """Return the period of ``?from=&to=`` (default: the last 7 days).

    :raises BadPeriod: malformed, reversed, future or too long (400 through the one handler).
    """
    from web import settings

    return parse_period(
        request.args.get("from") or None,
        request.args.get("to") or None,
        today=clinic_today(),
        timezone=settings().timezone,
    )


def options_from_request() -> ReportOptions:
    """Return the thresholds from ``?short_abandon_s=&service_level_s=&win_back_days=``."""
    defaults = ReportOptions()
    try:
        return ReportOptions(
            short_abandon_s=float(request.args.get("short_abandon_s", defaults.short_abandon_s)),
            service_level_s=float(request.args.get("service_level_s", defaults.service_level_s)),
            win_back_days=int(request.args.get("win_back_days", defaults.win_back_days)),
        )
    except ValueError as exc:
        raise BadRequest(f"bad threshold: {exc}") from exc


def call_filter_from_request() -> CallFilter:
    """Return the call list's filters from the query string."""
    disposition = request.args.get("disposition") or None
    if disposition is not None and disposition not in DISPOSITION_LABELS:
        raise BadRequest(f"unknown disposition {disposition!r}")
    return CallFilter(
        period=period_from_request(),
        disposition=disposition,
        agent=(request.args.get("agent") or "").strip() or None,
        phone=(request.args.get("phone") or "").strip() or None,
    )


def load_period_figures() -> Figures:
    """Return the figures of the requested period."""
    from web import db

    period = period_from_request()
    options = options_from_request()
    with db()() as s:
        return reports.load_figures(s, period=period, options=options)


@bp.get("/dashboard")
@role_required("supervisor")
def dashboard() -> str:
    """Show the period's figures: totals, by day, by hour, dropped callers, administrators."""
    figures = load_period_figures()
    return render_template("supervisor/dashboard.html", f=figures, query=_query_args())


@bp.get("/agents")
@role_required("supervisor")
def agents() -> str:
    """Show the per-administrator table of the period."""
    figures = load_period_figures()
    return render_template("supervisor/agents.html", f=figures, query=_query_args())


@bp.get("/dashboard.csv")
@role_required("supervisor")
def dashboard_csv() -> Response:
    """Export the period's figures (the period, each day, each hour) as CSV."""
    figures = load_period_figures()
    name = f"figures-{figures.period.first.isoformat()}-{figures.period.last.isoformat()}.csv"
    return _csv_response(figure_csv_rows(figures), name)


@bp.get("/calls")
@role_required("supervisor")
def calls() -> str:
    """List the period's calls with filters, newest first, one keyset page at a time."""
    from web import db

    filters = call_filter_from_request()
    zone = ZoneInfo(filters.period.timezone)
    with db()() as s:
        page, next_cursor = reports.list_calls_page(
            s, filters=filters, after=request.args.get("after") or None, limit=PAGE_SIZE
        )
        rows = [_call_view(call, zone) for call in page]
    next_args = {**_query_args(), "after": next_cursor} if next_cursor else None
    return render_template(
        "supervisor/calls.html",
        rows=rows,
        filters=filters,
        next_args=next_args,
        dispositions=DISPOSITION_LABELS,
        query=_query_args(),
    )


@bp.get("/calls.csv")
@role_required("supervisor")
def calls_csv() -> Response:
    """Export every call matching the filters as CSV, streamed in batches."""
    from web import db

    filters = call_filter_from_request()
    factory = db()

    def rows() -> Iterator[list[str]]:
        yield CALL_CSV_HEADER
        with factory() as s:
            for call in reports.iter_calls(s, filters=filters):
                yield [_csv_cell(getattr(call, name)) for name in CALL_CSV_HEADER]

    name = f"calls-{filters.period.first.isoformat()}-{filters.period.last.isoformat()}.csv"
    return _csv_response(rows(), name)


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _csv_response(rows: Iterable[list[str]], filename: str) -> Response:
    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        # A BOM, so Excel opens the Russian text as UTF-8.
        yield "\ufeff"
        for row in rows:
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _call_view(call: Call, zone: ZoneInfo) -> dict[str, object]:
    return {
        "linkedid": call.linkedid,
        "time": call.started_at.astimezone(zone).strftime("%d.%m.%Y %H:%M:%S"),
        "direction": "входящий" if call.direction == "inbound" else "исходящий",
        "caller": call.caller or "—",
        "caller_name": call.caller_name or "",
        "agent": call.agent or "—",
        "disposition": call.disposition,
        "disposition_label": DISPOSITION_LABELS.get(call.disposition, call.disposition),
        "queue_wait_s": "" if call.queue_wait_s is None else round(call.queue_wait_s),
        "talk_s": round(call.talk_s),
    }


def _query_args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "after" and v}
