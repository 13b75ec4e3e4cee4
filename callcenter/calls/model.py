"""Finished-call records: the tracker's output, the store's input, the replay contract."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Disposition(StrEnum):
    """How a call ended (ARCHITECTURE.md command-line contract)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"  # caller hung up while queued
    QUEUE_TIMEOUT = "queue_timeout"  # Queue() gave up; the clinic hung up
    IVR_ABANDONED = "ivr_abandoned"  # caller hung up before reaching a queue or an agent
    NO_ANSWER = "no_answer"  # direct line rang out
    BUSY = "busy"
    FAILED = "failed"  # inbound call that failed for another reason (congestion, chanunavail)
    OUTBOUND_ANSWERED = "outbound_answered"
    OUTBOUND_FAILED = "outbound_failed"


#: Inbound dispositions that mean the caller did not get through (a dropped caller).
DROPPED_DISPOSITIONS = frozenset(
    {
        Disposition.ABANDONED,
        Disposition.IVR_ABANDONED,
        Disposition.QUEUE_TIMEOUT,
        Disposition.NO_ANSWER,
        Disposition.BUSY,
    }
)


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """One administrator's part in a call: rung, answered, or took a transfer."""

    agent: str  # extension, e.g. "101"
    agent_name: str | None
    rang_at: float | None
    answered_at: float | None
    ended_at: float | None
    outcome: str  # "answered" | "no_answer" | "busy" | "cancelled" | "transfer_target"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished call. The first fields are exactly the `callcenter replay` JSON line."""

    linkedid: str
    caller: str | None  # the number as Asterisk gave it ("+7…", "8…", "anonymous"); raw
    direction: Direction
    disposition: Disposition
    queue: str | None
    agent: str | None  # who answered first (extension)
    wait_s: float
    talk_s: float
    queue_wait_s: float | None
    start_ts: float
    end_ts: float
    recording: str | None  # basename of the WAV; None when no audio was written
    callback_task: str | None  # CALLBACK_TASK of an outbound callback
    # Beyond the contract:
    caller_name: str | None = None
    did: str | None = None  # the number dialled (inbound) / the patient's number (outbound)
    agent_name: str | None = None
    last_agent: str | None = None  # who had the caller last (after transfers)
    transfers: tuple[str, ...] = ()  # "blind" / "attended", in order
    legs: tuple[AgentLeg, ...] = field(default=())
    style: str | None = None  # outbound: "operator_first" | "patient_first"
    hangup_cause: int | None = None

    CONTRACT_FIELDS = (
        "linkedid",
        "caller",
        "direction",
        "disposition",
        "queue",
        "agent",
        "wait_s",
        "talk_s",
        "queue_wait_s",
        "start_ts",
        "end_ts",
        "recording",
        "callback_task",
    )

    def to_contract(self) -> dict[str, Any]:
        """Return the `callcenter replay` JSON object (ARCHITECTURE.md field order)."""
        data = asdict(self)
        out = {k: data[k] for k in self.CONTRACT_FIELDS}
        out["direction"] = str(self.direction)
        out["disposition"] = str(self.disposition)
        return out

    @property
    def is_dropped(self) -> bool:
        """Return True for an inbound caller who did not get through."""
        return self.direction is Direction.INBOUND and self.disposition in DROPPED_DISPOSITIONS
