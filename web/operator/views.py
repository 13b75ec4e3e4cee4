"""What the operator panel's JSON routes send: callback list items, labels, form parsing.

Pure helpers (no request state) so that the routes in ``web.operator`` stay short.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from callcenter.errors import CallcenterError
from callcenter.playbook.model import Playbook
from callcenter.playbook.select import select_script, situation_for
from callcenter.store.callbacks import CallbackItem
from callcenter.store.patients import load_card
from callcenter.store.playbook import current_playbook

log = logging.getLogger(__name__)

#: Task reasons as the operators' list names them.
REASON_LABELS: dict[str, str] = {
    "missed_call": "пропущенный звонок",
    "abandoned_call": "не дождался ответа",
    "callback_requested": "просил перезвонить",
    "click_to_call": "звонок из карточки",
    "reminder": "напоминание о визите",
    "care": "забота после лечения",
    "nps_followup": "как самочувствие (опрос)",
    "no_show": "не пришёл на приём",
    "first_visit_followup": "после первого визита",
    "sleeping": "давно не был («Забота»)",
    "objection_followup": "после возражения",
    "discount_offer": "предложение скидки",
}

#: Why an operator closes a task (``callbacks.OPERATOR_CLOSE_REASONS``), in Russian.
CLOSE_REASON_LABELS: dict[str, str] = {
    "reached_elsewhere": "Уже связались иначе",
    "not_interested": "Не интересно",
    "wrong_number": "Ошиблись номером",
    "duplicate": "Дубликат",
    "other": "Другое",
}

#: Quick-create refusals (``PatientInputError.code``) as the operator reads them.
PATIENT_ERRORS: dict[str, str] = {
    "name_required": "Укажите ФИО пациента.",
    "name_too_long": "ФИО слишком длинное (не больше 200 знаков).",
    "bad_phone": "Номер не распознан: укажите его полностью, например +7 916 123-45-67.",
    "bad_birth_date": "Дата рождения не может быть в будущем или раньше 1900 года.",
    "note_too_long": "Заметка слишком длинная (не больше 1000 знаков).",
    "phone_taken": "Этот номер уже есть у пациента в базе — карточку создавать не нужно.",
}
BAD_DATE_FORMAT = "Дата рождения указана неверно: нужна дата вида 31.12.1980."


def parse_birth_date(raw: str) -> date | None:
    """Parse the form's birth date (``YYYY-MM-DD`` from ``<input type=date>``, or ``DD.MM.YYYY``).

    >>> parse_birth_date(""), parse_birth_date("1980-12-31"), parse_birth_date("31.12.1980")
    (None, datetime.date(1980, 12, 31), datetime.date(1980, 12, 31))
    >>> parse_birth_date("31/12/80")
    Traceback (most recent call last):
    ...
    ValueError: bad birth date '31/12/80'
    """
    text = raw.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"bad birth date {raw!r}")


def parse_until(raw: str) -> datetime:
    """Parse a snooze time: ISO 8601 with an offset (the panel sends UTC, ``…Z``).

    >>> parse_until("2026-11-23T09:30:00.000Z")
    datetime.datetime(2026, 11, 23, 9, 30, tzinfo=datetime.timezone.utc)
    >>> parse_until("2026-11-23T09:30")
    Traceback (most recent call last):
    ...
    ValueError: time without a time zone: '2026-11-23T09:30'
    """
    value = datetime.fromisoformat(raw.strip())
    if value.tzinfo is None:
        raise ValueError(f"time without a time zone: {raw!r}")
    return value.astimezone(UTC)


def load_playbook(session: Session) -> Playbook | None:
    """Return the current playbook, or None when it is broken (the list still shows)."""
    try:
        return current_playbook(session)
    except CallcenterError as exc:
        log.warning("no scripts for the callback list: %s", exc)
        return None


def script_for(
    session: Session, *, phone: str, reason: str, now: datetime, playbook: Playbook | None
) -> dict[str, Any] | None:
    """Return the playbook's script for calling this number back for this reason, if any."""
    if playbook is None:
        return None
    try:
        card = load_card(session, caller=phone, now=now).to_dict()
        situation = situation_for(card=card, call_kind=reason)
        return select_script(situation, playbook=playbook).to_dict()
    except CallcenterError as exc:
        log.debug("no script for a %s callback: %s", reason, exc)
        return None


def callback_dict(item: CallbackItem, *, script: dict[str, Any] | None) -> dict[str, Any]:
    """Return one list item as the panel renders it."""
    return {
        "task_id": item.task_id,
        "phone": item.phone,
        "patient_id": item.patient_id,
        "patient_name": item.patient_name,
        "reason": item.reason,
        "reason_label": REASON_LABELS.get(item.reason, item.reason),
        "kind": item.kind,
        "status": item.status,
        "due_at": item.due_at.isoformat() if item.due_at else None,
        "attempts": item.attempts,
        "last_outcome": item.last_outcome,
        "assigned_extension": item.assigned_extension,
        "script": script,
    }
