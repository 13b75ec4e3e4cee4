"""AMI events → call effects: a pure state machine (no I/O, no clock).

``CallTracker.feed(event)`` takes one ``AmiEvent`` and returns what happened because of it
(``CallStarted``, ``AgentRinging``, ``CallAnswered``, ``CallEnded`` …). Calls are keyed by
Linkedid, channels by Uniqueid; names are only read for extensions (``PJSIP/101-…`` → ``101``)
and to pair the two halves of a Local channel (``…;1`` ↔ ``…;2``). Every time comes from the
event (``Timestamp``, or the receive time without one). ``HANDLERS`` at the end lists every
event handled; anything else is ignored on purpose.

How a call is recognised, from Asterisk's structure rather than the dialplan's names:

- **Inbound**: a new Linkedid. Its *clinic channel* (the trunk side the dialplan runs on) is the
  queue events' ``Channel``, or the channel that Dial()s an administrator, or until then the
  first channel created in state Ring (a channel coming *into* the PBX).
- **Outbound**: an Originate. Its channel gets ``CALLBACK_TASK`` (set by our dialer), or an
  ``OriginateResponse`` names it (or, failing with ``Uniqueid: <unknown>``, its dial string).
  The originate's own dial is the ``DialBegin`` without ``Channel``. Which side it rings first
  (operator or patient) is told by the numbers (``disposition.decide_style``).
- **Administrators' legs**: ``AgentCalled`` destinations (agent = the queue ``Interface``) and
  channels Dial()ed from the call (agent = the dialled channel's extension). A Local half
  belongs to the leg of its other half; a channel that dials a colleague (the consultation
  channel of an attended transfer) leads to that colleague's leg.
- **The end**: inbound, when the clinic channel hangs up (the Local halves and phones that
  follow are stragglers); outbound, when the last channel of the Linkedid hangs up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callcenter.calls import disposition as rules
from callcenter.calls.disposition import Style
from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallerIdentified,
    CallLost,
    CallQueued,
    CallStarted,
    CallTransferred,
    Effect,
    OperatorStateChanged,
    OperatorStatus,
)
from callcenter.calls.state import (
    Call,
    Channel,
    Leg,
    Operator,
    build_record,
    device_of,
    extension_of,
    number_from_dialstring,
    parse_duration,
    real_value,
)

if TYPE_CHECKING:  # the domain takes any AmiEvent-shaped object; no runtime tie to ami/
    from callcenter.ami.events import AmiEvent

log = logging.getLogger(__name__)

#: Channel variables worth a look; every other VarSet (about a third of all traffic) is dropped
#: on this one set lookup.
WATCHED_VARIABLES = frozenset(
    {"MIXMONITOR_FILENAME", "QUEUESTATUS", "CALLBACK_TASK", "CALLBACK_TASK_ID"}
)

#: DialEnd DialStatus → why a ringing administrator's phone stopped.
_STOP_REASON = {
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CANCEL": "cancelled",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
}

#: QueueMemberStatus ``Status`` (AST_DEVICE_*) → what the phone says about its user.
_MEMBER_STATUS = {
    "1": OperatorStatus.FREE,
    "2": OperatorStatus.ON_CALL,
    "3": OperatorStatus.ON_CALL,
    "4": OperatorStatus.UNAVAILABLE,
    "5": OperatorStatus.UNAVAILABLE,
    "6": OperatorStatus.RINGING,
    "7": OperatorStatus.ON_CALL,
    "8": OperatorStatus.ON_CALL,
}

#: DeviceStateChange ``State`` → the same.
_DEVICE_STATE = {
    "NOT_INUSE": OperatorStatus.FREE,
    "INUSE": OperatorStatus.ON_CALL,
    "BUSY": OperatorStatus.ON_CALL,
    "ONHOLD": OperatorStatus.ON_CALL,
    "RINGINUSE": OperatorStatus.ON_CALL,
    "RINGING": OperatorStatus.RINGING,
    "UNAVAILABLE": OperatorStatus.UNAVAILABLE,
    "INVALID": OperatorStatus.UNAVAILABLE,
}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@dataclass(slots=True)
class TrackerStats:
    """Counters a listener exposes: how much input the tracker could not place."""

    events: int = 0
    unknown_channel: int = 0  # an event about a channel we never saw created
    missing_headers: int = 0  # an event without the headers it needs


class CallTracker:
    """Follow every call and administrator from AMI events; return effects, do no I/O.

    ``wrapup_s`` is the queue's ``wrapuptime`` (Asterisk announces no event when wrap-up ends):
    with 0 an administrator goes straight from a queue call to free. ``agents`` lists known
    administrators' extensions up front (they are also learnt from queue events).

    A call's ``CallStarted`` may come twice when its direction turns out to be outbound after it
    was reported (an Originate without ``CALLBACK_TASK``): treat ``CallStarted`` as an update.
    """

    def __init__(self, *, wrapup_s: float = 0.0, agents: Iterable[str] = ()) -> None:
        self.wrapup_s = wrapup_s
        self.stats = TrackerStats()
        self._calls: dict[str, Call] = {}
        self._channels: dict[str, Channel] = {}  # live channels by Uniqueid
        self._bridges: dict[str, list[Channel]] = {}
        self._operators: dict[str, Operator] = {}
        self._agent_by_device: dict[str, str] = {}
        self._agents: set[str] = set(agents)
        self._seq = 0

    # ------------------------------------------------------------------ public API

    def feed(self, event: AmiEvent) -> list[Effect]:
        """Apply one AMI message and return the effects it caused (often none)."""
        handler = HANDLERS.get(event.name)
        if handler is None or event.kind != "event":
            return []
        self.stats.events += 1
        return handler(self, event)

    @property
    def live_calls(self) -> list[str]:
        """Return the Linkedids of the calls in progress."""
        return list(self._calls)

    def operator_status(self, agent: str) -> OperatorStatus | None:
        """Return the last status reported for an administrator's extension."""
        op = self._operators.get(agent)
        return op.status if op is not None else None

    def resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> list[Effect]:
        """Re-attach live calls after the AMI link came back; report those that ended meanwhile.

        ``channels`` are the ``CoreShowChannel`` list events, ``queue_entries`` the
        ``QueueEntry`` ones of a ``QueueStatus``, ``at`` Asterisk's time of the snapshot.
        A call we followed that is not in the snapshot ended while we were away: ``CallLost``
        (its outcome is unknown, none is guessed). A live call we did not know is rebuilt from
        the snapshot (queued, ringing or bridged), so its later events end it properly.
        """
        effects: list[Effect] = []
        snapshot: dict[str, list[AmiEvent]] = {}
        for ev in channels:
            uid = ev.get("Uniqueid")
            if not uid:
                self.stats.missing_headers += 1
                continue
            snapshot.setdefault(ev.get("Linkedid") or uid, []).append(ev)
        entries = {ev.get("Uniqueid"): ev for ev in queue_entries if ev.get("Uniqueid")}

        for linkedid, call in list(self._calls.items()):
            rows = snapshot.get(linkedid)
            if rows is None:
                self._lose(call, at, effects)
                continue
            alive = {ev.get("Uniqueid") for ev in rows}
            for ch in list(call.channels.values()):
                if ch.hungup_at is None and ch.uniqueid not in alive:
                    self._vanish(ch, at, effects)
            for ev in rows:
                if ev.get("Uniqueid") not in call.channels:
                    self._attach(call, ev, at)
        for linkedid, rows in snapshot.items():
            if linkedid not in self._calls:
                self._rebuild(linkedid, rows, entries, at, effects)
        return effects

    # ------------------------------------------------------------------ channels and calls

    def _on_newchannel(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        uid = h.get("Uniqueid")
        if not uid:
            self.stats.missing_headers += 1
            return []
        if uid in self._channels:
            return []  # the same Newchannel twice
        ts = e.timestamp
        linkedid = h.get("Linkedid")
        call = self._calls.get(linkedid or uid)
        if call is None:
            # Without a Linkedid the channel starts a call of its own until a later event
            # names the call it belongs to (see _known).
            call = self._calls[linkedid or uid] = Call(linkedid or uid, ts)
            call.provisional = not linkedid
        ch = self._add_channel(call, uid, h.get("Channel") or "", ts, h.get("ChannelState") == "4")
        ch.exten = h.get("Exten") or None
        effects: list[Effect] = []
        number = real_value(h.get("CallerIDNum"))
        if number is not None:
            self._caller_seen(call, ch, number, h.get("CallerIDName"), ts, effects)
        return effects

    def _add_channel(self, call: Call, uid: str, name: str, ts: float, incoming: bool) -> Channel:
        ch = Channel(uid, name, call, ts, incoming)
        call.channels[uid] = ch
        if name:
            call.by_name[name] = ch
        call.live += 1
        call.last_event_ts = ts
        self._channels[uid] = ch
        partner = call.partner(ch)
        if partner is not None and partner.leg is not None:
            ch.leg = partner.leg  # the other half of an administrator's Local pair
        if incoming and call.clinic is None and ch.leg is None:
            call.clinic = ch  # a guess until a queue event or a Dial() confirms it
        return ch

    def _known(
        self, h: Mapping[str, str], uid_key: str = "Uniqueid", link_key: str = "Linkedid"
    ) -> Channel | None:
        """Return a live channel by Uniqueid, moving it to its call once its Linkedid shows."""
        ch = self._channels.get(h.get(uid_key) or "")
        if ch is not None and ch.call.provisional:
            self._relink(ch, h.get(link_key))
        return ch

    def _relink(self, ch: Channel, linkedid: str | None) -> None:
        old = ch.call
        if not linkedid:
            return
        old.provisional = False
        if linkedid == old.linkedid:
            return
        del self._calls[old.linkedid]
        target = self._calls.get(linkedid)
        if target is None:
            old.linkedid = linkedid
            self._calls[linkedid] = old
            return
        for moved in old.channels.values():
            moved.call = target
            target.channels[moved.uniqueid] = moved
            if moved.name:
                target.by_name[moved.name] = moved
            if moved.hungup_at is None:
                target.live += 1
            if target.clinic is None and moved.incoming and moved.leg is None:
                target.clinic = moved
        target.start_ts = min(target.start_ts, old.start_ts)
        if target.caller is None and old.caller is not None and old.clinic is target.clinic:
            target.caller, target.caller_name = old.caller, old.caller_name

    def _on_newcallerid(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        ch = self._known(h)
        if ch is None:
            return []
        number = real_value(h.get("CallerIDNum"))
        if number is None:
            return []
        effects: list[Effect] = []
        self._caller_seen(ch.call, ch, number, h.get("CallerIDName"), e.timestamp, effects)
        return effects

    def _caller_seen(
        self,
        call: Call,
        ch: Channel,
        number: str,
        name: str | None,
        ts: float,
        effects: list[Effect],
    ) -> None:
        # The caller's number is the clinic channel's: other channels show the clinic's own
        # number, an extension or (Local halves) a copy.
        if call.outbound or ch.leg is not None or call.caller is not None:
            return
        if ch is not call.clinic:
            return
        call.caller = number
        call.caller_name = real_value(name)
        if call.started:
            effects.append(CallerIdentified(call.linkedid, number, call.caller_name, ts))
        elif not call.provisional:
            self._start(call, ts, effects)

    def _confirm_clinic(self, call: Call, ch: Channel, e: AmiEvent) -> None:
        if call.outbound or ch.leg is not None:
            return
        if not call.clinic_confirmed:
            call.clinic = ch
            call.clinic_confirmed = True
        if call.caller is None and ch is call.clinic:
            number = real_value(e.get("CallerIDNum"))
            if number is not None:
                call.caller = number
                call.caller_name = real_value(e.get("CallerIDName"))

    def _start(self, call: Call, ts: float, effects: list[Effect]) -> None:
        if call.started:
            return
        call.started = True
        call.provisional = False
        caller = call.best_caller()
        call.reported_caller = caller
        if call.outbound:
            effects.append(CallStarted(call.linkedid, call.direction, caller, None, caller, ts))
        else:
            did = call.clinic.exten if call.clinic is not None else None
            effects.append(
                CallStarted(call.linkedid, call.direction, caller, call.caller_name, did, ts)
            )

    def _caller_update(self, call: Call, ts: float, effects: list[Effect]) -> None:
        caller = call.best_caller()
        if call.started and caller is not None and caller != call.reported_caller:
            call.reported_caller = caller
            effects.append(CallerIdentified(call.linkedid, caller, None, ts))

    def _on_hangup_request(self, e: AmiEvent) -> list[Effect]:
        ch = self._known(e.headers)
        if ch is not None:
            call = ch.call
            if ch.hangup_requested_at is None:
                ch.hangup_requested_at = e.timestamp
            if call.caller_hangup_at is None and not call.outbound and call.is_caller_side(ch):
                call.caller_hangup_at = ch.hangup_requested_at
        return []

    def _on_hangup(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        uid = h.get("Uniqueid") or ""
        ch = self._known(h)
        if ch is None:
            self.stats.unknown_channel += 1
            return []
        del self._channels[uid]
        ts = e.timestamp
        call = ch.call
        ch.hungup_at = ts
        ch.cause = _int(h.get("Cause"))
        call.live -= 1
        call.last_hangup_at = ts
        call.last_event_ts = ts
        if ch.bridge is not None:
            self._leave_bridge(ch)
        effects: list[Effect] = []
        leg = ch.leg
        if leg is not None and leg.uniqueid == uid:
            self._end_leg(call, leg, ts, effects)
        if call.outbound:
            if uid == call.patient_uid:
                call.patient_hungup_at = ts
        elif call.caller_hangup_at is None and call.is_caller_side(ch):
            call.caller_hangup_at = ts
        # An inbound call is over when its clinic channel is gone (what is left are halves and
        # phones hanging up after it); an outbound one when all its channels are.
        if call.live <= 0 or (ch is call.clinic and not call.outbound and not call.provisional):
            self._finish(call, ts, effects)
        return effects

    def _finish(self, call: Call, ts: float, effects: list[Effect]) -> None:
        call.provisional = False  # never claimed by another call: it was one of its own
        if self._calls.get(call.linkedid) is call:
            del self._calls[call.linkedid]
        for ch in call.channels.values():
            if self._channels.get(ch.uniqueid) is ch:
                del self._channels[ch.uniqueid]  # its late hang-up is then simply ignored
            if ch.bridge is not None:
                self._leave_bridge(ch)
        self._start(call, ts, effects)
        for leg in list(call.legs.values()) + ([call.operator_leg] if call.operator_leg else []):
            self._end_leg(call, leg, ts, effects)
        effects.append(CallEnded(build_record(call), ts))

    # ------------------------------------------------------------------ variables

    def _on_varset(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        var = h.get("Variable")
        if var not in WATCHED_VARIABLES:
            return []
        ch = self._known(h)
        if ch is None:
            return []
        call = ch.call
        value = h.get("Value") or ""
        if var == "MIXMONITOR_FILENAME":
            if value and call.recording is None:
                call.recording = value
            return []
        if var == "QUEUESTATUS":
            call.queue_status = value or None
            return []
        if not value:
            return []
        effects: list[Effect] = []
        call.callback_task = value
        self._mark_outbound(call, e.timestamp, effects)
        return effects

    # ------------------------------------------------------------------ dials

    def _on_dial_begin(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        dest_uid = h.get("DestUniqueid")
        if not dest_uid:
            self.stats.missing_headers += 1
            return []
        src_uid = h.get("Uniqueid")
        ts = e.timestamp
        effects: list[Effect] = []
        if not src_uid:
            # An originate's own dial (no calling channel): it creates the call's first channel.
            dest = self._known(h, "DestUniqueid", "DestLinkedid")
            if dest is None:
                return effects
            call = dest.call
            if call.orig is None and call.first_channel() is dest:
                call.orig = dest
                call.orig_dialstring = h.get("DialString")
                call.orig_number = number_from_dialstring(call.orig_dialstring)
                call.orig_dial_at = ts
                if call.outbound:
                    self._outbound_dialling(call, ts, effects)
            return effects
        src = self._known(h)
        if src is None:
            self.stats.unknown_channel += 1
            return effects
        self._known(h, "DestUniqueid", "DestLinkedid")
        call = src.call
        call.last_event_ts = ts
        if call.outbound and call.orig is not None and src is call.orig:
            dialled = number_from_dialstring(h.get("DialString")) or extension_of(
                h.get("DestChannel")
            )
            if call.style is None:
                call.style = rules.decide_style(call.orig_number, dialled, self._agents)
            if call.style is Style.OPERATOR_FIRST:
                if call.patient_uid is None:
                    self._ensure_operator_leg(call, ts, effects)
                    call.patient_uid = dest_uid
                    call.patient_dial_at = ts
                    call.patient_number = dialled
                    self._caller_update(call, ts, effects)
                return effects
        self._dial_leg(call, src, dest_uid, h.get("DestChannel"), h.get("DialString"), ts, effects)
        return effects

    def _dial_leg(
        self,
        call: Call,
        src: Channel,
        dest_uid: str,
        dest_name: str | None,
        dialstring: str | None,
        ts: float,
        effects: list[Effect],
    ) -> None:
        if dest_uid in call.legs:
            return  # the queue announced it (AgentCalled) just before
        dest = self._channels.get(dest_uid)
        if src.leg is not None:
            # An administrator's own channel dialling on (a Local member reaching the phone).
            if dest is not None:
                dest.leg = src.leg
            return
        agent = extension_of(dest_name) or number_from_dialstring(dialstring)
        op = self._operators.get(agent) if agent else None
        leg = Leg(dest_uid, agent, op.name if op is not None else None, ts)
        self._add_leg(call, leg, dest)
        if call.is_caller_side(src):
            if not call.outbound and not call.clinic_confirmed:
                call.clinic = src
                call.clinic_confirmed = True
        else:
            # A channel ringing a colleague (the consultation of an attended transfer) leads
            # to that colleague.
            src.leg = leg
            partner = call.partner(src)
            if partner is not None:
                partner.leg = leg
        self._start(call, ts, effects)
        self._ring(call, leg, None, ts, effects)

    def _add_leg(self, call: Call, leg: Leg, dest: Channel | None) -> None:
        call.legs[leg.uniqueid] = leg
        if dest is not None:
            dest.leg = leg
            partner = call.partner(dest)
            if partner is not None:
                partner.leg = leg

    def _ring(
        self, call: Call, leg: Leg, queue: str | None, ts: float, effects: list[Effect]
    ) -> None:
        if leg.agent is None:
            return
        effects.append(
            AgentRinging(
                call.linkedid,
                leg.agent,
                leg.agent_name,
                call.best_caller(),
                None if call.outbound else call.caller_name,
                queue,
                ts,
            )
        )
        op = self._operator(leg.agent, leg.agent_name)
        op.ringing.add(leg.uniqueid)
        op.wrapup_since = None
        self._legs_changed(op, ts, effects)

    def _on_dial_end(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        dest_uid = h.get("DestUniqueid") or ""
        status = h.get("DialStatus") or ""
        src_uid = h.get("Uniqueid")
        ts = e.timestamp
        effects: list[Effect] = []
        if not src_uid:
            dest = self._known(h, "DestUniqueid", "DestLinkedid")
            if dest is None or dest is not dest.call.orig:
                return effects
            call = dest.call
            if status == "ANSWER":
                if call.orig_answered_at is None:
                    call.orig_answered_at = ts
                if call.outbound:
                    self._orig_answered(call, ts, effects)
            else:
                call.orig_reason = status
            return effects
        src = self._known(h)
        if src is None:
            self.stats.unknown_channel += 1
            return effects
        call = src.call
        call.last_event_ts = ts
        if call.outbound and dest_uid == call.patient_uid and dest_uid:
            if call.patient_dial_end_at is None:
                call.patient_dial_end_at = ts
            if status == "ANSWER" and call.patient_answered_at is None:
                call.patient_answered_at = ts
                op_leg = call.operator_leg
                agent = op_leg.agent if op_leg is not None else None
                name = op_leg.agent_name if op_leg is not None else None
                effects.append(CallAnswered(call.linkedid, agent, name, ts))
            return effects
        leg = call.legs.get(dest_uid)
        if leg is None:
            return effects
        caller_side = call.is_caller_side(src)
        if status == "ANSWER":
            self._leg_answered(leg, ts, effects)
            if caller_side:
                if not leg.from_queue:
                    call.direct_status = status
                if call.answered_at is None:
                    self._answer(call, leg, ts, effects)
                else:
                    call.last_agent = leg.agent or call.last_agent  # a blind transfer's target
        else:
            if caller_side and not leg.from_queue:
                call.direct_status = status
            self._stop_ringing(call, leg, _STOP_REASON.get(status, "no_answer"), ts, effects)
        return effects

    def _answer(self, call: Call, leg: Leg, ts: float, effects: list[Effect]) -> None:
        call.answered_at = ts
        call.agent = leg.agent
        call.agent_name = leg.agent_name
        call.last_agent = leg.agent
        effects.append(CallAnswered(call.linkedid, leg.agent, leg.agent_name, ts))

    def _leg_answered(self, leg: Leg, ts: float, effects: list[Effect]) -> None:
        if leg.answered_at is not None:
            return
        leg.answered_at = ts
        leg.outcome = "answered"
        if leg.agent is not None:
            op = self._operator(leg.agent, leg.agent_name)
            leg.agent_name = leg.agent_name or op.name
            op.ringing.discard(leg.uniqueid)
            op.talking.add(leg.uniqueid)
            op.wrapup_since = None
            self._legs_changed(op, ts, effects)

    def _stop_ringing(
        self, call: Call, leg: Leg, reason: str, ts: float, effects: list[Effect]
    ) -> None:
        if leg.outcome is not None:
            return
        leg.outcome = reason
        leg.ended_at = ts
        if leg.agent is None:
            return
        effects.append(AgentStoppedRinging(call.linkedid, leg.agent, reason, ts))
        op = self._operator(leg.agent, leg.agent_name)
        op.ringing.discard(leg.uniqueid)
        self._legs_changed(op, ts, effects)

    def _end_leg(
        self, call: Call, leg: Leg, ts: float, effects: list[Effect], *, wrapup: bool = False
    ) -> None:
        if leg.outcome is None:
            self._stop_ringing(call, leg, "cancelled", ts, effects)
            return
        if leg.answered_at is None or leg.ended_at is not None:
            return
        leg.ended_at = ts
        if leg.agent is None:
            return
        op = self._operator(leg.agent, leg.agent_name)
        op.talking.discard(leg.uniqueid)
        if wrapup and self.wrapup_s > 0:
            op.wrapup_since = ts
        self._legs_changed(op, ts, effects)

    # ------------------------------------------------------------------ queue

    def _queue_call(self, e: AmiEvent) -> tuple[Call, Channel] | None:
        ch = self._known(e.headers)
        if ch is None:
            self.stats.unknown_channel += 1
            return None
        ch.call.last_event_ts = e.timestamp
        return ch.call, ch

    def _on_queue_join(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is None:
            return []
        call, ch = found
        h = e.headers
        queue = h.get("Queue") or None
        if call.in_queue and call.queue == queue:
            return []  # the same join twice
        ts = e.timestamp
        self._confirm_clinic(call, ch, e)
        call.in_queue = True
        if call.queue_joined_at is None:
            call.queue_joined_at = ts
            call.queue = queue
        position = _int(h.get("Position"))
        call.queue_position = position
        effects: list[Effect] = []
        self._start(call, ts, effects)
        if queue is not None:
            effects.append(CallQueued(call.linkedid, queue, call.best_caller(), position, ts))
        return effects

    def _on_queue_abandon(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is not None:
            call = found[0]
            call.in_queue = False
            if call.queue_exit is None and call.connected_at is None:
                hung_up = call.caller_hangup_at is not None
                call.queue_exit = rules.classify_queue_exit(caller_hung_up=hung_up)
                call.queue_exit_at = e.timestamp
        return []

    def _on_queue_leave(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is not None:
            call = found[0]
            call.in_queue = False
            if call.queue_leave is None and call.connected_at is None:
                hung_up = call.caller_hangup_at is not None
                call.queue_leave = rules.classify_queue_exit(caller_hung_up=hung_up)
                call.queue_leave_at = e.timestamp
        return []

    def _queue_leg(self, call: Call, e: AmiEvent, ts: float) -> Leg | None:
        h = e.headers
        dest_uid = h.get("DestUniqueid")
        if not dest_uid:
            self.stats.missing_headers += 1
            return None
        leg = call.legs.get(dest_uid)
        agent = extension_of(h.get("Interface")) or extension_of(h.get("DestChannel"))
        name = real_value(h.get("MemberName"))
        if agent is not None:
            self._agents.add(agent)
            op = self._operator(agent, name)
            name = name or op.name
        if leg is None:
            leg = Leg(dest_uid, agent, name, ts, from_queue=True)
            self._add_leg(call, leg, self._channels.get(dest_uid))
        else:
            leg.from_queue = True
            leg.agent = agent or leg.agent
            leg.agent_name = name or leg.agent_name
        return leg

    def _on_agent_called(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is None:
            return []
        call, ch = found
        if e.headers.get("DestUniqueid") in call.legs:
            return []
        self._known(e.headers, "DestUniqueid", "DestLinkedid")
        ts = e.timestamp
        self._confirm_clinic(call, ch, e)
        leg = self._queue_leg(call, e, ts)
        effects: list[Effect] = []
        if leg is not None:
            self._start(call, ts, effects)
            self._ring(call, leg, e.headers.get("Queue") or call.queue, ts, effects)
        return effects

    def _on_agent_ring_no_answer(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is None:
            return []
        call = found[0]
        leg = call.legs.get(e.headers.get("DestUniqueid") or "")
        effects: list[Effect] = []
        if leg is not None:
            reason = "busy" if e.headers.get("RingTime") == "0" else "no_answer"
            self._stop_ringing(call, leg, reason, e.timestamp, effects)
        return effects

    def _on_agent_connect(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is None:
            return []
        call, ch = found
        ts = e.timestamp
        self._confirm_clinic(call, ch, e)
        leg = self._queue_leg(call, e, ts)
        if leg is None:
            return []
        effects: list[Effect] = []
        call.in_queue = False
        self._leg_answered(leg, ts, effects)
        if call.connected_at is None:
            call.connected_at = ts
        if call.answered_at is None:
            self._answer(call, leg, ts, effects)
        elif call.agent == leg.agent and leg.agent_name and not call.agent_name:
            call.agent_name = leg.agent_name
        return effects

    def _on_agent_complete(self, e: AmiEvent) -> list[Effect]:
        found = self._queue_call(e)
        if found is None:
            return []
        call = found[0]
        ts = e.timestamp
        leg = self._queue_leg(call, e, ts)
        if leg is None:
            return []
        effects: list[Effect] = []
        if leg.answered_at is None:
            # Re-attached after a reconnect: we never saw the answer; AgentComplete says it was.
            talk = _int(e.headers.get("TalkTime")) or 0
            self._leg_answered(leg, ts - talk, effects)
            if call.answered_at is None:
                self._answer(call, leg, ts - talk, effects)
        if call.agent == leg.agent and not call.agent_name:
            call.agent_name = leg.agent_name
        self._end_leg(call, leg, ts, effects, wrapup=True)
        return effects

    # ------------------------------------------------------------------ bridges and transfers

    def _on_bridge_enter(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        ch = self._channels.get(h.get("Uniqueid") or "")
        bridge = h.get("BridgeUniqueid")
        if ch is None or not bridge:
            return []
        if ch.bridge is not None:
            self._leave_bridge(ch)
        members = self._bridges.setdefault(bridge, [])
        members.append(ch)
        ch.bridge = bridge
        call = ch.call
        clinic = call.clinic
        if call.outbound or call.answered_at is None or clinic is None:
            return []
        # Whoever shares a bridge with the caller has the caller now (transfers included).
        if ch is clinic:
            for other in members:
                if other is not ch and other.call is call and other.leg is not None:
                    call.last_agent = other.leg.agent or call.last_agent
        elif ch.leg is not None and clinic in members:
            call.last_agent = ch.leg.agent or call.last_agent
        return []

    def _on_bridge_leave(self, e: AmiEvent) -> list[Effect]:
        ch = self._channels.get(e.headers.get("Uniqueid") or "")
        if ch is not None and ch.bridge is not None:
            self._leave_bridge(ch)
        return []

    def _leave_bridge(self, ch: Channel) -> None:
        bridge = ch.bridge
        ch.bridge = None
        if bridge is None:
            return
        members = self._bridges.get(bridge)
        if members is not None:
            if ch in members:
                members.remove(ch)
            if not members:
                del self._bridges[bridge]

    def _on_bridge_destroy(self, e: AmiEvent) -> list[Effect]:
        for ch in self._bridges.pop(e.headers.get("BridgeUniqueid") or "", []):
            ch.bridge = None
        return []

    def _on_blind_transfer(self, e: AmiEvent) -> list[Effect]:
        found = self._transferred_call(e.headers, "TransfererUniqueid")
        if found is None:
            return []
        call, from_agent = found
        call.transfers.append("blind")
        return [
            CallTransferred(
                call.linkedid, "blind", from_agent, e.headers.get("Extension"), e.timestamp
            )
        ]

    def _on_attended_transfer(self, e: AmiEvent) -> list[Effect]:
        found = self._transferred_call(e.headers, "OrigTransfererUniqueid")
        if found is None:
            return []
        call, from_agent = found
        target = self._channels.get(e.headers.get("TransferTargetUniqueid") or "")
        to_agent = self._agent_of(target)
        if to_agent is not None:
            call.last_agent = to_agent
        call.transfers.append("attended")
        return [CallTransferred(call.linkedid, "attended", from_agent, to_agent, e.timestamp)]

    def _transferred_call(
        self, h: Mapping[str, str], transferer_key: str
    ) -> tuple[Call, str | None] | None:
        """Return the transferred call and who handed it over; None for nothing new to count."""
        if h.get("Result", "Success") != "Success":
            return None
        caller = self._channels.get(h.get("TransfereeUniqueid") or "")
        if caller is None:
            return None
        call = caller.call
        if self._seen_transfer(call, h, transferer_key):
            return None
        transferer = self._channels.get(h.get(transferer_key) or "")
        return call, self._agent_of(transferer) or call.last_agent

    @staticmethod
    def _seen_transfer(call: Call, h: Mapping[str, str], transferer: str) -> bool:
        # The same transfer event delivered twice must not count as two transfers.
        key = f"{h.get('Event')}|{h.get(transferer)}|{h.get('Timestamp')}"
        if key in call.transfer_keys:
            return True
        call.transfer_keys.add(key)
        return False

    @staticmethod
    def _agent_of(ch: Channel | None) -> str | None:
        if ch is None or ch.leg is None:
            return None
        return ch.leg.agent

    # ------------------------------------------------------------------ originate (outbound)

    def _on_originate_response(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        ts = e.timestamp
        ch = self._channels.get(h.get("Uniqueid") or "")
        call = ch.call if ch is not None else self._pending_originate(h.get("Channel") or "")
        if call is None:
            log.debug("OriginateResponse %s matches no call", h.get("ActionID"))
            return []
        effects: list[Effect] = []
        call.action_id = h.get("ActionID") or call.action_id
        call.orig_exten = h.get("Exten") or call.orig_exten
        if call.orig is None and ch is not None:
            call.orig = ch
            call.orig_number = extension_of(ch.name)
        self._mark_outbound(call, ts, effects)
        if h.get("Response") == "Success":
            if call.orig_answered_at is None:
                call.orig_answered_at = ts
            self._orig_answered(call, ts, effects)
            self._caller_update(call, ts, effects)
            return effects
        call.orig_failed = True
        call.orig_reason = h.get("Reason") or call.orig_reason
        if call.orig_number is None:
            call.orig_number = number_from_dialstring(h.get("Channel"))
        self._caller_update(call, ts, effects)
        if call.live <= 0 and call.linkedid in self._calls:
            self._finish(call, ts, effects)
        return effects

    def _pending_originate(self, dial: str) -> Call | None:
        # A failed Originate names no channel (``Uniqueid: <unknown>``), only its dial string.
        pending = [
            c
            for c in self._calls.values()
            if c.orig is not None and c.orig_answered_at is None and not c.orig_failed
        ]
        for c in pending:
            ds = c.orig_dialstring
            if ds and (dial == ds or dial.endswith("/" + ds)):
                return c
        outbound = [c for c in pending if c.outbound]
        return outbound[0] if len(outbound) == 1 else None

    def _mark_outbound(self, call: Call, ts: float, effects: list[Effect]) -> None:
        if call.outbound:
            return
        call.outbound = True
        # Reported as inbound before the Originate showed: report it again, as outbound.
        was_started, call.started = call.started, False
        if call.orig is not None:
            self._outbound_dialling(call, ts, effects)
            if call.orig_answered_at is not None:
                self._orig_answered(call, call.orig_answered_at, effects)
        elif was_started:
            self._start(call, ts, effects)

    def _outbound_dialling(self, call: Call, ts: float, effects: list[Effect]) -> None:
        if call.style is None:
            call.style = rules.decide_style(call.orig_number, None, self._agents)
        self._start(call, ts, effects)
        if call.style is Style.OPERATOR_FIRST:
            self._ensure_operator_leg(call, ts, effects)

    def _ensure_operator_leg(self, call: Call, ts: float, effects: list[Effect]) -> None:
        if call.operator_leg is not None or call.orig is None:
            return
        agent = call.orig_number or extension_of(call.orig.name)
        op = self._operators.get(agent) if agent else None
        leg = Leg(call.orig.uniqueid, agent, op.name if op is not None else None, ts)
        call.operator_leg = leg
        call.orig.leg = leg
        self._ring(call, leg, None, call.orig_dial_at or ts, effects)

    def _orig_answered(self, call: Call, ts: float, effects: list[Effect]) -> None:
        if call.style is None:
            call.style = rules.decide_style(call.orig_number, None, self._agents)
        if call.style is Style.OPERATOR_FIRST:
            self._ensure_operator_leg(call, ts, effects)
            if call.operator_leg is not None:
                self._leg_answered(call.operator_leg, ts, effects)

    # ------------------------------------------------------------------ operators

    def _operator(self, agent: str, name: str | None = None) -> Operator:
        op = self._operators.get(agent)
        if op is None:
            op = self._operators[agent] = Operator(agent)
        if name and not op.name:
            op.name = name
        return op

    def _legs_changed(self, op: Operator, ts: float, effects: list[Effect]) -> None:
        self._seq += 1
        op.legs_seq = self._seq
        self._report(op, ts, effects)

    def _report(self, op: Operator, ts: float, effects: list[Effect]) -> None:
        status, until = op.compute_status(ts, self.wrapup_s)
        if status is not op.status:
            op.status = status
            effects.append(OperatorStateChanged(op.agent, op.name, status, ts, until))

    def _learn_member(self, e: AmiEvent) -> Operator | None:
        h = e.headers
        interface = h.get("Interface") or h.get("Location")
        agent = extension_of(interface)
        if agent is None or interface is None:
            self.stats.missing_headers += 1
            return None
        self._agents.add(agent)
        op = self._operator(agent, real_value(h.get("MemberName") or h.get("Name")))
        self._agent_by_device[device_of(h.get("StateInterface") or interface)] = agent
        return op

    def _on_queue_member_status(self, e: AmiEvent) -> list[Effect]:
        op = self._learn_member(e)
        if op is None:
            return []
        return self._member_state(op, e)

    def _member_state(self, op: Operator, e: AmiEvent) -> list[Effect]:
        """Apply a member's ``Paused`` and device ``Status`` (QueueMemberStatus, QueueMember)."""
        h = e.headers
        paused = h.get("Paused")
        if paused is not None:
            op.paused = paused == "1"
        device = _MEMBER_STATUS.get(h.get("Status") or "")
        if device is not None:
            op.device = device
            self._seq += 1
            op.device_seq = self._seq
        effects: list[Effect] = []
        self._report(op, e.timestamp, effects)
        return effects

    def _on_queue_member(self, e: AmiEvent) -> list[Effect]:
        # A QueueStatus list item (the re-sync after a reconnect): who the members are and
        # whether each is paused (a pause made while we were away). Its device ``Status`` is
        # left to the channels of the same re-sync and the next device events: a member's
        # "in use" without a channel in CoreShowChannels would block the dialer. It carries
        # no event time, so a pause is reported at the time it was received.
        op = self._learn_member(e)
        if op is None:
            return []
        paused = e.headers.get("Paused")
        if paused is None:
            return []
        op.paused = paused == "1"
        effects: list[Effect] = []
        self._report(op, e.timestamp, effects)
        return effects

    def _on_queue_member_pause(self, e: AmiEvent) -> list[Effect]:
        op = self._learn_member(e)
        if op is None:
            return []
        op.paused = e.headers.get("Paused") == "1"
        effects: list[Effect] = []
        self._report(op, e.timestamp, effects)
        return effects

    def _on_device_state(self, e: AmiEvent) -> list[Effect]:
        h = e.headers
        agent = self._agent_by_device.get(h.get("Device") or "")
        if agent is None:
            return []
        device = _DEVICE_STATE.get(h.get("State") or "")
        if device is None:
            return []
        op = self._operators[agent]
        op.device = device
        self._seq += 1
        op.device_seq = self._seq
        effects: list[Effect] = []
        self._report(op, e.timestamp, effects)
        return effects

    # ------------------------------------------------------------------ resync helpers

    def _lose(self, call: Call, at: float, effects: list[Effect]) -> None:
        del self._calls[call.linkedid]
        for ch in call.channels.values():
            if self._channels.get(ch.uniqueid) is ch:
                del self._channels[ch.uniqueid]
            if ch.bridge is not None:
                self._leave_bridge(ch)
        for leg in list(call.legs.values()) + ([call.operator_leg] if call.operator_leg else []):
            self._end_leg(call, leg, at, effects)
        agent = call.agent if call.answered_at is not None else None
        effects.append(
            CallLost(
                call.linkedid,
                call.direction,
                call.best_caller(),
                call.queue,
                agent,
                call.start_ts,
                call.last_event_ts,
                call.callback_task,
                at,
            )
        )

    def _vanish(self, ch: Channel, at: float, effects: list[Effect]) -> None:
        # A channel that ended while we were away; no Hangup will come for it.
        if self._channels.get(ch.uniqueid) is ch:
            del self._channels[ch.uniqueid]
        if ch.bridge is not None:
            self._leave_bridge(ch)
        ch.hungup_at = at
        ch.call.live -= 1
        if ch.leg is not None and ch.leg.uniqueid == ch.uniqueid:
            self._end_leg(ch.call, ch.leg, at, effects)  # its phone no longer rings or talks

    def _attach(self, call: Call, ev: AmiEvent, at: float) -> Channel:
        uid = ev.get("Uniqueid") or ""
        created = at - parse_duration(ev.get("Duration"))
        ch = self._add_channel(call, uid, ev.get("Channel") or "", created, False)
        ch.exten = ev.get("Exten") or None
        bridge = ev.get("BridgeId")
        if bridge:
            self._bridges.setdefault(bridge, []).append(ch)
            ch.bridge = bridge
        return ch

    def _rebuild(
        self,
        linkedid: str,
        rows: list[AmiEvent],
        entries: dict[str | None, AmiEvent],
        at: float,
        effects: list[Effect],
    ) -> None:
        start = at - max(parse_duration(ev.get("Duration")) for ev in rows)
        call = self._calls[linkedid] = Call(linkedid, start)
        attached = [(ev, self._attach(call, ev, at)) for ev in rows]
        # The clinic channel: the one queued, else the one running Queue()/Dial().
        clinic_row: tuple[AmiEvent, Channel] | None = None
        for ev, ch in attached:
            if ev.get("Uniqueid") in entries:
                clinic_row = (ev, ch)
                break
        if clinic_row is None:
            for ev, ch in attached:
                if ev.get("Application") in ("Queue", "Dial"):
                    clinic_row = (ev, ch)
                    break
        if clinic_row is None:
            clinic_row = min(attached, key=lambda pair: pair[1].created_at)
        ev, clinic = clinic_row
        call.clinic = clinic
        call.clinic_confirmed = True
        call.caller = real_value(ev.get("CallerIDNum"))
        call.caller_name = real_value(ev.get("CallerIDName"))
        self._start(call, at, effects)
        entry = entries.get(clinic.uniqueid)
        if entry is not None or ev.get("Application") == "Queue":
            queue = (entry.get("Queue") if entry is not None else None) or (
                (ev.get("ApplicationData") or "").split(",", 1)[0] or None
            )
            wait = _int(entry.get("Wait")) if entry is not None else None
            call.queue = queue
            call.queue_joined_at = at - wait if wait is not None else clinic.created_at
            call.in_queue = entry is not None
            if entry is not None and queue is not None:
                position = _int(entry.get("Position"))
                effects.append(CallQueued(linkedid, queue, call.caller, position, at))
        # Whoever is bridged with the clinic channel is an administrator who answered. When is
        # not in the snapshot: their channel's creation (the ring) stands in for the answer.
        for _row, other in attached:
            if other is clinic or other.leg is not None or call.partner(other) is clinic:
                continue
            if clinic.bridge is None or other.bridge != clinic.bridge:
                continue
            agent = extension_of(other.name)
            op = self._operators.get(agent) if agent else None
            leg = Leg(other.uniqueid, agent, op.name if op else None, other.created_at)
            leg.from_queue = call.queue is not None
            self._add_leg(call, leg, other)
            self._leg_answered(leg, other.created_at, effects)
            if call.answered_at is None:
                self._answer(call, leg, other.created_at, effects)
                if call.queue is not None:
                    call.connected_at = other.created_at
                    call.in_queue = False


Handler = Callable[[CallTracker, "AmiEvent"], list[Effect]]

#: Every AMI event the tracker handles. Anything else (Newexten, Cdr, LocalBridge, …) is
#: ignored on purpose.
HANDLERS: dict[str, Handler] = {
    "Newchannel": CallTracker._on_newchannel,
    "NewCallerid": CallTracker._on_newcallerid,
    "VarSet": CallTracker._on_varset,
    "DialBegin": CallTracker._on_dial_begin,
    "DialEnd": CallTracker._on_dial_end,
    "QueueCallerJoin": CallTracker._on_queue_join,
    "QueueCallerAbandon": CallTracker._on_queue_abandon,
    "QueueCallerLeave": CallTracker._on_queue_leave,
    "AgentCalled": CallTracker._on_agent_called,
    "AgentRingNoAnswer": CallTracker._on_agent_ring_no_answer,
    "AgentConnect": CallTracker._on_agent_connect,
    "AgentComplete": CallTracker._on_agent_complete,
    "BridgeEnter": CallTracker._on_bridge_enter,
    "BridgeLeave": CallTracker._on_bridge_leave,
    "BridgeDestroy": CallTracker._on_bridge_destroy,
    "BlindTransfer": CallTracker._on_blind_transfer,
    "AttendedTransfer": CallTracker._on_attended_transfer,
    "HangupRequest": CallTracker._on_hangup_request,
    "SoftHangupRequest": CallTracker._on_hangup_request,
    "Hangup": CallTracker._on_hangup,
    "OriginateResponse": CallTracker._on_originate_response,
    "QueueMemberStatus": CallTracker._on_queue_member_status,
    "QueueMember": CallTracker._on_queue_member,
    "QueueMemberPause": CallTracker._on_queue_member_pause,
    "DeviceStateChange": CallTracker._on_device_state,
}
