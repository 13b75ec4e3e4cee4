"""An AMI server on asyncio that plays recorded Asterisk 22 traffic (demo, tests, load).

It speaks enough AMI for our client and for panoramisk: the banner, ``Login`` (accepted or
``Authentication failed``), ``Ping``, ``Logoff``, ``Originate``, ``QueuePause`` (for the recorded
queue members, with a ``QueueMemberPause`` event to every session) and the status actions recorded
in ``state_snapshot`` (``QueueStatus``, ``CoreShowChannels``, ``Status``, ``QueueSummary``).
Each logged-in client gets the configured traces played at real speed, ×N, or as fast as the
socket takes them (``speed=0``), once, ``plays`` times or forever, from its login on (each
connection has its own playback; a reconnect starts a new one).

``CoreShowChannels`` and ``QueueStatus`` answer from the recorded snapshot when no trace plays.
While traces play they answer from the channels and queue callers this session has been sent
(``LiveState``): a recorded snapshot would contradict the calls being played, and a client
re-syncing from it would drop them all.

What is sent is the recorded bytes, except what must change:

* Replies the lab client got to its own actions (Login, Ping, QueueStatus… ``login-1``,
  ``queuestatus-3``) are not replayed as if they answered this client; the client's own
  actions are answered instead, with its ActionIDs. ``OriginateResponse`` events stay: every
  session with ``call`` permission sees them.
* The first play of the simulator is verbatim. Every later play (another loop, another client,
  a reconnect) shifts ``Timestamp`` to now and renumbers Uniqueid, Linkedid and their kin
  (DestUniqueid, TransfererLinkedid, LocalOneUniqueid…, and the same ids inside other values
  such as recording file names) and the sequence numbers in channel names, so each play is
  new calls.
* ``Originate`` is answered with a recorded outcome (answered / no answer / busy, chosen by
  ``outcome_rule``), with the request's ActionID, channel numbers, extension, caller ID and
  ``CALLBACK_TASK``/``PATIENT`` values filled in and fresh ids.

Failure modes, per session or for all sessions at runtime: ``drop_mid_frame()``,
``send_shutdown()``, ``stall()``/``resume()``, and ``reject_logins``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import logging
import random
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from callcenter.ami.actions import CALLBACK_TASK_VARIABLE, PATIENT_VARIABLE, OriginateStyle
from callcenter.ami.events import AmiEvent
from callcenter.ami.traces import TraceError, read_jsonl_records, read_trace, trace_path
from callcenter.config import DEFAULT_AMI_SECRET

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/11.0.0\r\n"
FRAME_END = "\r\n\r\n"

Outcome = Literal["answered", "no_answer", "busy"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "no_answer", "busy")

#: What ``callcenter simulate`` plays by default: every inbound scenario, then the busy hour.
DEFAULT_TRACES = ("answered", "abandoned", "queue_timeout", "direct_noanswer", "busy", "burst")
SNAPSHOT_TRACE = "state_snapshot"
ORIGINATE_TRACES = ("outbound_callback_answered", "outbound_callback_noanswer")

#: Events Asterisk sends to a session because it logged in, not because something happened.
_LOGIN_PREAMBLE = frozenset({"FullyBooted", "SuccessfulAuth"})
#: Broadcast events that carry the originating session's ActionID (kept when replaying).
_BROADCAST_WITH_ACTION_ID = frozenset({"OriginateResponse"})

_ID_VALUE = re.compile(r"(\d+)\.(\d+)")
_BRIDGE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_IN_TEXT = re.compile(r"(?<![\d.])\d{9,11}\.\d+(?!\d)")
# A channel's sequence number: "Local/101@agents-0000002c;1", "PJSIP/trunk-0000002a".
_CHANNEL_SEQ = re.compile(r"(\b[A-Za-z]\w*/[^\s,;|]*?-)([0-9a-f]{8})(?=;|$|[\s,|)])")
_DIAL_USER = re.compile(r"^[^/]+/([^@/]+)")

#: Frames that state a queue member's pause: played QueueMemberStatus, QueueStatus items.
_MEMBER_EVENTS = ("Event: QueueMemberStatus\r\n", "Event: QueueMember\r\n")

# Writer back-pressure: the player waits while this much is queued for one client.
_HIGH_WATER_BYTES = 256 * 1024


def is_id_header(key: str) -> bool:
    """Say whether a header holds a channel id that must be renumbered on a fresh play.

    >>> [is_id_header(k) for k in ("Uniqueid", "DestLinkedid", "BridgeUniqueid", "Channel")]
    [True, True, True, False]
    """
    return key.lower().endswith(("uniqueid", "linkedid", "bridgeid"))


def parse_action(text: str) -> list[tuple[str, str]]:
    """Split one client action frame (without its blank line) into ordered header pairs.

    >>> parse_action("Action: Ping\\r\\nActionID: p-1")
    [('Action', 'Ping'), ('ActionID', 'p-1')]
    """
    fields: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key:
            fields.append((key.strip(), value[1:] if value[:1] == " " else value))
    return fields


def _get(fields: Sequence[tuple[str, str]], key: str, default: str | None = None) -> str | None:
    lower = key.lower()
    for k, v in fields:
        if k.lower() == lower:
            return v
    return default


def _frame(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in pairs if v is not None) + "\r\n"


# -- Originate requests ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """What a client asked for in an ``Originate`` (as the simulator understood it)."""

    action_id: str | None
    channel: str
    context: str
    exten: str
    caller_id: str | None
    variables: dict[str, str]
    style: OriginateStyle

    @classmethod
    def from_fields(
        cls, fields: Sequence[tuple[str, str]], *, callback_context: str = "callback"
    ) -> OriginateRequest:
        """Read an Originate action; ``callback_context`` marks the patient-first style.

        >>> r = OriginateRequest.from_fields([("Action", "Originate"), ("ActionID", "cb-7"),
        ...     ("Channel", "Local/79031234567@pstn/n"), ("Context", "callback"),
        ...     ("Exten", "101"), ("Variable", "PATIENT=79031234567,CALLBACK_TASK=7")])
        >>> r.style, r.patient_number, r.extension, r.task_id
        ('patient_first', '79031234567', '101', '7')
        """
        variables: dict[str, str] = {}
        for key, value in fields:
            if key.lower() == "variable":
                for item in value.split(","):
                    name, sep, val = item.partition("=")
                    if sep:
                        variables[name.strip()] = val
        context = _get(fields, "Context", "") or ""
        style: OriginateStyle = "patient_first" if context == callback_context else "operator_first"
        return cls(
            action_id=_get(fields, "ActionID"),
            channel=_get(fields, "Channel", "") or "",
            context=context,
            exten=_get(fields, "Exten", "") or "",
            caller_id=_get(fields, "CallerID"),
            variables=variables,
            style=style,
        )

    @property
    def patient_number(self) -> str:
        """The dialled patient's number (``PATIENT`` variable, else from Exten/Channel)."""
        if PATIENT_VARIABLE in self.variables:
            return self.variables[PATIENT_VARIABLE]
        if self.style == "operator_first":
            return self.exten
        return self._channel_user()

    @property
    def extension(self) -> str:
        """The operator's extension."""
        return self._channel_user() if self.style == "operator_first" else self.exten

    @property
    def task_id(self) -> str | None:
        """The ``CALLBACK_TASK`` variable, if set."""
        return self.variables.get(CALLBACK_TASK_VARIABLE)

    def _channel_user(self) -> str:
        m = _DIAL_USER.match(self.channel)
        return m.group(1) if m else ""


OutcomeRule = Callable[[OriginateRequest], Outcome]
#: on_play(session, trace name, map_id): map_id turns a recorded id into this play's id.
PlayObserver = Callable[["SimSession", str, Callable[[str], str]], None]
#: on_frame(session, frame text) for every event frame written whole to the socket.
FrameObserver = Callable[["SimSession", str], None]


def _split_caller_id(caller_id: str | None) -> tuple[str | None, str | None]:
    """Split ``"Name" <number>`` into its parts.

    >>> _split_caller_id('"Клиника" <74951234500>')
    ('Клиника', '74951234500')
    """
    if not caller_id:
        return None, None
    m = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', caller_id)
    if m is None:
        return caller_id.strip() or None, None
    return m.group(1) or None, m.group(2) or None


# -- recorded material ----------------------------------------------------------------------


@dataclass(slots=True)
class _Block:
    """A run of recorded frames played together, with what renumbering it needs."""

    frames: list[tuple[float, str]]  # (seconds after the block starts, exact text)
    first_timestamp: float | None = None
    min_epoch: int | None = None
    counters: tuple[int, int] | None = None  # min, max Uniqueid counter
    channel_seqs: tuple[int, int] | None = None  # min, max channel sequence number
    known_ids: frozenset[str] = frozenset()

    @classmethod
    def scan(cls, frames: list[tuple[float, str]], events: list[AmiEvent]) -> _Block:
        block = cls(frames)
        ids: set[str] = set()
        counters: list[int] = []
        epochs: list[int] = []
        seqs: list[int] = []
        for event in events:
            for key, value in event.fields:
                if key == "Timestamp" and block.first_timestamp is None:
                    with contextlib.suppress(ValueError):
                        block.first_timestamp = float(value)
                elif is_id_header(key):
                    m = _ID_VALUE.fullmatch(value)
                    if m:
                        ids.add(value)
                        epochs.append(int(m.group(1)))
                        counters.append(int(m.group(2)))
            seqs.extend(int(m.group(2), 16) for m in _CHANNEL_SEQ.finditer(event.raw))
        block.known_ids = frozenset(ids)
        if counters:
            block.counters = (min(counters), max(counters))
            block.min_epoch = min(epochs)
        if seqs:
            block.channel_seqs = (min(seqs), max(seqs))
        return block


@dataclass(slots=True)
class _OriginateTemplate:
    """The recorded aftermath of one lab Originate: events from its reply to the next one."""

    request: OriginateRequest
    outcome: str
    block: _Block


class _Allocator:
    """Hand out fresh ranges above everything recorded (Uniqueid counters, channel numbers)."""

    def __init__(self, start: int) -> None:
        self.next = start

    def take(self, span: int) -> int:
        base = self.next
        self.next += span
        return base


class _Rewrite:
    """Renumber ids, shift timestamps and substitute values in recorded frames."""

    def __init__(
        self,
        block: _Block,
        *,
        now: float,
        counters: _Allocator,
        channels: _Allocator,
        tokens: dict[str, str] | None = None,
        action_id: tuple[str, str | None] | None = None,
        task_id: tuple[str, str] | None = None,
    ) -> None:
        self.known = block.known_ids
        base_time = block.first_timestamp
        if base_time is None:
            base_time = float(block.min_epoch) if block.min_epoch is not None else now
        self.dt = now - base_time
        self.epoch_shift = int(self.dt)
        self.counter_shift = 0
        if block.counters is not None:
            lo, hi = block.counters
            self.counter_shift = counters.take(hi - lo + 1) - lo
        self.channel_shift = 0
        if block.channel_seqs is not None:
            lo, hi = block.channel_seqs
            self.channel_shift = channels.take(hi - lo + 1) - lo
        tokens = {k: v for k, v in (tokens or {}).items() if k and v and k != v}
        self.tokens = tokens
        self.token_re = (
            re.compile(
                r"(?<![\w.])("
                + "|".join(re.escape(k) for k in sorted(tokens, key=len, reverse=True))
                + r")(?![\w.])"
            )
            if tokens
            else None
        )
        self.action_id = action_id
        self.task_re: tuple[re.Pattern[str], str] | None = None
        if task_id is not None:
            # "CALLBACK_TASK=1002" (Originate variables) or a VarSet's "Value: 1002".
            old = re.escape(task_id[0])
            pattern = rf"({CALLBACK_TASK_VARIABLE}(?:=|\r\nValue: )){old}(?=[,\r]|$)"
            self.task_re = (re.compile(pattern), task_id[1])

    def map_id(self, value: str) -> str:
        m = _ID_VALUE.fullmatch(value)
        if m is None:
            if _BRIDGE_ID.fullmatch(value):
                # Same bridge → same new id within this play, a different one in every play.
                key = f"{value}/{self.counter_shift}/{self.channel_shift}"
                return str(uuid.uuid5(uuid.NAMESPACE_OID, key))
            return value  # "<unknown>", ""
        return f"{int(m.group(1)) + self.epoch_shift}.{int(m.group(2)) + self.counter_shift}"

    def _map_known(self, m: re.Match[str]) -> str:
        text = m.group(0)
        return self.map_id(text) if text in self.known else text

    def _map_channel(self, m: re.Match[str]) -> str:
        return f"{m.group(1)}{int(m.group(2), 16) + self.channel_shift:08x}"

    def apply(self, raw: str) -> str:
        body = raw[: -len(FRAME_END)] if raw.endswith(FRAME_END) else raw
        if self.task_re is not None and CALLBACK_TASK_VARIABLE in body:
            pattern, new = self.task_re
            body = pattern.sub(lambda m: m.group(1) + new, body)
        out: list[str] = []
        # The lines of a recorded frame are split and classified once (_frame_lines).
        for line, key, value, kind in _frame_lines(body):
            if kind == _LINE_PLAIN:
                out.append(line)
                continue
            sep = ": "
            if kind == _LINE_TIMESTAMP:
                with contextlib.suppress(ValueError):
                    value = f"{float(value) + self.dt:.6f}"
            elif kind == _LINE_ACTION_ID and self.action_id is not None:
                if value == self.action_id[0]:
                    if self.action_id[1] is None:
                        continue
                    value = self.action_id[1]
            elif kind == _LINE_ID:
                value = self.map_id(value)
            else:
                if self.channel_shift and "-" in value:
                    value = _CHANNEL_SEQ.sub(self._map_channel, value)
                if self.known and "." in value:
                    value = _ID_IN_TEXT.sub(self._map_known, value)
                if self.token_re is not None:
                    value = self.token_re.sub(lambda m: self.tokens[m.group(1)], value)
            out.append(f"{key}{sep}{value}")
        return "\r\n".join(out) + FRAME_END


_LINE_PLAIN = "plain"  # no "key: value" (kept as is)
_LINE_TIMESTAMP = "timestamp"
_LINE_ACTION_ID = "action_id"
_LINE_ID = "id"  # a header holding a channel id (``is_id_header``)
_LINE_OTHER = "other"


@functools.lru_cache(maxsize=8192)
def _frame_lines(body: str) -> tuple[tuple[str, str, str, str], ...]:
    """Split a frame into (line, key, value, kind), as ``_Rewrite.apply`` reads it.

    Recorded frames repeat on every play and every Originate: splitting and classifying their
    lines once keeps the simulator's Originate responder fast.
    """
    lines = []
    for line in body.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            kind = _LINE_PLAIN
        elif key == "Timestamp":
            kind = _LINE_TIMESTAMP
        elif key == "ActionID":
            kind = _LINE_ACTION_ID
        elif is_id_header(key):
            kind = _LINE_ID
        else:
            kind = _LINE_OTHER
        lines.append((line, key, value, kind))
    return tuple(lines)


def _lab_actions(jsonl: Path) -> list[list[tuple[str, str]]]:
    """Return the actions the lab client sent while recording ``jsonl`` (may be none)."""
    sent = jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".sent.jsonl")
    if not sent.exists():
        return []
    return [parse_action(rec.raw.removesuffix(FRAME_END)) for rec in read_jsonl_records(sent)]


@dataclass(slots=True)
class _Trace:
    """A trace ready to play: the lab's own replies and login preamble taken out."""

    name: str
    block: _Block


def _load_messages(name: str) -> tuple[Path, list[AmiEvent], set[str]]:
    path = trace_path(name)
    if not path.exists() and path.suffix == ".jsonl":
        raise TraceError(f"no such trace: {name} ({path})")
    messages = [m for m in read_trace(path) if m.kind != "banner"]
    lab_ids = {aid for fields in _lab_actions(path) if (aid := _get(fields, "ActionID"))}
    if not lab_ids:
        # No .sent.jsonl: every ActionID on a response belongs to the recording client.
        lab_ids = {m.action_id for m in messages if m.kind == "response" and m.action_id}
    return path, messages, lab_ids


def _is_lab_reply(message: AmiEvent, lab_ids: set[str]) -> bool:
    return message.action_id in lab_ids and not (
        message.kind == "event" and message.name in _BROADCAST_WITH_ACTION_ID
    )


def load_trace(name: str) -> _Trace:
    """Load a trace (shipped name or path) for playing.

    :raises TraceError: when it cannot be read.
    """
    _, messages, lab_ids = _load_messages(name)
    kept: list[AmiEvent] = []
    preamble = True
    for m in messages:
        if _is_lab_reply(m, lab_ids):
            continue
        if preamble and m.kind == "event" and m.name in _LOGIN_PREAMBLE:
            continue
        preamble = False
        kept.append(m)
    t0 = kept[0].received_at if kept else 0.0
    frames = [(max(0.0, m.received_at - t0), m.raw) for m in kept]
    return _Trace(name, _Block.scan(frames, kept))


def load_action_replies(name: str) -> dict[str, tuple[str, list[str]]]:
    """Return the lab's ActionID and the recorded reply frames per action name (lower case)."""
    path, messages, _ = _load_messages(name)
    replies: dict[str, tuple[str, list[str]]] = {}
    for fields in _lab_actions(path):
        action = (_get(fields, "Action", "") or "").lower()
        aid = _get(fields, "ActionID")
        if action in ("login", "logoff", "ping", "originate") or not aid or action in replies:
            continue
        frames = [m.raw for m in messages if m.action_id == aid]
        if frames:
            replies[action] = (aid, frames)
    return replies


def _classify(request: OriginateRequest, events: list[AmiEvent]) -> str | None:
    if request.style == "operator_first":
        # "Success" only means the operator answered; the patient's leg tells the outcome.
        for e in events:
            if e.name == "DialEnd" and request.patient_number in (e.get("DestChannel") or ""):
                return {"ANSWER": "answered", "NOANSWER": "no_answer", "BUSY": "busy"}.get(
                    e.get("DialStatus") or ""
                )
    for e in events:
        if e.name == "OriginateResponse" and e.action_id == request.action_id:
            return {"4": "answered", "3": "no_answer", "5": "busy"}.get(e.get("Reason") or "")
    return None


def load_originate_templates(
    name: str, *, callback_context: str = "callback"
) -> list[_OriginateTemplate]:
    """Cut a trace with lab Originates into one template per Originate."""
    path, messages, lab_ids = _load_messages(name)
    originates = [
        OriginateRequest.from_fields(f, callback_context=callback_context)
        for f in _lab_actions(path)
        if (_get(f, "Action", "") or "").lower() == "originate"
    ]
    reply_at = {
        m.action_id: i for i, m in enumerate(messages) if m.kind == "response" and m.action_id
    }
    starts = sorted(
        ((reply_at[r.action_id], r) for r in originates if r.action_id in reply_at),
        key=lambda start: start[0],
    )
    goodbye = next((i for i, m in enumerate(messages) if m.name == "Goodbye"), len(messages))
    templates: list[_OriginateTemplate] = []
    for n, (index, request) in enumerate(starts):
        # The lab ran one Originate at a time: its aftermath lasts until the next one's reply
        # (or the Logoff).
        end = starts[n + 1][0] if n + 1 < len(starts) else goodbye
        chosen = [
            m
            for m in messages[index + 1 : end]
            if not _is_lab_reply(m, lab_ids) or m.action_id == request.action_id
        ]
        chosen = [m for m in chosen if m.kind == "event"]
        outcome = _classify(request, chosen)
        if outcome is None:
            log.warning("%s: cannot tell the outcome of Originate %s", name, request.action_id)
            continue
        t0 = messages[index].received_at
        frames = [(max(0.0, m.received_at - t0), m.raw) for m in chosen]
        templates.append(_OriginateTemplate(request, outcome, _Block.scan(frames, chosen)))
    return templates


# -- live status ----------------------------------------------------------------------------

#: The channel fields every channel event repeats, in CoreShowChannel order.
_CHANNEL_FIELDS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
_STATE_EVENTS = frozenset(
    {
        "Newchannel",
        "Newstate",
        "NewCallerid",
        "NewConnectedLine",
        "Newexten",
        "BridgeEnter",
        "BridgeLeave",
        "Hangup",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
    }
)


def _hms(seconds: float) -> str:
    """Format a duration as CoreShowChannel does.

    >>> _hms(3725.9)
    '01:02:05'
    """
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


class LiveState:
    """The channels and queue callers a session has been told about (for status replies).

    A recorded snapshot would contradict the calls being played: a client re-syncing from it
    would drop every live call and rebuild the snapshot's. So ``CoreShowChannels`` and
    ``QueueStatus`` are answered from what this session was actually sent.
    """

    def __init__(self, clock: Callable[[], float], *, speed: float) -> None:
        self._clock = clock
        self._rate = speed if speed > 0 else 1.0  # recorded seconds per real second
        self.channels: dict[str, dict[str, str]] = {}
        self._born: dict[str, float] = {}
        self.queue: dict[str, dict[str, str]] = {}
        self._joined: dict[str, float] = {}

    def feed(self, raw: str) -> None:
        """Update the state from one frame sent to the client (anything else is ignored)."""
        if not raw.startswith("Event: "):
            return
        name = raw[7 : raw.find("\r\n")]
        if name not in _STATE_EVENTS:
            return
        fields = dict(parse_action(raw.removesuffix(FRAME_END)))
        uid = fields.get("Uniqueid")
        if not uid:
            return
        if name == "Hangup":
            self.channels.pop(uid, None)
            self._born.pop(uid, None)
            self.queue.pop(uid, None)
            return
        if name == "QueueCallerJoin":
            self.queue[uid] = fields
            self._joined[uid] = self._clock()
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self.queue.pop(uid, None)
        channel = self.channels.get(uid)
        if channel is None:
            channel = self.channels[uid] = {
                "Application": "",
                "ApplicationData": "",
                "BridgeId": "",
            }
            self._born[uid] = self._clock()
        for key in _CHANNEL_FIELDS:
            if key in fields:
                channel[key] = fields[key]
        if name == "Newexten":
            channel["Application"] = fields.get("Application", "")
            channel["ApplicationData"] = fields.get("AppData", "")
        elif name == "BridgeEnter":
            channel["BridgeId"] = fields.get("BridgeUniqueid", "")
        elif name == "BridgeLeave":
            channel["BridgeId"] = ""

    def core_show_channels(self, action_id: str | None) -> list[str]:
        """Return the reply frames of ``CoreShowChannels``."""
        now = self._clock()
        frames = [
            _frame(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("EventList", "start"),
                    ("Message", "Channels will follow"),
                ]
            )
        ]
        for uid, ch in self.channels.items():
            pairs: list[tuple[str, str | None]] = [("Event", "CoreShowChannel")]
            pairs.append(("ActionID", action_id))
            pairs += [(k, ch.get(k, "")) for k in _CHANNEL_FIELDS]
            pairs += [
                ("Application", ch["Application"]),
                ("ApplicationData", ch["ApplicationData"]),
                ("Duration", _hms((now - self._born[uid]) * self._rate)),
                ("BridgeId", ch["BridgeId"]),
            ]
            frames.append(_frame(pairs))
        frames.append(_list_complete("CoreShowChannelsComplete", action_id, len(frames) - 1))
        return frames

    def queue_status(self, action_id: str | None, recorded: list[str]) -> list[str]:
        """Return the reply frames of ``QueueStatus``: recorded params and members, live callers.

        ``recorded`` holds the recorded QueueParams/QueueMember frames (already carrying
        ``action_id``); their ``Calls`` count is made live.
        """
        now = self._clock()
        frames = [
            _frame(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("EventList", "start"),
                    ("Message", "Queue status will follow"),
                ]
            )
        ]
        by_queue: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for uid, entry in self.queue.items():
            by_queue.setdefault(entry.get("Queue", ""), []).append((uid, entry))
        for raw in recorded:
            if raw.startswith("Event: QueueParams"):
                m = re.search(r"\r\nQueue: ([^\r]*)", raw)
                calls = len(by_queue.get(m.group(1) if m else "", []))
                raw = re.sub(r"\r\nCalls: \d+\r\n", f"\r\nCalls: {calls}\r\n", raw, count=1)
            frames.append(raw)
        for queue, entries in by_queue.items():
            for position, (uid, entry) in enumerate(entries, 1):
                wait = (now - self._joined[uid]) * self._rate
                frames.append(
                    _frame(
                        [
                            ("Event", "QueueEntry"),
                            ("Queue", queue),
                            ("Position", str(position)),
                            ("Channel", entry.get("Channel", "")),
                            ("Uniqueid", uid),
                            ("CallerIDNum", entry.get("CallerIDNum", "")),
                            # QueueEntry writes an unknown name as "unknown", not "<unknown>".
                            ("CallerIDName", _unknown(entry.get("CallerIDName", ""))),
                            ("ConnectedLineNum", entry.get("ConnectedLineNum", "")),
                            ("ConnectedLineName", _unknown(entry.get("ConnectedLineName", ""))),
                            ("Wait", str(int(wait))),
                            ("Priority", "0"),
                            ("ActionID", action_id),
                        ]
                    )
                )
        frames.append(_list_complete("QueueStatusComplete", action_id, len(frames) - 1))
        return frames


def _unknown(name: str) -> str:
    return "unknown" if name in ("", "<unknown>") else name


def _list_complete(event: str, action_id: str | None, items: int) -> str:
    return _frame(
        [
            ("Event", event),
            ("ActionID", action_id),
            ("EventList", "Complete"),
            ("ListItems", str(items)),
        ]
    )


# -- the server -----------------------------------------------------------------------------


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator did, for tests and the console."""

    connections: int = 0
    logins: int = 0
    login_failures: int = 0
    login_attempts: list[float] = field(default_factory=list)  # loop.time() of each Login
    frames_sent: int = 0  # every frame handed to a socket (banner, replies, events)
    events_sent: int = 0
    bytes_sent: int = 0
    plays_started: int = 0
    plays_completed: int = 0
    originates: int = 0
    actions: Counter[str] = field(default_factory=Counter)  # received, by lower-case name


_CLOSE = object()  # writer-queue marker: close the connection once everything before is sent


class SimSession:
    """One client connection; its failure modes can be triggered at any time."""

    def __init__(
        self, sim: AmiSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.logged_in = False
        self.closed = False
        self.frames_sent = 0
        self._out: deque[tuple[bytes, str] | object] = deque()
        self._queued_bytes = 0
        self._have_data = asyncio.Event()
        self._drained = asyncio.Event()  # set while everything queued has been written
        self._room = asyncio.Event()
        self._room.set()
        self._running = asyncio.Event()  # cleared while stalled
        self._running.set()
        self._drop_requested = False
        self._tasks: set[asyncio.Task[Any]] = set()  # player and Originate outcomes
        self._io_tasks: set[asyncio.Task[Any]] = set()  # the writer
        self._rng = random.Random(sim.seed)
        self.state = LiveState(time.monotonic, speed=sim.speed)

    # -- failure modes ----------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """True while the session neither sends nor answers (see ``stall``)."""
        return not self._running.is_set()

    def stall(self) -> None:
        """Stop sending anything and stop answering actions, Ping included; keep the TCP open."""
        self._running.clear()

    def resume(self) -> None:
        """Undo ``stall``: queued frames go out; actions received meanwhile stay unanswered."""
        self._running.set()

    def drop_mid_frame(self) -> None:
        """Send the first half of the next frame, then close the connection."""
        self._drop_requested = True
        self._running.set()
        if not self._out:
            self._enqueue(
                _frame(
                    [
                        ("Event", "Newexten"),
                        ("Privilege", "dialplan,all"),
                        ("Timestamp", f"{time.time():.6f}"),
                        ("Channel", "Local/cut@here-1;1"),
                    ]
                ),
                "event",
            )

    def send_shutdown(self, *, restart: bool = True) -> None:
        """Send ``Event: Shutdown`` as Asterisk does when stopping, then close."""
        self._drop_requested = False
        self._out.clear()
        self._queued_bytes = 0
        self._running.set()
        self._enqueue(
            _frame(
                [
                    ("Event", "Shutdown"),
                    ("Privilege", "system,all"),
                    ("Timestamp", f"{time.time():.6f}"),
                    ("Shutdown", "Cleanly"),
                    ("Restart", "True" if restart else "False"),
                ]
            ),
            "event",
        )
        self._out.append(_CLOSE)
        self._room.set()
        self._have_data.set()
        self.sim._cancel_tasks(self._tasks)

    # -- sending ------------------------------------------------------------------------

    def _enqueue(self, raw: str, kind: str) -> None:
        self._drained.clear()
        if kind == "event":
            if self.sim.queue_pauses and raw.startswith(_MEMBER_EVENTS):
                raw = self.sim.with_pause_state(raw)
            self.state.feed(raw)
        data = raw.encode("utf-8")
        self._out.append((data, kind))
        self._queued_bytes += len(data)
        if self._queued_bytes >= _HIGH_WATER_BYTES:
            self._room.clear()
        self._have_data.set()

    def _close_after_sending(self) -> None:
        self._out.append(_CLOSE)
        self._have_data.set()

    async def _wait_for_room(self) -> None:
        await self._room.wait()

    def _count(self, data: bytes, kind: str) -> None:
        stats = self.sim.stats
        stats.frames_sent += 1
        self.frames_sent += 1
        stats.bytes_sent += len(data)
        if kind == "event":
            stats.events_sent += 1

    def _next_chunk_size(self) -> int | None:
        size = self.sim.chunk_size
        if size is None:
            return None
        if size == "random":
            return self._rng.randint(1, self.sim.random_chunk_max)
        return size

    async def _write_loop(self) -> None:
        try:
            await self._write_frames()
        except ConnectionError as exc:
            log.info("simulator: %s: %r while writing", self.peer, exc)

    async def _write_frames(self) -> None:
        buf = b""
        close_after = False
        while True:
            await self._running.wait()
            if not buf and (close_after or not self._out):
                if close_after:
                    break
                self._drained.set()
                self._have_data.clear()
                await self._have_data.wait()
                continue
            chunk_size = self._next_chunk_size()
            limit = chunk_size if chunk_size is not None else 64 * 1024
            # Gather queued frames up to one chunk: many small events share one write.
            while self._out and len(buf) < limit and not close_after:
                item = self._out.popleft()
                if item is _CLOSE:
                    close_after = True
                    break
                assert isinstance(item, tuple)
                data, kind = item
                self._queued_bytes -= len(data)
                self._count(data, kind)
                if self._drop_requested:
                    cut = buf + data[: max(1, len(data) // 2)]
                    self.writer.write(cut)
                    await self.writer.drain()
                    log.info("simulator: dropping %s mid-frame", self.peer)
                    return
                if kind == "event" and self.sim.on_frame is not None:
                    self.sim.on_frame(self, data.decode("utf-8"))
                buf += data
            if self._queued_bytes < _HIGH_WATER_BYTES // 2:
                self._room.set()
            if chunk_size is None:
                out, buf = buf, b""
            else:
                out, buf = buf[:chunk_size], buf[chunk_size:]
            if out:
                self.writer.write(out)
                await self.writer.drain()
                if chunk_size is not None:
                    # Give the reader a turn, so the chunk boundaries reach it as sent.
                    await asyncio.sleep(0)

    # -- the conversation --------------------------------------------------------------

    async def run(self) -> None:
        writer_task = self.sim._spawn(self._write_loop(), self._io_tasks, "sim-writer")
        self._enqueue(BANNER, "banner")
        pending = b""
        try:
            while not writer_task.done():
                read = asyncio.ensure_future(self.reader.read(65536))
                done, _ = await asyncio.wait(
                    {read, writer_task}, return_when=asyncio.FIRST_COMPLETED
                )
                if read not in done:
                    read.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await read
                    break
                data = read.result()
                if not data:
                    break
                pending += data
                *frames, pending = pending.split(b"\r\n\r\n")
                for frame in frames:
                    if frame.strip():
                        self._handle(parse_action(frame.decode("utf-8", "replace")))
        except ConnectionError as exc:
            log.info("simulator: %s: %r", self.peer, exc)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection and stop everything this session runs."""
        if self.closed:
            return
        self.closed = True
        self.logged_in = False
        tasks = [t for t in self._tasks | self._io_tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
        await self.sim._changed()

    def _handle(self, fields: list[tuple[str, str]]) -> None:
        action = (_get(fields, "Action", "") or "").lower()
        action_id = _get(fields, "ActionID")
        self.sim.stats.actions[action] += 1
        if self.stalled:
            return
        if action == "login":
            self._login(fields, action_id)
        elif action == "logoff":
            self._reply(action_id, "Goodbye", [("Message", "Thanks for all the fish.")])
            self._close_after_sending()
        elif not self.logged_in:
            self._reply(action_id, "Error", [("Message", "Permission denied")])
        elif action == "ping":
            self._reply(
                action_id, "Success", [("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]
            )
        elif action == "originate":
            self._originate(fields, action_id)
        elif action == "queuepause":
            self._queue_pause(fields, action_id)
        elif action == "coreshowchannels" and self.sim.live_status:
            for raw in self.state.core_show_channels(action_id):
                self._enqueue(raw, _kind(raw))
        elif action == "queuestatus" and self.sim.live_status:
            lab_id, recorded = self.sim.action_replies.get("queuestatus", ("", []))
            keep = [
                _replace_action_id(raw, lab_id, action_id)
                for raw in recorded
                if raw.startswith(("Event: QueueParams", "Event: QueueMember"))
            ]
            for raw in self.state.queue_status(action_id, keep):
                self._enqueue(raw, _kind(raw))
        elif action in self.sim.action_replies:
            # Recorded while the lab's calls were live; only the ActionID becomes the client's.
            lab_id, frames = self.sim.action_replies[action]
            for raw in frames:
                self._enqueue(_replace_action_id(raw, lab_id, action_id), _kind(raw))
        else:
            self._reply(action_id, "Error", [("Message", "Invalid/unknown command")])

    def _reply(self, action_id: str | None, response: str, rest: list[tuple[str, str]]) -> None:
        self._enqueue(_frame([("Response", response), ("ActionID", action_id), *rest]), "response")

    def _login(self, fields: list[tuple[str, str]], action_id: str | None) -> None:
        sim = self.sim
        sim.stats.login_attempts.append(asyncio.get_running_loop().time())
        ok = (
            not sim.reject_logins
            and _get(fields, "Username") == sim.username
            and _get(fields, "Secret") == sim.secret
        )
        if not ok:
            sim.stats.login_failures += 1
            self._reply(action_id, "Error", [("Message", "Authentication failed")])
            # Asterisk ends the session after a failed login.
            self._close_after_sending()
            sim._notify_soon()
            return
        self.logged_in = True
        sim.stats.logins += 1
        self._reply(action_id, "Success", [("Message", "Authentication accepted")])
        uptime = str(int(time.time() - sim.started_at))
        self._enqueue(
            _frame(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", uptime),
                    ("LastReload", uptime),
                    ("Status", "Fully Booted"),
                ]
            ),
            "event",
        )
        events = (_get(fields, "Events", "on") or "on").strip().lower()
        if events not in ("off", "no", "0", "false") and sim.traces:
            sim._spawn(self._play(), self._tasks, "sim-player")
        sim._notify_soon()

    async def _play(self) -> None:
        sim = self.sim
        loop = asyncio.get_running_loop()
        plays = itertools.count() if sim.loop_forever else range(sim.plays)
        for n in plays:
            if n > 0:
                await asyncio.sleep(sim.loop_gap_s / sim.speed if sim.speed > 0 else 0)
            fresh = sim.stats.plays_started > 0 or sim.rewrite_first_play
            sim.stats.plays_started += 1
            for trace in sim.traces:
                rewrite = sim._rewrite_for(trace.block) if fresh else None
                if sim.on_play is not None:
                    sim.on_play(self, trace.name, rewrite.map_id if rewrite else str)
                start = loop.time()
                for i, (t, raw) in enumerate(trace.block.frames):
                    if sim.speed > 0:
                        delay = start + t / sim.speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    elif i % 256 == 255:
                        await asyncio.sleep(0)
                    await self._wait_for_room()
                    self._enqueue(rewrite.apply(raw) if rewrite else raw, _kind(raw))
            sim.stats.plays_completed += 1
        await self._drained.wait()  # "done" means written to the socket, not just queued
        sim._play_done.set()

    def _queue_pause(self, fields: list[tuple[str, str]], action_id: str | None) -> None:
        """Answer ``QueuePause`` as app_queue does, then tell every session ``QueueMemberPause``."""
        interface = _get(fields, "Interface") or ""
        paused_value = _get(fields, "Paused") or ""
        if not interface:
            self._reply(action_id, "Error", [("Message", "Need 'Interface' parameter.")])
            return
        if not paused_value:
            self._reply(action_id, "Error", [("Message", "Need 'Paused' parameter.")])
            return
        paused = paused_value.strip().lower() in ("yes", "true", "y", "t", "1", "on")
        frames = self.sim.pause_member(
            interface=interface,
            paused=paused,
            queue=_get(fields, "Queue") or None,
            reason=_get(fields, "Reason") or "",
        )
        if not frames:
            self._reply(action_id, "Error", [("Message", "Interface not found")])
            return
        message = "Interface paused successfully" if paused else "Interface unpaused successfully"
        self._reply(action_id, "Success", [("Message", message)])
        # An event, not a reply: every logged-in session (the listener's too) gets it.
        for session in self.sim.live_sessions:
            if session.logged_in:
                for raw in frames:
                    session._enqueue(raw, "event")

    def _originate(self, fields: list[tuple[str, str]], action_id: str | None) -> None:
        sim = self.sim
        request = OriginateRequest.from_fields(fields, callback_context=sim.callback_context)
        sim.stats.originates += 1
        sim.originate_requests.append(request)
        self._reply(action_id, "Success", [("Message", "Originate successfully queued")])
        outcome = sim.outcome_rule(request) if sim.outcome_rule is not None else "answered"
        template = sim._template_for(request.style, outcome)
        if template is None:
            log.warning("simulator: no recorded Originate outcome at all; nothing follows")
            return
        sim._spawn(self._play_originate(request, template), self._tasks, "sim-originate")

    async def _play_originate(
        self, request: OriginateRequest, template: _OriginateTemplate
    ) -> None:
        sim = self.sim
        lab = template.request
        tokens = {lab.patient_number: request.patient_number, lab.extension: request.extension}
        lab_name, lab_number = _split_caller_id(lab.caller_id)
        name, number = _split_caller_id(request.caller_id)
        if lab_name and name:
            tokens[lab_name] = name
        if lab_number and number and lab_number not in tokens:
            tokens[lab_number] = number
        rewrite = _Rewrite(
            template.block,
            now=time.time(),
            counters=sim._counters,
            channels=sim._channels,
            tokens=tokens,
            action_id=(lab.action_id or "", request.action_id),
            task_id=(lab.task_id, request.task_id or "") if lab.task_id else None,
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        for t, raw in template.block.frames:
            if sim.speed > 0:
                delay = start + t / sim.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._wait_for_room()
            self._enqueue(rewrite.apply(raw), "event")


def _kind(raw: str) -> str:
    return "response" if raw.startswith("Response:") else "event"


def _replace_action_id(raw: str, old: str, new: str | None) -> str:
    line = f"ActionID: {old}\r\n"
    return raw.replace(line, f"ActionID: {new}\r\n" if new is not None else "", 1)


class _ServerProtocol(asyncio.StreamReaderProtocol):
    """Registers each connection's transport at once, so ``stop()`` can close connections
    whose handler task has not started yet (asyncio would warn about them at loop close)."""

    def __init__(self, sim: AmiSimulator) -> None:
        self._sim = sim
        self._own_transport: asyncio.BaseTransport | None = None
        super().__init__(asyncio.StreamReader(), sim._accept)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._own_transport = transport
        self._sim._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._own_transport is not None:
            self._sim._transports.discard(self._own_transport)
        super().connection_lost(exc)


class AmiSimulator:
    """An AMI server for tests and the demo; use ``async with`` (see the module docstring)."""

    def __init__(
        self,
        *,
        traces: Sequence[str | Path] = (),
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "callcenter",
        secret: str = DEFAULT_AMI_SECRET,
        speed: float = 1.0,
        loop_forever: bool = False,
        plays: int = 1,
        loop_gap_s: float = 1.0,
        chunk_size: int | Literal["random"] | None = None,
        random_chunk_max: int = 512,
        seed: int | None = None,
        snapshot_trace: str | None = SNAPSHOT_TRACE,
        originate_traces: Sequence[str] = ORIGINATE_TRACES,
        outcome_rule: OutcomeRule | None = None,
        callback_context: str = "callback",
        rewrite_first_play: bool = False,
        reject_logins: bool = False,
        status: Literal["auto", "live", "recorded"] = "auto",
        on_play: PlayObserver | None = None,
        on_frame: FrameObserver | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        if isinstance(chunk_size, int) and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if plays < 1:
            raise ValueError(f"plays must be >= 1, got {plays}")
        self.host = host
        self._port = port
        self.username = username
        self.secret = secret
        self.speed = speed
        self.loop_forever = loop_forever
        self.plays = plays
        self.loop_gap_s = loop_gap_s
        self.chunk_size = chunk_size
        self.random_chunk_max = random_chunk_max
        self.seed = seed
        self.callback_context = callback_context
        self.rewrite_first_play = rewrite_first_play
        #: Runtime switches for tests.
        self.reject_logins = reject_logins
        self.outcome_rule = outcome_rule
        #: Observers for soak tests: each trace play (with its id renumbering) as it starts,
        #: and each event frame handed whole to a client's socket (never a frame cut short).
        self.on_play = on_play
        self.on_frame = on_frame

        self.traces = [load_trace(str(t)) for t in traces]
        # CoreShowChannels/QueueStatus: from what each session was sent while traces play,
        # else the recorded snapshot (a consistent world of its own).
        self.live_status = status == "live" or (status == "auto" and bool(self.traces))
        self.action_replies = load_action_replies(snapshot_trace) if snapshot_trace else {}
        self.templates: list[_OriginateTemplate] = []
        for name in originate_traces:
            self.templates.extend(load_originate_templates(name, callback_context=callback_context))
        blocks = [t.block for t in self.traces] + [t.block for t in self.templates]
        self._counters = _Allocator(
            1 + max((b.counters[1] for b in blocks if b.counters), default=0)
        )
        self._channels = _Allocator(
            1 + max((b.channel_seqs[1] for b in blocks if b.channel_seqs), default=0)
        )

        #: (queue, interface) -> (paused, reason) set through QueuePause; QueuePause requests.
        self.queue_pauses: dict[tuple[str, str], tuple[bool, str]] = {}
        self.pause_requests: list[dict[str, str]] = []
        self.stats = SimulatorStats()
        self.sessions: list[SimSession] = []
        self.originate_requests: list[OriginateRequest] = []
        self.started_at = time.time()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cond: asyncio.Condition | None = None
        self._stopping = False
        self._transports: set[asyncio.BaseTransport] = set()
        self._play_done = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually listened on (useful with ``port=0``)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Start listening."""
        self._cond = asyncio.Condition()
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._server = await loop.create_server(
            lambda: _ServerProtocol(self), self.host, self._port
        )
        log.info("AMI simulator listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Close every session and the listening socket."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            await session.close()
        self._cancel_tasks(self._tasks)
        if self._tasks:
            await asyncio.wait(self._tasks)
        # Connections accepted a moment ago whose handler has not run yet.
        for transport in list(self._transports):
            transport.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)

    async def __aenter__(self) -> AmiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- queue members (QueuePause) -------------------------------------------------------

    def queue_members(self) -> list[dict[str, str]]:
        """Return the recorded queue members (QueueStatus's QueueMember items, by field)."""
        _, frames = self.action_replies.get("queuestatus", ("", []))
        members = []
        for raw in frames:
            if raw.startswith("Event: QueueMember\r\n"):
                members.append(dict(parse_action(raw.removesuffix(FRAME_END))))
        return members

    def pause_member(
        self, *, interface: str, paused: bool, queue: str | None, reason: str
    ) -> list[str]:
        """Record a pause; return the ``QueueMemberPause`` frames (none: no such member).

        The frames have the recorded ``QueueMemberStatus`` fields in their order.
        """
        self.pause_requests.append(
            {"Interface": interface, "Paused": str(paused), "Queue": queue or "", "Reason": reason}
        )
        now = time.time()
        frames = []
        for m in self.queue_members():
            if m.get("Location") != interface or (queue and m.get("Queue") != queue):
                continue
            key = (m.get("Queue", ""), interface)
            self.queue_pauses[key] = (paused, reason if paused else "")
            frames.append(
                _frame(
                    [
                        ("Event", "QueueMemberPause"),
                        ("Privilege", "agent,all"),
                        ("Timestamp", f"{now:.6f}"),
                        ("Queue", m.get("Queue")),
                        ("MemberName", m.get("Name")),
                        ("Interface", interface),
                        ("StateInterface", m.get("StateInterface")),
                        ("Membership", m.get("Membership")),
                        ("Penalty", m.get("Penalty")),
                        ("CallsTaken", m.get("CallsTaken")),
                        ("LastCall", m.get("LastCall")),
                        ("LastPause", str(int(now))),
                        ("LoginTime", m.get("LoginTime")),
                        ("InCall", m.get("InCall")),
                        ("Status", m.get("Status")),
                        ("Paused", "1" if paused else "0"),
                        ("PausedReason", reason if paused else ""),
                        ("Ringinuse", "0"),
                        ("Wrapuptime", m.get("Wrapuptime")),
                    ]
                )
            )
        return frames

    def with_pause_state(self, raw: str) -> str:
        """Make a played ``QueueMemberStatus`` (or a ``QueueStatus`` member item) agree with
        the pauses asked for since."""
        fields = dict(parse_action(raw.removesuffix(FRAME_END)))
        interface = fields.get("Interface") or fields.get("Location", "")
        state = self.queue_pauses.get((fields.get("Queue", ""), interface))
        if state is None:
            return raw
        paused, reason = state
        raw = re.sub(r"\r\nPaused: [^\r]*\r\n", f"\r\nPaused: {int(paused)}\r\n", raw, count=1)
        return re.sub(
            r"\r\nPausedReason: [^\r]*\r\n", f"\r\nPausedReason: {reason}\r\n", raw, count=1
        )

    # -- what tests use -------------------------------------------------------------------

    @property
    def live_sessions(self) -> list[SimSession]:
        """Open sessions, oldest first."""
        return [s for s in self.sessions if not s.closed]

    async def wait_for_client(self, *, logins: int = 1, timeout: float = 10.0) -> SimSession:
        """Wait until ``logins`` logins happened in total; return the newest logged-in session.

        :raises TimeoutError: when that does not happen within ``timeout`` seconds.
        """
        assert self._cond is not None, "start() the simulator first"

        def ready() -> bool:
            return self.stats.logins >= logins and any(s.logged_in for s in self.live_sessions)

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(ready), timeout)
        return [s for s in self.live_sessions if s.logged_in][-1]

    async def wait_done(self) -> None:
        """Wait until some client has been sent every trace ``plays`` times (not in a loop)."""
        await self._play_done.wait()

    def drop_mid_frame(self) -> None:
        """Cut every open connection in the middle of a frame."""
        for session in self.live_sessions:
            session.drop_mid_frame()

    def send_shutdown(self, *, restart: bool = True) -> None:
        """Send ``Event: Shutdown`` to every open connection and close it."""
        for session in self.live_sessions:
            session.send_shutdown(restart=restart)

    def stall(self) -> None:
        """Stall every open connection (no frames, no replies, not even to Ping)."""
        for session in self.live_sessions:
            session.stall()

    def resume(self) -> None:
        """Undo ``stall`` on every open connection."""
        for session in self.live_sessions:
            session.resume()

    # -- internals ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            writer.close()
            return
        session = SimSession(self, reader, writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.sessions.append(session)
        self.stats.connections += 1
        log.info("simulator: client %s connected", session.peer)
        await self._changed()
        try:
            await session.run()
        except Exception:
            log.exception("simulator: session %s failed", session.peer)

    async def _changed(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def _notify_soon(self) -> None:
        self._spawn(self._changed(), self._tasks, "sim-notify")

    def _spawn(self, coro: Any, tasks: set[asyncio.Task[Any]], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("simulator task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def _cancel_tasks(self, tasks: set[asyncio.Task[Any]]) -> None:
        current = asyncio.current_task()
        for task in list(tasks):
            if task is not current:
                task.cancel()

    def _rewrite_for(self, block: _Block) -> _Rewrite:
        return _Rewrite(block, now=time.time(), counters=self._counters, channels=self._channels)

    def _template_for(self, style: OriginateStyle, outcome: str) -> _OriginateTemplate | None:
        exact = [t for t in self.templates if t.request.style == style and t.outcome == outcome]
        if exact:
            return exact[0]
        same_outcome = [t for t in self.templates if t.outcome == outcome]
        if same_outcome:
            log.info(
                "simulator: no recorded %s/%s Originate; using %s/%s",
                style,
                outcome,
                same_outcome[0].request.style,
                outcome,
            )
            return same_outcome[0]
        return self.templates[0] if self.templates else None


# -- command line ---------------------------------------------------------------------------


def _chunk_arg(value: str) -> int | Literal["random"]:
    if value == "random":
        return "random"
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a byte count or 'random', got {value!r}"
        ) from exc
    if n < 1:
        raise argparse.ArgumentTypeError("chunk size must be at least 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``callcenter simulate`` / ``scripts/ami_simulator.py``."""
    p = argparse.ArgumentParser(
        prog="callcenter simulate",
        description="AMI server playing recorded Asterisk 22 traffic to every logged-in client.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=5038, help="port (default %(default)s; 0 = any)")
    p.add_argument("--username", default="callcenter", help="AMI user accepted")
    p.add_argument("--secret", default=DEFAULT_AMI_SECRET, help="AMI secret accepted")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1 = real time, N = N times faster, 0 = as fast as possible (default %(default)s)",
    )
    p.add_argument("--loop", action="store_true", help="play the traces again and again")
    p.add_argument(
        "--trace",
        nargs="+",
        metavar="NAME",
        default=list(DEFAULT_TRACES),
        help="shipped trace names or .jsonl paths, played in order (default: %(default)s)",
    )
    p.add_argument(
        "--chunk",
        type=_chunk_arg,
        default=None,
        metavar="N|random",
        help="write in chunks of N bytes (or random sizes) to exercise clients' framing",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for random chunk sizes")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def serve() -> None:
        async with AmiSimulator(
            traces=args.trace,
            host=args.host,
            port=args.port,
            username=args.username,
            secret=args.secret,
            speed=args.speed,
            loop_forever=args.loop,
            chunk_size=args.chunk,
            seed=args.seed,
        ) as sim:
            print(
                f"AMI simulator on {args.host}:{sim.port} (user {args.username!r}), playing "
                f"{', '.join(args.trace)} {'in a loop' if args.loop else 'once per client'} "
                f"at speed {args.speed or 'max'}. Ctrl-C stops.",
                flush=True,
            )
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except TraceError as exc:
        print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        pass
    return 0


__all__ = [
    "AmiSimulator",
    "OriginateRequest",
    "Outcome",
    "OutcomeRule",
    "SimSession",
    "SimulatorStats",
    "build_parser",
    "main",
]
