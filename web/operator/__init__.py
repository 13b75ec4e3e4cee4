"""The operator panel: live screen pops, the outcome form, the queue pause, quick create of an
unknown caller, and the callback list (take, snooze, close, click-to-call)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.wrappers import Response

from callcenter.ami.commands import PAUSE_REASONS, AmiCommandError, AmiRejected
from callcenter.patients.phone import normalize_phone
from callcenter.store import callbacks, users
from callcenter.store.patients import PatientInputError
from callcenter.store.patients import create_patient as store_create_patient
from callcenter.store.users import UserView
from web.operator.live import STATE_LABELS, commands_for, states_for
from web.operator.views import (
    BAD_DATE_FORMAT,
    CLOSE_REASON_LABELS,
    PATIENT_ERRORS,
    REASON_LABELS,
    callback_dict,
    load_playbook,
    parse_birth_date,
    parse_until,
    script_for,
)
from web.security import current_user, role_required

log = logging.getLogger(__name__)

bp = Blueprint("operator", __name__)

#: Outcome buttons: (outcome, label, keyboard shortcut).
OUTCOME_BUTTONS = [
    ("booked", "Записан", "1"),
    ("callback_requested", "Перезвонить", "2"),
    ("not_interested", "Не интересно", "3"),
    ("do_not_call", "Не звонить", "4"),
    ("wrong_number", "Ошиблись номером", "5"),
]


@bp.get("/")
@role_required("operator")
def panel() -> str:
    """Show the live panel (the pops arrive over Socket.IO)."""
    user = current_user()
    assert user is not None  # role_required
    states = states_for(current_app)
    state = states.get(user.extension) if states is not None and user.extension else None
    return render_template(
        "operator/panel.html",
        outcome_buttons=OUTCOME_BUTTONS,
        pause_reasons=PAUSE_REASONS,
        state_labels=STATE_LABELS,
        operator_state=state,
        close_reasons={r: CLOSE_REASON_LABELS.get(r, r) for r in callbacks.OPERATOR_CLOSE_REASONS},
        callback_labels={"reasons": REASON_LABELS},
    )


@bp.get("/state")
@role_required("operator")
def operator_state() -> Response:
    """Return this operator's state as Asterisk last reported it (null when not known here)."""
    user = current_user()
    assert user is not None  # role_required
    states = states_for(current_app)
    state = states.get(user.extension) if states is not None and user.extension else None
    return jsonify({"state": state})


@bp.post("/pause")
@role_required("operator")
def pause() -> tuple[Response, int]:
    """Pause (``paused=1``, with a ``reason``) or resume (``paused=0``) this operator's queue.

    Only the request goes out here: the state shown changes when Asterisk's QueueMemberPause
    comes back as ``operator_state``. 202 when Asterisk accepted it; 400 for a bad form,
    502 when Asterisk refused, 503 when it could not be reached (nothing changed).
    """
    user = current_user()
    assert user is not None  # role_required
    if not user.extension:
        return _error(400, "У вашей учётной записи нет добавочного номера.")
    paused_value = request.form.get("paused", "")
    if paused_value not in ("0", "1"):
        return _error(400, "Не указано, поставить паузу или снять её.")
    paused = paused_value == "1"
    reason_key = request.form.get("reason", "") if paused else ""
    if reason_key and reason_key not in PAUSE_REASONS:
        return _error(400, "Неизвестная причина паузы.")
    try:
        commands_for(current_app).queue_pause(
            extension=user.extension,
            paused=paused,
            reason=PAUSE_REASONS[reason_key] if reason_key else None,
        )
    except AmiRejected as exc:
        return _error(502, str(exc))
    except AmiCommandError as exc:
        return _error(503, str(exc))
    return jsonify({"ok": True, "paused": paused}), 202


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": "error", "message": message}), status


@bp.post("/outcome")
@role_required("operator")
def record_outcome() -> tuple[Response, int]:
    """Store the outcome of a call (CSRF checked by the app) and take the card off the screen.

    :raises BadOutcome: mapped to 400 by the API error handler.
    """
    from web import db, notifier_for

    user = current_user()
    assert user is not None  # role_required
    form = request.form
    outcome = form.get("outcome", "")
    detail = form.get("date") if outcome == "booked" else form.get("time")
    linkedid = form.get("linkedid", "")
    notifier = notifier_for(current_app)
    with db().begin() as s:
        row = users.record_outcome(
            s,
            linkedid=linkedid,
            operator=user.username,
            outcome=outcome,
            detail=detail,
            note=form.get("note", "").strip(),
            at=datetime.now(UTC),
            phone=notifier.registry.phone_of(linkedid),
        )
        body: dict[str, Any] = {"ok": True, "id": row.id, "outcome": row.outcome}
    if user.extension:
        notifier.dismiss(linkedid, extension=user.extension)
    return jsonify(body), 201


# -- unknown caller: quick create ----------------------------------------------------------


@bp.post("/patients")
@role_required("operator")
def create_patient() -> tuple[Response, int]:
    """Create a patient from the "new caller" card; return the card as a known patient.

    Form: ``full_name`` (required), ``phone`` (any usual form, stored in E.164),
    ``birth_date`` (optional), ``note`` (optional), ``linkedid`` (the call whose card it is:
    the live pop is updated, so a reload or another ringing phone shows the patient too).
    400 with a message in Russian for bad input; 409 when the number already has a patient.
    """
    from web import db, notifier_for
    from web.realtime.cards import load_pop_content

    user = _operator()
    form = request.form
    try:
        birth_date = parse_birth_date(form.get("birth_date", ""))
    except ValueError:
        return _error(400, BAD_DATE_FORMAT)
    now = datetime.now(UTC)
    try:
        with db().begin() as s:
            patient_id = store_create_patient(
                s,
                full_name=form.get("full_name", ""),
                phone=form.get("phone", ""),
                birth_date=birth_date,
                note=form.get("note", ""),
                author=user.username,
                at=now,
            )
    except PatientInputError as exc:
        status = 409 if exc.code == "phone_taken" else 400
        return _error(status, PATIENT_ERRORS.get(exc.code, str(exc)))
    phone = normalize_phone(form.get("phone", ""))
    with db()() as s:
        card, script = load_pop_content(s, caller=phone, now=now)
    _audit_card(patient_id)
    pop_payload = _update_live_pop(
        notifier_for(current_app), form.get("linkedid", ""), phone, card, script, user
    )
    body = {"ok": True, "patient_id": patient_id, "card": card, "script": script}
    body["pop"] = pop_payload
    return jsonify(body), 201


def _update_live_pop(
    notifier: Any,
    linkedid: str,
    phone: str | None,
    card: dict[str, Any],
    script: dict[str, Any] | None,
    user: UserView,
) -> dict[str, Any] | None:
    """Put the new card on the call's pop (if it is this caller's) and on every screen it is."""
    from web.extensions import socketio
    from web.realtime.notifier import OPERATOR_NS, ext_room

    pop = notifier.registry.get(linkedid) if linkedid else None
    if pop is None or normalize_phone(pop.caller) != phone:
        return None
    pop.card, pop.script = card, script
    screens = set(pop.ringing) | ({pop.answered_by} if pop.answered_by else set())
    for extension in sorted(screens - {user.extension}):
        socketio.emit("pop", pop.payload(extension), to=ext_room(extension), namespace=OPERATOR_NS)
    payload: dict[str, Any] = pop.payload(user.extension)
    return payload


def _audit_card(patient_id: int) -> None:
    """Record that the current operator was shown this patient's card (``web.audit``)."""
    from web.audit import audit_access

    audit_access("open_card", "patient", patient_id)


@bp.post("/card-opened")
@role_required("operator")
def card_opened() -> tuple[Response, int]:
    """The panel reports a known patient's card on its screen (a pop or a reload's sync).

    Recorded in the audit log only when the call's pop really is on this operator's screen
    (ringing or answered by their extension), with the patient the server put on it.
    """
    from web import notifier_for

    user = _operator()
    pop = notifier_for(current_app).registry.get(request.form.get("linkedid", ""))
    if pop is None or not user.extension:
        return _error(404, "Такого звонка нет на вашем экране.")
    if user.extension not in pop.ringing and user.extension != pop.answered_by:
        return _error(404, "Такого звонка нет на вашем экране.")
    patient = (pop.card or {}).get("patient") or {}
    if not patient.get("id"):
        return jsonify({"ok": True, "audited": False}), 200
    _audit_card(int(patient["id"]))
    return jsonify({"ok": True, "audited": True}), 201


# -- the operators' callback list ------------------------------------------------------------


@bp.get("/callbacks")
@role_required("operator")
def list_callbacks() -> Response | tuple[Response, int]:
    """Return this operator's due and upcoming callback tasks (the next day), with scripts."""
    from web import db

    user = _operator()
    if not user.extension:
        return _error(400, "У вашей учётной записи нет добавочного номера.")
    now = datetime.now(UTC)
    with db()() as s:
        items = callbacks.list_operator_callbacks(
            s, extension=user.extension, now=now, horizon=timedelta(days=1)
        )
        playbook = load_playbook(s) if items else None
        body = [
            callback_dict(
                item,
                script=script_for(
                    s, phone=item.phone, reason=item.reason, now=now, playbook=playbook
                ),
            )
            for item in items
        ]
    return jsonify({"items": body})


@bp.post("/callbacks/<int:task_id>/<action>")
@role_required("operator")
def callback_action(task_id: int, action: str) -> tuple[Response, int]:
    """``take`` (call it now, this operator's phone first), ``snooze`` (``until``, ISO time
    with offset) or ``close`` (``reason``) one task; every operator's list refreshes.

    409 when the task is no longer available (taken by another operator, closed, dialled).
    """
    from web import db

    user = _operator()
    if not user.extension:
        return _error(400, "У вашей учётной записи нет добавочного номера.")
    now = datetime.now(UTC)
    form = request.form
    try:
        with db().begin() as s:
            if action == "take":
                callbacks.take_task(s, task_id, extension=user.extension, by=user.username, now=now)
            elif action == "snooze":
                try:
                    until = parse_until(form.get("until", ""))
                except ValueError:
                    return _error(400, "Укажите время, до которого отложить звонок.")
                callbacks.snooze_task(s, task_id, until=until, by=user.username, now=now)
            elif action == "close":
                reason = form.get("reason", "")
                if reason not in callbacks.OPERATOR_CLOSE_REASONS:
                    return _error(400, "Выберите причину закрытия из списка.")
                callbacks.close_task_by_operator(
                    s, task_id, reason=reason, by=user.username, now=now
                )
            else:
                return _error(404, "Неизвестное действие.")
    except callbacks.TaskUnavailable:
        _callbacks_changed(task_id)
        return _error(409, "Задачу уже взял другой оператор, закрыли или по ней уже звонят.")
    except callbacks.BadTaskRequest as exc:
        return _error(400, _bad_task_message(action, exc))
    _callbacks_changed(task_id)
    message = None
    if action == "take":
        message = _dial(task_id)
    return jsonify({"ok": True, "task_id": task_id, "action": action, "message": message}), 202


@bp.post("/call")
@role_required("operator")
def click_to_call() -> tuple[Response, int]:
    """Call ``phone`` now from the card: this operator's phone rings first, then the patient's
    (the dialer's consent and working-hours checks apply; the result is kept on the task)."""
    from web import db

    user = _operator()
    if not user.extension:
        return _error(400, "У вашей учётной записи нет добавочного номера.")
    now = datetime.now(UTC)
    try:
        with db().begin() as s:
            item = callbacks.request_call(
                s,
                phone=request.form.get("phone", ""),
                extension=user.extension,
                by=user.username,
                now=now,
            )
            task_id = item.task_id
    except callbacks.TaskUnavailable:
        return _error(409, "По этому номеру уже звонят или задачу взял другой оператор.")
    except callbacks.BadTaskRequest:
        return _error(400, "На этот номер позвонить нельзя: номер не распознан.")
    _callbacks_changed(task_id)
    return jsonify({"ok": True, "task_id": task_id, "message": _dial(task_id)}), 202


def _dial(task_id: int) -> str | None:
    """Ask the dialer to call the task now; say so when it could not be asked."""
    from callcenter.dialer.on_demand import request_dial
    from web import settings

    try:
        request_dial(settings(), task_id)
    except Exception:
        # The task is taken and due now: the next sweep dials it to this operator anyway.
        log.exception("dial-now request for task %s not queued", task_id)
        return "Звонок начнётся в течение минуты (очередь заданий недоступна)."
    return None


def _callbacks_changed(task_id: int) -> None:
    """Tell every operator's panel to reload its callback list."""
    from web.extensions import socketio
    from web.realtime.notifier import OPERATOR_NS

    socketio.emit("callbacks_changed", {"task_id": task_id}, namespace=OPERATOR_NS)


def _bad_task_message(action: str, exc: Exception) -> str:
    if action == "snooze":
        return "Отложить можно только на время в будущем."
    if action == "close":
        return "Выберите причину закрытия из списка."
    log.info("bad callback request: %s", exc)
    return "Запрос не принят."


def _operator() -> UserView:
    user = current_user()
    assert user is not None  # role_required
    return user
