"""Supervisor pages: today's calls with their dispositions and the operators' outcomes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template

from callcenter.store import users
from web.security import role_required

bp = Blueprint("supervisor", __name__)

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
