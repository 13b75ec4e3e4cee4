"""What the tracker reports: plain, frozen facts about calls and operators.

The tracker returns these from ``feed``; the dispatcher at the edge turns them into rows,
screen pops and tasks. Every effect carries the AMI time (``ts``) of the event that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callcenter.calls.model import CallRecord, Direction


class OperatorStatus(StrEnum):
    FREE = "free"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class CallStarted:
    linkedid: str
    direction: Direction
    caller: str | None
    caller_name: str | None
    did: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class CallerIdentified:
    """The caller's number became known after the call started (NewCallerid)."""

    linkedid: str
    caller: str
    caller_name: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class CallQueued:
    linkedid: str
    queue: str
    caller: str | None
    position: int | None
    ts: float


@dataclass(frozen=True, slots=True)
class AgentRinging:
    """An administrator's phone rings for this call: the moment for the screen pop."""

    linkedid: str
    agent: str
    agent_name: str | None
    caller: str | None
    caller_name: str | None
    queue: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class AgentStoppedRinging:
    linkedid: str
    agent: str
    reason: str  # "no_answer" | "busy" | "cancelled"
    ts: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    linkedid: str
    agent: str | None
    agent_name: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class CallTransferred:
    linkedid: str
    kind: str  # "blind" | "attended"
    from_agent: str | None
    to_agent: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    call: CallRecord
    ts: float


@dataclass(frozen=True, slots=True)
class OperatorStateChanged:
    agent: str
    agent_name: str | None
    status: OperatorStatus
    ts: float
    until: float | None = None  # wrap-up: when it ends (Asterisk sends no event then)


@dataclass(frozen=True, slots=True)
class CallLost:
    """A call we followed ended while the AMI link was down: its outcome is unknown.

    Emitted by ``CallTracker.resync`` for calls missing from Asterisk's channel list. What we
    knew is kept; no disposition is guessed.
    """

    linkedid: str
    direction: Direction
    caller: str | None
    queue: str | None
    agent: str | None  # who had answered, if anyone had
    start_ts: float
    last_seen_ts: float  # time of the last event we had for it
    callback_task: str | None
    ts: float


Effect = (
    CallStarted
    | CallerIdentified
    | CallQueued
    | AgentRinging
    | AgentStoppedRinging
    | CallAnswered
    | CallTransferred
    | CallEnded
    | CallLost
    | OperatorStateChanged
)
