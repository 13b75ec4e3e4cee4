"""Per-call and per-operator state the tracker keeps while calls are live (pure, no I/O).

One ``Call`` per Linkedid holds its ``Channel``s (by Uniqueid) and the administrators' ``Leg``s.
The tracker's handlers write the facts in; ``build_record`` turns a finished call into a
``CallRecord``; ``Operator.compute_status`` folds what we know of an administrator into one status.
Nothing here reads a clock: every time comes from an event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callcenter.calls import disposition as rules
from callcenter.calls.disposition import Style
from callcenter.calls.effects import OperatorStatus
from callcenter.calls.model import AgentLeg, CallRecord, Direction, Disposition

#: Values Asterisk writes for "no caller ID" (QueueEntry writes ``unknown``).
NO_NUMBER = frozenset({"", "<unknown>", "unknown", "<Unknown>"})

_UNIQUE_SUFFIX = re.compile(r"-[0-9a-fA-F]{6,}$")


def real_value(value: str | None) -> str | None:
    """Return a caller-ID value, or None for Asterisk's placeholders.

    >>> real_value("<unknown>"), real_value("anonymous"), real_value("+79161234567")
    (None, 'anonymous', '+79161234567')
    """
    if value is None or value in NO_NUMBER:
        return None
    return value


def extension_of(name: str | None) -> str | None:
    """Return the extension in a channel name, queue interface or device.

    >>> [extension_of(n) for n in ("Local/101@agents/n", "PJSIP/101", "SIP/102",
    ...  "PJSIP/101-0000001a", "Local/103@agents-00000003;1", "PJSIP/trunk-00000017")]
    ['101', '101', '102', '101', '103', 'trunk']
    """
    if not name:
        return None
    rest = name.split("/", 1)[1] if "/" in name else name
    rest = rest.split(";", 1)[0]
    if "@" in rest:
        return rest.split("@", 1)[0] or None
    rest = rest.split("/", 1)[0]
    return _UNIQUE_SUFFIX.sub("", rest) or None


def number_from_dialstring(dialstring: str | None) -> str | None:
    """Return the number an originate or Dial() string calls (the part before ``@``).

    >>> [number_from_dialstring(s) for s in ("79031234567@pstn/n", "Local/79265550102@pstn/n",
    ...  "trunk/sip:89161234567@10.0.0.1", "101")]
    ['79031234567', '79265550102', '89161234567', '101']
    """
    if not dialstring:
        return None
    user = dialstring.split("@", 1)[0]
    user = user.rsplit("/", 1)[-1]
    user = user.rsplit(":", 1)[-1]
    return user or None


def device_of(interface: str) -> str:
    """Return the device name Asterisk reports in DeviceStateChange for a member interface.

    >>> device_of("Local/101@agents/n"), device_of("PJSIP/101")
    ('Local/101@agents', 'PJSIP/101')
    """
    parts = interface.split("/", 2)
    return "/".join(parts[:2])


def local_partner_name(name: str) -> str | None:
    """Return the other half's name of a Local channel pair (``;1`` ↔ ``;2``), else None.

    >>> local_partner_name("Local/101@agents-00000001;1"), local_partner_name("PJSIP/101-0001")
    ('Local/101@agents-00000001;2', None)
    """
    if name.endswith(";1"):
        return name[:-1] + "2"
    if name.endswith(";2"):
        return name[:-1] + "1"
    return None


def basename(path: str | None) -> str | None:
    """Return the file name of a recording path (MIXMONITOR_FILENAME carries the full path).

    >>> basename("/var/spool/asterisk/monitor/q-1.wav")
    'q-1.wav'
    """
    if not path:
        return None
    return path.rsplit("/", 1)[-1] or None


def parse_duration(text: str | None) -> float:
    """Return seconds from CoreShowChannel's ``HH:MM:SS`` Duration (0 when unreadable).

    >>> parse_duration("00:01:12"), parse_duration("bad")
    (72.0, 0.0)
    """
    if not text:
        return 0.0
    try:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        return 0.0
    return seconds


@dataclass(slots=True, eq=False)
class Leg:
    """An administrator's phone in a call: rung by the queue, a Dial() or a transfer."""

    uniqueid: str
    agent: str | None
    agent_name: str | None
    rang_at: float
    from_queue: bool = False
    answered_at: float | None = None
    ended_at: float | None = None
    #: None while ringing; then "answered" | "no_answer" | "busy" | "cancelled" | …
    outcome: str | None = None

    def to_model(self) -> AgentLeg:
        outcome = self.outcome or "cancelled"
        answered, ended = self.answered_at, self.ended_at
        return AgentLeg(self.agent or "", self.agent_name, self.rang_at, answered, ended, outcome)


@dataclass(slots=True, eq=False)
class Channel:
    """One Asterisk channel of a call, keyed by its Uniqueid."""

    uniqueid: str
    name: str
    call: Call
    created_at: float
    #: Created in state Ring (4): a channel coming *into* the PBX (a trunk call, a Local ;2).
    incoming: bool = False
    #: The Exten it was created for (the DID of an inbound trunk channel).
    exten: str | None = None
    leg: Leg | None = None
    bridge: str | None = None
    hangup_requested_at: float | None = None
    hungup_at: float | None = None
    cause: int | None = None


@dataclass(slots=True, eq=False)
class Call:
    """Everything the tracker learnt about one call (one Linkedid) so far."""

    linkedid: str
    start_ts: float
    channels: dict[str, Channel] = field(default_factory=dict)
    by_name: dict[str, Channel] = field(default_factory=dict)
    live: int = 0
    last_event_ts: float = 0.0
    last_hangup_at: float | None = None
    started: bool = False  # CallStarted emitted
    provisional: bool = False  # keyed by a Uniqueid until an event names its Linkedid
    reported_caller: str | None = None  # the caller number effects have carried so far
    outbound: bool = False
    caller: str | None = None
    caller_name: str | None = None
    #: Inbound: the clinic-side channel (the trunk channel the dialplan runs on; the queue caller).
    clinic: Channel | None = None
    clinic_confirmed: bool = False  # from a queue event or a Dial(), not just a guess
    # Queue
    queue: str | None = None
    queue_position: int | None = None
    in_queue: bool = False
    queue_joined_at: float | None = None
    queue_exit: str | None = None  # rules.ABANDON | rules.TIMEOUT (from QueueCallerAbandon)
    queue_exit_at: float | None = None
    queue_leave: str | None = None  # the same reading, taken at QueueCallerLeave
    queue_leave_at: float | None = None
    queue_status: str | None = None  # QUEUESTATUS variable, when dialplan events are on
    caller_hangup_at: float | None = None
    # Answer
    answered_at: float | None = None
    connected_at: float | None = None  # AgentConnect
    agent: str | None = None
    agent_name: str | None = None
    last_agent: str | None = None
    direct_status: str | None = None  # DialStatus of the last Dial() of an administrator
    legs: dict[str, Leg] = field(default_factory=dict)
    transfers: list[str] = field(default_factory=list)
    transfer_keys: set[str] = field(default_factory=set)
    recording: str | None = None
    # Outbound (an Originate)
    callback_task: str | None = None
    action_id: str | None = None
    style: Style | None = None
    orig: Channel | None = None  # the originated channel
    orig_dialstring: str | None = None
    orig_number: str | None = None
    orig_dial_at: float | None = None
    orig_answered_at: float | None = None
    orig_failed: bool = False
    orig_reason: str | None = None
    orig_exten: str | None = None  # Exten of the OriginateResponse: where the answered leg goes
    operator_leg: Leg | None = None  # operator_first: the operator's phone (the originated leg)
    patient_uid: str | None = None  # operator_first: the patient's leg dialled by the operator
    patient_number: str | None = None
    patient_dial_at: float | None = None
    patient_dial_end_at: float | None = None
    patient_answered_at: float | None = None
    patient_hungup_at: float | None = None

    @property
    def direction(self) -> Direction:
        return Direction.OUTBOUND if self.outbound else Direction.INBOUND

    def main_channel(self) -> Channel | None:
        """Return the channel whose life is the call's: the clinic channel or the originated one."""
        if self.outbound:
            return self.orig or self.first_channel()
        return self.clinic or self.first_channel()

    def first_channel(self) -> Channel | None:
        return next(iter(self.channels.values()), None)

    def partner(self, channel: Channel) -> Channel | None:
        """Return the other half of a Local pair (only Local channels have one)."""
        name = local_partner_name(channel.name)
        return self.by_name.get(name) if name else None

    def is_caller_side(self, channel: Channel) -> bool:
        """Tell whether a channel carries the caller (the clinic channel or its Local half)."""
        if channel.leg is not None:
            return False
        main = self.orig if self.outbound else self.clinic
        if main is None:
            return True
        return channel is main or self.partner(channel) is main

    def best_caller(self) -> str | None:
        """Return the patient's number: the caller (inbound) or the number called (outbound)."""
        if not self.outbound:
            return self.caller
        if self.style is Style.OPERATOR_FIRST:
            if self.patient_number:
                return self.patient_number
            if self.orig_exten and rules.looks_external(self.orig_exten):
                return self.orig_exten
            return None
        if self.style is None and not rules.looks_external(self.orig_number):
            return None  # maybe the operator's extension: wait until the style is known
        return self.orig_number


@dataclass(slots=True, eq=False)
class Operator:
    """What the tracker knows about one administrator (by extension)."""

    agent: str
    name: str | None = None
    ringing: set[str] = field(default_factory=set)
    talking: set[str] = field(default_factory=set)
    paused: bool = False
    device: OperatorStatus | None = None  # last state of the phone (QueueMemberStatus/device)
    device_seq: int = 0
    legs_seq: int = 0
    wrapup_since: float | None = None
    status: OperatorStatus | None = None  # last status reported

    def compute_status(self, ts: float, wrapup_s: float) -> tuple[OperatorStatus, float | None]:
        """Return the status (and wrap-up end) from the queue's, the calls' and the phone's view.

        Calls we follow beat the phone's state: a Local member reports "in use" while it only
        rings, and its "in use" lingers a moment after a cancelled ring, so the phone's state
        counts only when it was reported after the last change of this operator's legs.
        """
        if self.paused:
            return OperatorStatus.PAUSED, None
        if self.talking:
            return OperatorStatus.ON_CALL, None
        if self.ringing:
            return OperatorStatus.RINGING, None
        device = self.device
        if device is OperatorStatus.UNAVAILABLE:
            return device, None
        fresh = self.device_seq > self.legs_seq
        if fresh and device in (OperatorStatus.ON_CALL, OperatorStatus.RINGING):
            return device, None
        if self.wrapup_since is not None:
            until = self.wrapup_since + wrapup_s
            if ts < until:
                return OperatorStatus.WRAP_UP, until
            self.wrapup_since = None
        return OperatorStatus.FREE, None


def _round(value: float) -> float:
    return round(max(value, 0.0), 1)


def build_record(call: Call) -> CallRecord:
    """Return the finished call's record (times per each trace's ``definitions``)."""
    if call.outbound:
        return _build_outbound(call)
    return _build_inbound(call)


def _ts(value: float) -> float:
    # Asterisk stamps events to the microsecond; records keep milliseconds like the CDRs.
    return round(value, 3)


def _build_inbound(call: Call) -> CallRecord:
    main = call.main_channel()
    start = main.created_at if main is not None else call.start_ts
    end = (main.hungup_at if main is not None else None) or call.last_hangup_at or start
    answered_at = call.connected_at or call.answered_at
    answered = answered_at is not None
    queued = call.queue_joined_at is not None
    disposition = rules.decide_inbound(
        answered=answered,
        queued=queued,
        queue_exit=call.queue_exit or call.queue_leave,
        queue_status=call.queue_status,
        dial_status=call.direct_status,
    )
    queue_wait: float | None = None
    if call.queue_joined_at is not None:
        left = (
            call.connected_at
            or call.queue_exit_at
            or call.queue_leave_at
            or (call.answered_at if answered else None)
            or end
        )
        queue_wait = _round(left - call.queue_joined_at)
    if answered_at is not None:
        wait_s, talk_s = _round(answered_at - start), _round(end - answered_at)
    else:
        wait_s, talk_s = _round(end - start), 0.0
    return CallRecord(
        linkedid=call.linkedid,
        caller=call.caller,
        direction=Direction.INBOUND,
        disposition=disposition,
        queue=call.queue,
        agent=call.agent if answered else None,
        wait_s=wait_s,
        talk_s=talk_s,
        queue_wait_s=queue_wait,
        start_ts=_ts(start),
        end_ts=_ts(end),
        recording=basename(call.recording) if answered else None,
        callback_task=None,
        caller_name=call.caller_name,
        did=main.exten if main is not None else None,
        agent_name=call.agent_name if answered else None,
        last_agent=(call.last_agent or call.agent) if answered else None,
        transfers=tuple(call.transfers),
        legs=tuple(leg.to_model() for leg in call.legs.values() if leg.agent),
        hangup_cause=main.cause if main is not None else None,
    )


def _build_outbound(call: Call) -> CallRecord:
    start = call.start_ts
    end = call.last_hangup_at or start
    style = call.style or rules.decide_style(call.orig_number, None)
    agent: str | None = None
    agent_name: str | None = None
    talk_s = 0.0
    if style is Style.OPERATOR_FIRST:
        op = call.operator_leg
        if op is not None and op.answered_at is not None:
            agent, agent_name = op.agent, op.agent_name
        patient_answered = call.patient_answered_at is not None
        disposition = rules.decide_outbound(patient_answered=patient_answered, agent=agent)
        if call.patient_dial_at is not None:
            dial_end = call.patient_dial_end_at or call.patient_hungup_at or end
            wait_s = _round(dial_end - call.patient_dial_at)
        else:
            wait_s = _round(end - start)
        if call.patient_answered_at is not None:
            talk_s = _round((call.patient_hungup_at or end) - call.patient_answered_at)
    else:
        answered = [leg for leg in call.legs.values() if leg.answered_at is not None]
        if answered:
            agent, agent_name = answered[0].agent, answered[0].agent_name
        patient_answered = call.orig_answered_at is not None and not call.orig_failed
        disposition = rules.decide_outbound(patient_answered=patient_answered, agent=agent)
        if call.orig_answered_at is not None and patient_answered:
            wait_s = _round(call.orig_answered_at - start)
            talk_s = _round(end - call.orig_answered_at)
        else:
            wait_s = _round(end - start)
    ok = disposition is Disposition.OUTBOUND_ANSWERED
    main = call.main_channel()
    caller = call.best_caller()
    return CallRecord(
        linkedid=call.linkedid,
        caller=caller,
        direction=Direction.OUTBOUND,
        disposition=disposition,
        queue=None,
        agent=agent,
        wait_s=wait_s,
        talk_s=talk_s,
        queue_wait_s=None,
        start_ts=_ts(start),
        end_ts=_ts(end),
        recording=basename(call.recording) if ok else None,
        callback_task=call.callback_task,
        caller_name=None,
        did=caller,
        agent_name=agent_name,
        last_agent=agent,
        transfers=tuple(call.transfers),
        legs=tuple(
            leg.to_model()
            for leg in ([call.operator_leg] if call.operator_leg else []) + list(call.legs.values())
            if leg.agent
        ),
        style=str(style),
        hangup_cause=main.cause if main is not None else None,
    )
