"""Supervisor pages: today's calls, the period's figures, administrators, a call list, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from callcenter.reports.figures import (
    OUTCOME_TAGS,
    BadPeriod,
    CallFigures,
    Figures,
    Period,
    ReportOptions,
    figure_csv_rows,
    parse_period,
)
from callcenter.speech.tagger import TAGS
from callcenter.store import corrections, queries, reports, speech, users
from callcenter.store.corrections import BadTagCorrection
from callcenter.store.models import Call
from callcenter.store.reports import CallFilter
from web.audit import audit_access
from web.security import current_user, role_required
from web.supervisor.timeline import build_timeline

bp = Blueprint("supervisor", __name__)


@bp.record_once
def _configure_wallboard(state: BlueprintSetupState) -> None:
    """Give the live wallboard the clinic's time zone (today's figures) and thresholds."""
    from web import notifier_for, settings

    app = cast(Flask, state.app)
    with app.app_context():
        notifier_for(app).board.configure(
            timezone=settings().timezone, options=default_report_options()
        )


def default_report_options() -> ReportOptions:
    """Return the report thresholds the deployment configures (REPORT_* settings)."""
    from web import settings

    cfg = settings()
    return ReportOptions(
        short_abandon_s=cfg.report_short_abandon_s,
        service_level_s=cfg.report_service_level_s,
        win_back_days=cfg.report_win_back_days,
    )


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
                "linkedid": call.linkedid,
                "time": call.started_at.astimezone(zone).strftime("%H:%M"),
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
    from web import notifier_for, settings
    from web.realtime.board_store import wallboard_snapshot

    board = wallboard_snapshot(notifier_for(current_app).board, redis_url=settings().redis_url)
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
    defaults = default_report_options()
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
    tag = (request.args.get("tag") or "").strip() or None
    if tag is not None and tag not in OUTCOME_TAGS:  # the API's rule (web.api.params)
        raise BadRequest(f"unknown tag {tag!r}")
    return CallFilter(
        period=period_from_request(),
        disposition=disposition,
        agent=(request.args.get("agent") or "").strip() or None,
        phone=(request.args.get("phone") or "").strip() or None,
        tag=tag,
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
    return render_template(
        "supervisor/dashboard.html",
        f=figures,
        query=_query_args(),
        charts=chart_data(figures),
        tag_labels=TAG_LABELS,  # the objections partial's row names
    )


def chart_data(figures: Figures) -> dict[str, object]:
    """Return the dashboard charts' series: inbound calls by day and by hour, administrators."""

    def series(buckets: list[tuple[str, CallFigures]]) -> dict[str, list[object]]:
        return {
            "labels": [label for label, _ in buckets],
            "answered": [c.answered for _, c in buckets],
            "missed": [c.missed for _, c in buckets],
            "abandoned": [c.abandoned for _, c in buckets],
            "ivr_abandoned": [c.ivr_abandoned for _, c in buckets],
        }

    return {
        "by_day": series([(day.strftime("%d.%m"), c) for day, c in figures.by_day]),
        "by_hour": series([(f"{hour:02d}", c) for hour, c in figures.by_hour]),
        "agents": {
            "labels": [a.agent for a in figures.agents],
            "answered": [a.answered for a in figures.agents],
            "missed": [a.missed for a in figures.agents],
            "callbacks": [a.callbacks for a in figures.agents],
        },
    }


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
        tag_labels=TAG_LABELS,
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
        "queue": call.queue or "",
        "last_agent": call.last_agent if call.last_agent != call.agent else None,
        "wait_s": round(call.wait_s),
        "recording": call.recording or "",
        "time": call.started_at.astimezone(zone).strftime("%d.%m.%Y %H:%M"),
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


# --- The call page: timeline, recording, transcript, tags and their corrections ---------------

TAG_LABELS = {
    "price_objection": "дорого",
    "booked": "записан",
    "callback_requested": "просит перезвонить",
    "no_time": "нет времени",
    "fear": "страх",
    "went_elsewhere": "лечится в другом месте",
    "dissatisfied": "недоволен клиникой",
    "wrong_number": "ошиблись номером",
    "do_not_call": "не звонить",
    "moved_away": "переехал",
    "insurance": "ДМС",
    "thinking": "подумает",
}
TRANSCRIPT_STATUS_LABELS = {
    "queued": "запись ждёт расшифровки",
    "failed": "расшифровать не удалось",
    "no_audio": "в записи нет звука",
}
CORRECTION_ACTION_LABELS = {"add": "добавил(а)", "remove": "убрал(а)"}


class RecordingUnavailable(Exception):
    """The call's recording cannot be served: none, outside the recordings folder, or missing."""


def recording_path(name: str | None) -> Path:
    """Return the recording's file inside ``RECORDINGS_DIR``.

    :raises RecordingUnavailable: the call has no recording, the name would leave the folder
        (``..``, an absolute path, a symlink pointing out), or the file is not there.
    """
    from web import settings

    if not name:
        raise RecordingUnavailable("у звонка нет записи")
    base = Path(settings().recordings_dir).resolve()
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise RecordingUnavailable(f"недопустимое имя файла записи: {name}")
    path = (base / candidate).resolve()
    if not path.is_relative_to(base):
        raise RecordingUnavailable(f"недопустимое имя файла записи: {name}")
    if not path.is_file():
        raise RecordingUnavailable(f"файл записи не найден: {name}")
    return path


@bp.get("/calls/<linkedid>")
@role_required("supervisor")
def call_page(linkedid: str) -> str:
    """Show one call: timeline, recording, transcript (words seek the audio), tags."""
    from web import db

    zone = ZoneInfo(_timezone())
    with db()() as s:
        call = queries.get_call(s, linkedid=linkedid)
        if call is None:
            abort(_not_found(f"Звонок {linkedid} не найден."))
        disposition_label = DISPOSITION_LABELS.get(call.disposition, call.disposition)
        outcomes = [
            (row.at, row.operator, OUTCOME_LABELS.get(row.outcome, row.outcome))
            for row in users.list_outcomes(s, linkedid=linkedid)
        ]
        timeline = build_timeline(
            call,
            call.legs,
            disposition_label=disposition_label,
            task_events=corrections.call_task_events(s, linkedid=linkedid),
            outcomes=outcomes,
        )
        transcript = speech.view_transcript(s, linkedid=linkedid)
        tags = corrections.tag_state(s, linkedid=linkedid)
        view = _call_view(call, zone)
        recording_name = call.recording
    try:
        recording_path(recording_name)
        recording_error = None
    except RecordingUnavailable as exc:
        recording_error = str(exc)
    if transcript is not None and transcript.status == "done":
        # Only a page that shows the words counts as opening the transcript.
        audit_access("open_transcript", "call", linkedid)
    return render_template(
        "supervisor/call.html",
        call=view,
        linkedid=linkedid,
        timeline=timeline,
        zone=zone,
        recording_name=recording_name,
        recording_error=recording_error,
        transcript=transcript,
        transcript_status_labels=TRANSCRIPT_STATUS_LABELS,
        tags=tags,
        all_tags=TAGS,
        tag_labels=TAG_LABELS,
        action_labels=CORRECTION_ACTION_LABELS,
    )


@bp.get("/calls/<linkedid>/recording")
@role_required("supervisor")
def call_recording(linkedid: str) -> Response:
    """Serve the call's recording; HTTP Range requests get 206 partial content (seeking)."""
    from web import db

    with db()() as s:
        call = queries.get_call(s, linkedid=linkedid)
        if call is None:
            abort(_not_found(f"Звонок {linkedid} не найден."))
        name = call.recording
    try:
        path = recording_path(name)
    except RecordingUnavailable as exc:
        abort(_not_found(f"Запись недоступна: {exc}."))
    # The player asks for byte ranges while it plays and seeks: one audit line per listening,
    # the request that starts from the first byte.
    if request.range is None or request.range.ranges[0][0] == 0:
        audit_access("play_recording", "call", linkedid)
    return send_file(path, conditional=True, max_age=0)


@bp.post("/calls/<linkedid>/tags")
@role_required("supervisor")
def correct_call_tags(linkedid: str) -> Response:
    """Store the supervisor's tag changes (the form's ticks against the tags it showed).

    :raises BadTagCorrection: an unknown tag or call (400 on the page).
    """
    from web import db

    user = current_user()
    assert user is not None  # role_required
    shown = set(request.form.getlist("shown"))
    ticked = set(request.form.getlist("tag"))
    with db().begin() as s:
        corrections.correct_tags(
            s,
            linkedid=linkedid,
            add=sorted(ticked - shown),
            remove=sorted(shown - ticked),
            by=user.username,
            now=datetime.now(UTC),
        )
    return redirect(url_for("supervisor.call_page", linkedid=linkedid, _anchor="tags"), 303)


@bp.errorhandler(BadTagCorrection)
def bad_tag_correction(exc: BadTagCorrection) -> tuple[str, int]:
    """Say on the page what is wrong with the correction."""
    page = render_template("errors/error.html", status=400, message=f"Теги не изменены: {exc}")
    return page, 400


def _not_found(message: str) -> Response:
    """Return a 404 page that says what is missing (the generic one does not)."""
    return make_response(render_template("errors/error.html", status=404, message=message), 404)


def _timezone() -> str:
    from web import settings

    return settings().timezone
