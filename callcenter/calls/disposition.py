"""Pure rules: how a call ended, from what it went through.

The tracker collects facts (answered? queued? how the queue let go? the last DialStatus?) and
asks these functions; nothing here knows about AMI events.
"""

from __future__ import annotations

import re
from enum import StrEnum

from callcenter.calls.model import Disposition

#: How a caller left a queue without an administrator.
ABANDON = "abandon"  # the caller hung up while queued
TIMEOUT = "timeout"  # Queue() gave up and the dialplan went on

#: QUEUESTATUS values that mean Queue() returned without connecting the caller.
QUEUE_GAVE_UP = frozenset(
    {"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"}
)

_EXTERNAL = re.compile(r"\+?\d{7,}")


class Style(StrEnum):
    """Who an outbound callback rings first."""

    OPERATOR_FIRST = "operator_first"  # click-to-call: the operator's phone, then the patient
    PATIENT_FIRST = "patient_first"  # automatic callback: the patient, then an operator


def classify_queue_exit(*, caller_hung_up: bool) -> str:
    """Tell a real abandon from a queue timeout when the queue lets a caller go.

    Asterisk 22 emits ``QueueCallerAbandon`` for both. A caller who hung up has a hang-up
    request on their channel *before* it; on a timeout the channel is still up.

    >>> classify_queue_exit(caller_hung_up=True), classify_queue_exit(caller_hung_up=False)
    ('abandon', 'timeout')
    """
    return ABANDON if caller_hung_up else TIMEOUT


def decide_inbound(
    *,
    answered: bool,
    queued: bool,
    queue_exit: str | None,
    queue_status: str | None,
    dial_status: str | None,
) -> Disposition:
    """Return the disposition of an inbound call.

    - an administrator answered (queue connect or a Dial() answered) → ``answered``;
    - the caller was queued: ``QUEUESTATUS`` of a Queue() that gave up → ``queue_timeout``;
      otherwise the way the queue let go (hang-up first → ``abandoned``, else ``queue_timeout``);
      queued with no exit seen at all means the caller hung up → ``abandoned``;
    - the queue refused the caller (full, empty) without a join → ``queue_timeout``;
    - a direct line was dialled: ``BUSY`` → ``busy``; ``NOANSWER`` or ``CANCEL`` (the caller gave
      up while it rang) → ``no_answer``; ``CONGESTION``/``CHANUNAVAIL``/… → ``failed``;
    - none of that: the caller hung up during the greeting, IVR or a closed-hours message →
      ``ivr_abandoned``.

    >>> decide_inbound(answered=False, queued=True, queue_exit="timeout", queue_status=None,
    ...                dial_status=None)
    <Disposition.QUEUE_TIMEOUT: 'queue_timeout'>
    >>> decide_inbound(answered=False, queued=False, queue_exit=None, queue_status=None,
    ...                dial_status=None)
    <Disposition.IVR_ABANDONED: 'ivr_abandoned'>
    """
    if answered:
        return Disposition.ANSWERED
    if queued:
        if queue_status in QUEUE_GAVE_UP:
            return Disposition.QUEUE_TIMEOUT
        if queue_exit == TIMEOUT:
            return Disposition.QUEUE_TIMEOUT
        return Disposition.ABANDONED
    if queue_status in QUEUE_GAVE_UP:
        return Disposition.QUEUE_TIMEOUT
    if dial_status is not None:
        if dial_status == "BUSY":
            return Disposition.BUSY
        if dial_status in ("NOANSWER", "CANCEL", "ANSWER"):
            return Disposition.NO_ANSWER
        return Disposition.FAILED
    return Disposition.IVR_ABANDONED


def decide_outbound(*, patient_answered: bool, agent: str | None) -> Disposition:
    """Return the disposition of a callback: answered only when the patient and an operator talked.

    >>> decide_outbound(patient_answered=True, agent="101")
    <Disposition.OUTBOUND_ANSWERED: 'outbound_answered'>
    >>> decide_outbound(patient_answered=True, agent=None)
    <Disposition.OUTBOUND_FAILED: 'outbound_failed'>
    """
    if patient_answered and agent is not None:
        return Disposition.OUTBOUND_ANSWERED
    return Disposition.OUTBOUND_FAILED


def looks_external(number: str | None) -> bool:
    """Tell a public phone number (7+ digits) from an internal extension or endpoint name.

    >>> looks_external("+79161234567"), looks_external("89161234567"), looks_external("101")
    (True, True, False)
    """
    return bool(number) and _EXTERNAL.fullmatch(number or "") is not None


def decide_style(
    first: str | None, second: str | None, agents: frozenset[str] | set[str] = frozenset()
) -> Style:
    """Tell which callback style an Originate used from the first and second numbers it rang.

    ``first`` is the originated channel's number, ``second`` what it dialled after answering.
    An administrator's known extension decides; otherwise an internal extension is the short,
    non-public number (a public number has 7+ digits).

    >>> decide_style("101", "89161234567"), decide_style("79031234567", "101")
    (<Style.OPERATOR_FIRST: 'operator_first'>, <Style.PATIENT_FIRST: 'patient_first'>)
    >>> decide_style("79265550102", None)
    <Style.PATIENT_FIRST: 'patient_first'>
    """
    if first is not None and first in agents:
        return Style.OPERATOR_FIRST
    if second is not None and second in agents:
        return Style.PATIENT_FIRST
    if first is not None and not looks_external(first):
        return Style.OPERATOR_FIRST
    return Style.PATIENT_FIRST
