"""The notifier port: every side effect a screen or a log sees goes through these methods.

The web layer implements it with Socket.IO; the demo prints to the console; tests record.
Payloads are plain dicts from one serializer (``call_payload``) so every consumer agrees.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallQueued,
    CallStarted,
    OperatorStateChanged,
)
from callcenter.calls.model import CallRecord


@dataclass(frozen=True, slots=True)
class TaskNotice:
    """A change to a callback task, as screens show it."""

    task_id: int
    phone: str
    reason: str
    status: str  # "opened" | "repeat_drop" | "taken_over" | "closed" | "refused"
    linkedid: str | None
    detail: str | None = None


class Notifier(Protocol):
    """One method per domain event a screen, a log or a metric may care about."""

    def call_started(self, effect: CallStarted) -> None: ...
    def call_queued(self, effect: CallQueued) -> None: ...
    def call_ringing(self, effect: AgentRinging) -> None: ...
    def agent_stopped_ringing(self, effect: AgentStoppedRinging) -> None: ...
    def call_answered(self, effect: CallAnswered) -> None: ...
    def call_ended(self, call: CallRecord) -> None: ...
    def task_changed(self, notice: TaskNotice) -> None: ...
    def operator_state(self, effect: OperatorStateChanged) -> None: ...
    def link_state(self, *, up: bool, at: float, reason: str | None) -> None: ...


def call_payload(call: CallRecord) -> dict[str, Any]:
    """Serialize a finished call for screens and the JSON API."""
    data = call.to_contract()
    data.update(
        caller_name=call.caller_name,
        did=call.did,
        agent_name=call.agent_name,
        last_agent=call.last_agent,
        transfers=list(call.transfers),
    )
    return data


class NullNotifier:
    """Drop every notification (batch replay, workers without screens)."""

    def call_started(self, effect: CallStarted) -> None:
        pass

    def call_queued(self, effect: CallQueued) -> None:
        pass

    def call_ringing(self, effect: AgentRinging) -> None:
        pass

    def agent_stopped_ringing(self, effect: AgentStoppedRinging) -> None:
        pass

    def call_answered(self, effect: CallAnswered) -> None:
        pass

    def call_ended(self, call: CallRecord) -> None:
        pass

    def task_changed(self, notice: TaskNotice) -> None:
        pass

    def operator_state(self, effect: OperatorStateChanged) -> None:
        pass

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        pass


@dataclass
class RecordingNotifier(NullNotifier):
    """Keep every notification in order (tests)."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def call_started(self, effect: CallStarted) -> None:
        self.events.append(("call_started", effect))

    def call_queued(self, effect: CallQueued) -> None:
        self.events.append(("call_queued", effect))

    def call_ringing(self, effect: AgentRinging) -> None:
        self.events.append(("call_ringing", effect))

    def agent_stopped_ringing(self, effect: AgentStoppedRinging) -> None:
        self.events.append(("agent_stopped_ringing", effect))

    def call_answered(self, effect: CallAnswered) -> None:
        self.events.append(("call_answered", effect))

    def call_ended(self, call: CallRecord) -> None:
        self.events.append(("call_ended", call))

    def task_changed(self, notice: TaskNotice) -> None:
        self.events.append(("task_changed", notice))

    def operator_state(self, effect: OperatorStateChanged) -> None:
        self.events.append(("operator_state", effect))

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        self.events.append(("link_state", (up, at, reason)))

    def of(self, kind: str) -> list[Any]:
        """Return the payloads of one kind of notification."""
        return [p for k, p in self.events if k == kind]


_TASK_WORDS = {
    "opened": "opened",
    "repeat_drop": "repeat drop on",
    "taken_over": "now a callback:",
    "attempt": "attempt on",
    "closed": "closed",
    "refused": "refused (consent)",
}


class ConsoleNotifier(NullNotifier):
    """Print calls and tasks as they happen (the demo's live view)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        # Calls are printed from the event loop and tasks from the store writer thread.
        self._lock = threading.Lock()

    def call_ringing(self, effect: AgentRinging) -> None:
        who = effect.caller_name or effect.caller or "?"
        self._line(f"RING   {effect.agent:<5} ← {who}")

    def call_ended(self, call: CallRecord) -> None:
        agent = f" agent {call.agent}" if call.agent else ""
        self._line(
            f"CALL   {call.direction:<8} {call.caller or '?':<14} {call.disposition:<17}"
            f" wait {call.wait_s:5.1f}s talk {call.talk_s:5.1f}s{agent}"
        )

    def task_changed(self, notice: TaskNotice) -> None:
        word = _TASK_WORDS.get(notice.status, notice.status)
        self._line(f"TASK   #{notice.task_id} {word} {notice.phone} ({notice.reason})")

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        self._line("AMI    link up" if up else f"AMI    link down: {reason}")

    def _line(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()


class FanoutNotifier:
    """Pass every notification to several notifiers in order (console and screens)."""

    def __init__(self, *targets: Notifier) -> None:
        self.targets = targets

    def call_started(self, effect: CallStarted) -> None:
        for t in self.targets:
            t.call_started(effect)

    def call_queued(self, effect: CallQueued) -> None:
        for t in self.targets:
            t.call_queued(effect)

    def call_ringing(self, effect: AgentRinging) -> None:
        for t in self.targets:
            t.call_ringing(effect)

    def agent_stopped_ringing(self, effect: AgentStoppedRinging) -> None:
        for t in self.targets:
            t.agent_stopped_ringing(effect)

    def call_answered(self, effect: CallAnswered) -> None:
        for t in self.targets:
            t.call_answered(effect)

    def call_ended(self, call: CallRecord) -> None:
        for t in self.targets:
            t.call_ended(call)

    def task_changed(self, notice: TaskNotice) -> None:
        for t in self.targets:
            t.task_changed(notice)

    def operator_state(self, effect: OperatorStateChanged) -> None:
        for t in self.targets:
            t.operator_state(effect)

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        for t in self.targets:
            t.link_state(up=up, at=at, reason=reason)
