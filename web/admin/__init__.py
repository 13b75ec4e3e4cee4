"""Supervisor administration (``/admin``): the audit log, "forget me", the clinic settings.

Every route is for supervisors only; operators get 403 and anonymous visitors the login page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from callcenter.privacy.forget import BadPhone, forget_phone, preview_forget
from callcenter.reports.figures import BadPeriod, Period, parse_period
from callcenter.store import audit
from web.security import current_user, role_required

bp = Blueprint("admin", __name__)

#: Rows per page of the audit log.
AUDIT_PAGE_SIZE = 50

ACTION_LABELS = {
    "open_card": "открыл карточку",
    "open_transcript": "открыл расшифровку",
    "play_recording": "прослушал запись",
    "forget": "удалил данные пациента («забыть меня»)",
    "retention": "удалил старые записи и расшифровки",
    "export": "выгрузил данные",
}
SUBJECT_KIND_LABELS = {
    "patient": "пациент",
    "call": "звонок",
    "transcript": "расшифровка",
    "recording": "запись",
    "phone_hash": "номер (хеш)",
    "clinic_settings": "настройки клиники",
}


class BadInput(ValueError):
    """A query argument of an admin page that cannot be used (the message is shown as is)."""


@bp.errorhandler(BadPeriod)
def bad_period(exc: BadPeriod) -> tuple[Response | str, int]:
    """Say on the page what is wrong with the period."""
    page = render_template("errors/error.html", status=400, message=f"Неверный период: {exc}")
    return page, 400


@bp.errorhandler(BadInput)
def bad_input(exc: BadInput) -> tuple[Response | str, int]:
    """Say on the page what is wrong with the request."""
    return render_template("errors/error.html", status=400, message=str(exc)), 400


@bp.get("/")
@role_required("supervisor")
def index() -> str:
    """The administration menu."""
    return render_template("admin/index.html")


@bp.get("/audit")
@role_required("supervisor")
def audit_log() -> str:
    """The audit log of a period, newest first, filtered by user and subject kind, paged."""
    from web import db

    period = _period_from_request()
    user = (request.args.get("user") or "").strip() or None
    kind = (request.args.get("kind") or "").strip() or None
    before_id = _optional_int("before")
    with db()() as s:
        entries = audit.list_access(
            s,
            since=period.start,
            until=period.end,
            user=user,
            subject_kind=kind,
            limit=AUDIT_PAGE_SIZE + 1,
            before_id=before_id,
        )
        known_users = audit.audit_users(s)
    has_more = len(entries) > AUDIT_PAGE_SIZE
    entries = entries[:AUDIT_PAGE_SIZE]
    zone = ZoneInfo(period.timezone)
    rows = [
        {
            "id": e.id,
            "time": _local(e.at, zone),
            "user": e.user,
            "action": e.action,
            "action_label": ACTION_LABELS.get(e.action, e.action),
            "kind": e.subject_kind,
            "kind_label": SUBJECT_KIND_LABELS.get(e.subject_kind, e.subject_kind),
            "subject_id": e.subject_id,
            "detail": _detail_text(e.detail),
        }
        for e in entries
    ]
    query: dict[str, Any] = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if user:
        query["user"] = user
    if kind:
        query["kind"] = kind
    next_args = {**query, "before": entries[-1].id} if has_more else None
    return render_template(
        "admin/audit.html",
        rows=rows,
        period=period,
        user=user,
        kind=kind,
        users=known_users,
        kinds=SUBJECT_KIND_LABELS,
        next_args=next_args,
        first_args=query if before_id is not None else None,
    )


def _period_from_request() -> Period:
    from web import settings

    zone = ZoneInfo(settings().timezone)
    return parse_period(
        request.args.get("from") or None,
        request.args.get("to") or None,
        today=datetime.now(zone).date(),
        timezone=settings().timezone,
    )


def _optional_int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadInput(f"{name}: ожидалось целое число, получено {raw!r}") from exc
    if value < 1:
        raise BadInput(f"{name}: ожидалось положительное число, получено {value}")
    return value


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")


def _detail_text(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    return ", ".join(f"{key}: {value}" for key, value in detail.items())


# --- "forget me" ---------------------------------------------------------------------------

FORGET_COUNT_LABELS = {
    "phones": "номеров пациента",
    "calls": "звонков обезличено",
    "recordings": "записей удалено",
    "transcripts": "расшифровок удалено",
    "tags": "тегов удалено",
    "tasks": "задач обезличено",
    "notes": "заметок удалено",
    "consents": "записей о согласиях удалено",
    "visits": "визитов удалено",
    "flags": "пометок номера удалено",
}


@bp.get("/forget")
@role_required("supervisor")
def forget_form() -> str:
    """The "forget me" form: a number, and whether to keep it on the do-not-call list."""
    return render_template("admin/forget.html", phone="", keep_dnc=False, error=None)


@bp.post("/forget/check")
@role_required("supervisor")
def forget_check() -> tuple[str, int] | str:
    """Show what the request would touch and ask for confirmation; changes nothing."""
    from web import db

    phone = (request.form.get("phone") or "").strip()
    keep_dnc = request.form.get("keep_do_not_call") == "1"
    try:
        preview = preview_forget(db(), phone=phone)
    except BadPhone:
        return _forget_error(phone, keep_dnc)
    return render_template("admin/forget_confirm.html", preview=preview, keep_dnc=keep_dnc)


@bp.post("/forget")
@role_required("supervisor")
def forget_run() -> tuple[str, int] | str:
    """Forget the person (only with the confirmation field); show what was removed."""
    from web import db, settings

    phone = (request.form.get("phone") or "").strip()
    keep_dnc = request.form.get("keep_do_not_call") == "1"
    if request.form.get("confirm") != "yes":
        page = render_template(
            "admin/forget.html",
            phone=phone,
            keep_dnc=keep_dnc,
            error="Удаление не подтверждено: сначала проверьте номер и подтвердите.",
        )
        return page, 400
    user = current_user()
    assert user is not None  # role_required
    try:
        report = forget_phone(
            db(),
            phone=phone,
            recordings_dir=settings().recordings_dir,
            by=user.username,
            add_do_not_call=keep_dnc,
        )
    except BadPhone:
        return _forget_error(phone, keep_dnc)
    counts = report.counts()
    rows = [(label, counts[key]) for key, label in FORGET_COUNT_LABELS.items()]
    return render_template(
        "admin/forget_done.html",
        report=report,
        rows=rows,
        patient_found=report.patient_found,
        do_not_call=report.do_not_call,
    )


def _forget_error(phone: str, keep_dnc: bool) -> tuple[str, int]:
    page = render_template(
        "admin/forget.html",
        phone=phone,
        keep_dnc=keep_dnc,
        error=f"«{phone}» — не номер телефона. Введите номер, например +7 916 123-45-67.",
    )
    return page, 400
