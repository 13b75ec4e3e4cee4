"""AMI actions as plain dicts, built by pure functions (no I/O, no panoramisk).

The dialer checks its rules first, then builds the Originate here and hands it to the client.
Values are checked before anything is sent: a CR/LF would end the AMI frame early, and a comma
inside ``Variable`` would split one channel variable into two.
"""

from __future__ import annotations

import uuid
from typing import Literal

OriginateStyle = Literal["operator_first", "patient_first"]

#: Channel variables set on every originated call; the tracker and the dialer read them back.
PATIENT_VARIABLE = "PATIENT"
CALLBACK_TASK_VARIABLE = "CALLBACK_TASK"


def new_action_id(prefix: str) -> str:
    """Return an ActionID that no other action of any process will carry.

    >>> new_action_id("cb-1001").startswith("cb-1001-")
    True
    """
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _check_value(name: str, value: str, *, forbid: str = "\r\n") -> str:
    if not value:
        raise ValueError(f"{name} must not be empty")
    bad = [c for c in forbid if c in value]
    if bad:
        raise ValueError(f"{name} must not contain {''.join(bad)!r}: {value!r}")
    return value


def build_originate(
    *,
    style: OriginateStyle,
    extension: str,
    patient_number: str,
    task_id: str,
    action_id: str,
    caller_id: str | None = None,
    timeout_s: float = 30.0,
    operator_channel: str = "Local/{extension}@operator/n",
    patient_channel: str = "Local/{number}@pstn/n",
    outbound_context: str = "outbound",
    callback_context: str = "callback",
) -> dict[str, str]:
    """Build an asynchronous Originate that rings either the operator or the patient first.

    ``operator_first`` (click-to-call) rings ``operator_channel``; once the operator answers,
    ``outbound_context`` dials the patient. ``patient_first`` (automatic callback) rings
    ``patient_channel``; once the patient answers, ``callback_context`` dials the operator.
    Both carry ``Variable: PATIENT=…,CALLBACK_TASK=…`` and the given unique ActionID, which
    the OriginateResponse event repeats.

    >>> a = build_originate(style="patient_first", extension="101", patient_number="79031234567",
    ...                     task_id="1002", action_id="cb-1002", timeout_s=20)
    >>> a["Channel"], a["Context"], a["Exten"], a["Timeout"], a["ActionID"]
    ('Local/79031234567@pstn/n', 'callback', '101', '20000', 'cb-1002')
    >>> a["Variable"]
    'PATIENT=79031234567,CALLBACK_TASK=1002'
    >>> build_originate(style="operator_first", extension="101", patient_number="89161234567",
    ...                 task_id="1001", action_id="cb-1001")["Channel"]
    'Local/101@operator/n'
    >>> build_originate(style="patient_first", extension="101", patient_number="7903",
    ...                 task_id="1,2", action_id="x")
    Traceback (most recent call last):
    ...
    ValueError: task_id must not contain ',': '1,2'

    :raises ValueError: for an unknown style or a value that would break the AMI frame.
    """
    if style not in ("operator_first", "patient_first"):
        raise ValueError(f"unknown originate style {style!r}")
    for_variable = "\r\n,="
    _check_value("extension", extension, forbid=for_variable + "@/")
    _check_value("patient_number", patient_number, forbid=for_variable + "@/")
    _check_value("task_id", task_id, forbid=for_variable)
    _check_value("action_id", action_id)
    if caller_id is not None:
        _check_value("caller_id", caller_id)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
    if style == "operator_first":
        channel = operator_channel.format(extension=extension, number=patient_number)
        context, exten = outbound_context, patient_number
    else:
        channel = patient_channel.format(extension=extension, number=patient_number)
        context, exten = callback_context, extension
    action = {
        "Action": "Originate",
        "ActionID": action_id,
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": "1",
        "Timeout": str(round(timeout_s * 1000)),
        "Variable": f"{PATIENT_VARIABLE}={patient_number},{CALLBACK_TASK_VARIABLE}={task_id}",
        # Async: the reply comes at once; the outcome follows as an OriginateResponse event.
        "Async": "true",
    }
    if caller_id is not None:
        action["CallerID"] = caller_id
    return action


def build_queue_status(*, action_id: str, queue: str | None = None) -> dict[str, str]:
    """Build a QueueStatus (QueueParams, QueueMember, QueueEntry … QueueStatusComplete).

    >>> build_queue_status(action_id="q-1")
    {'Action': 'QueueStatus', 'ActionID': 'q-1'}
    >>> build_queue_status(action_id="q-2", queue="reception")["Queue"]
    'reception'
    """
    action = {"Action": "QueueStatus", "ActionID": _check_value("action_id", action_id)}
    if queue is not None:
        action["Queue"] = _check_value("queue", queue)
    return action


def build_core_show_channels(*, action_id: str) -> dict[str, str]:
    """Build a CoreShowChannels (CoreShowChannel … CoreShowChannelsComplete).

    >>> build_core_show_channels(action_id="c-1")
    {'Action': 'CoreShowChannels', 'ActionID': 'c-1'}
    """
    return {"Action": "CoreShowChannels", "ActionID": _check_value("action_id", action_id)}
