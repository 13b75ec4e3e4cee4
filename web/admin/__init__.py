"""Supervisor administration (``/admin``): the audit log, "forget me", the clinic settings.

Every route is for supervisors only; operators get 403 and anonymous visitors the login page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from callcenter.privacy.forget import BadPhone, forget_phone, preview_forget
from callcenter.reports.figures import BadPeriod, Period, parse_period
from callcenter.store import audit
from callcenter.store.dialer import (
    clinic_settings_history,
    load_clinic_schedule,
    save_clinic_schedule,
)
from callcenter.tasks.schedule import ClinicSchedule, schedule_from_json
from web.admin import clinic_settings as cs
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
    "change_settings": "изменил настройки клиники",
    "edit_script": "изменил сценарий разговора",
}
SUBJECT_KIND_LABELS = {
    "patient": "пациент",
    "call": "звонок",
    "transcript": "расшифровка",
    "recording": "запись",
    "phone_hash": "номер (хеш)",
    "clinic_settings": "настройки клиники",
    "retention": "срок хранения",
    "script": "сценарий",
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


# --- clinic settings -----------------------------------------------------------------------

#: Versions the history list shows.
HISTORY_SIZE = 50


@bp.get("/settings")
@role_required("supervisor")
def clinic_settings() -> str:
    """The clinic settings form with the current values and the history of versions."""
    from web import db

    with db()() as s:
        current, version_id, history = _settings_state(s)
    saved = request.args.get("saved")
    return render_template(
        "admin/settings.html",
        **_settings_context(cs.form_values(current), current, version_id, history),
        errors={},
        message="Настройки сохранены как новая версия." if saved else None,
    )


@bp.post("/settings")
@role_required("supervisor")
def clinic_settings_save() -> Response | tuple[str, int] | str:
    """Validate and save the form as a new version (with who and when); nothing on error."""
    from web import db

    user = current_user()
    assert user is not None  # role_required
    form = {key: request.form.get(key, "") for key in request.form}
    with db().begin() as s:
        current, version_id, history = _settings_state(s)
        parsed = cs.parse_form(form, current=current)
        errors = dict(parsed.errors)
        if not errors and str(version_id or "") != form.get("version", ""):
            errors["form"] = (
                "Пока вы редактировали, настройки изменил другой пользователь."
                " Обновите страницу и внесите изменения заново."
            )
        if errors or parsed.schedule is None:
            page = render_template(
                "admin/settings.html",
                **_settings_context(form, current, version_id, history),
                errors=errors,
                message=None,
            )
            return page, 400
        if parsed.schedule == current and version_id is not None:
            return render_template(
                "admin/settings.html",
                **_settings_context(form, current, version_id, history),
                errors={},
                message="Изменений нет — новая версия не сохранена.",
            )
        now = datetime.now(UTC)
        new_id = save_clinic_schedule(
            s, schedule=parsed.schedule, changed_by=user.username, at=now, note=parsed.note
        )
        audit.record_access(
            s,
            user=user.username,
            action="change_settings",
            subject_kind="clinic_settings",
            subject_id=new_id,
            at=now,
            detail={"changes": len(cs.describe_changes(current, parsed.schedule))},
        )
    return redirect(url_for("admin.clinic_settings", saved=new_id))


def _default_schedule() -> ClinicSchedule:
    from web import settings

    return ClinicSchedule(tz=settings().timezone)


def _settings_state(
    session: Session,
) -> tuple[ClinicSchedule, int | None, list[dict[str, Any]]]:
    """Return the schedule in force, its version id (None: defaults) and the history rows."""
    default = _default_schedule()
    current = load_clinic_schedule(session, default=default)
    versions = clinic_settings_history(session)
    schedules = [schedule_from_json(v.schedule_json) for v in versions]
    history = []
    for i, version in enumerate(versions[:HISTORY_SIZE]):
        previous = schedules[i + 1] if i + 1 < len(schedules) else None
        history.append(
            {
                "id": version.id,
                "at": cs.local_time(version.changed_at, default.tz),
                "by": version.changed_by,
                "note": version.note or "",
                "changes": cs.describe_changes(previous, schedules[i]),
            }
        )
    return current, (versions[0].id if versions else None), history


def _settings_context(
    values: dict[str, str],
    current: ClinicSchedule,
    version_id: int | None,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "values": values,
        "days": cs.template_rows(values),
        "reasons": [(r, cs.REASON_LABELS.get(r, r)) for r in cs.reasons_of(current)],
        "kind_labels": cs.KIND_LABELS,
        "version_id": version_id or "",
        "history": history,
        "timezone": current.tz,
    }


from web.admin import scripts as _scripts  # noqa: E402, F401
