"""The call page's timeline: what happened to one call, in order, in words (pure).

Built from the stored call, its administrator legs, the task events it caused and the
outcomes operators recorded. Times are aware datetimes; a moment the store cannot place (the
queue entry of a call that timed out in the queue with no phone rung) has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from web.operator.views import REASON_LABELS

LEG_OUTCOME_WORDS = {
    "no_answer": "не ответил(а)",
    "busy": "занят(а)",
    "cancelled": "перестал звонить (ответил другой или звонок завершён)",
    "transfer_target": "не принял(а) перевод",
}
TRANSFER_WORDS = {"blind": "слепой перевод", "attended": "перевод с консультацией"}
TASK_WORDS = {
    "opened": "открыта задача",
    "repeat_drop": "повторный сорвавшийся звонок, задача",
    "taken_over": "пациент звонил сам: задача стала перезвоном",
    "closed": "закрыта задача",
    "attempt": "попытка дозвона по задаче",
    "refused": "звонок не разрешён согласием (152-ФЗ), задача",
}


class LegLike(Protocol):
    @property
    def agent(self) -> str: ...
    @property
    def agent_name(self) -> str | None: ...
    @property
    def rang_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> str: ...


class CallLike(Protocol):
    @property
    def direction(self) -> str: ...
    @property
    def disposition(self) -> str: ...
    @property
    def caller(self) -> str | None: ...
    @property
    def did(self) -> str | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime: ...
    @property
    def wait_s(self) -> float: ...
    @property
    def queue_wait_s(self) -> float | None: ...
    @property
    def transfers(self) -> list[str]: ...


class TaskEventLike(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def task_id(self) -> int: ...
    @property
    def reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime | None
    kind: str  # started | queued | ringing | answered | leg_end | transfer | ended | task | outcome
    text: str


def who(leg: LegLike) -> str:
    """Return «101 (Иванова Анна)», or the extension alone."""
    return f"{leg.agent} ({leg.agent_name})" if leg.agent_name else leg.agent


def build_timeline(
    call: CallLike,
    legs: Sequence[LegLike],
    *,
    disposition_label: str,
    task_events: Sequence[TaskEventLike] = (),
    outcomes: Sequence[tuple[datetime, str, str]] = (),
) -> list[TimelineEntry]:
    """Return the call's timeline, oldest first (``outcomes``: (at, operator, label))."""
    entries: list[TimelineEntry] = []
    if call.direction == "inbound":
        origin = f" с номера {call.caller}" if call.caller else ""
        target = f" на {call.did}" if call.did else ""
        started = f"Входящий звонок{origin}{target}"
    else:
        # A callback or click-to-call: ``caller`` is the patient's number dialled.
        started = "Исходящий звонок" + (f" на номер {call.caller}" if call.caller else "")
    entries.append(TimelineEntry(call.started_at, "started", started))
    if call.queue and call.queue_wait_s is not None:
        entries.append(
            TimelineEntry(
                _queue_entry(call, legs),
                "queued",
                f"В очереди «{call.queue}»: ждал(а) {_decimal(call.queue_wait_s)} с",
            )
        )
    answered_legs = [leg for leg in legs if leg.answered_at is not None]
    first_answer = min((leg.answered_at for leg in answered_legs if leg.answered_at), default=None)
    transfers = list(call.transfers)
    for leg in legs:
        is_transfer = (
            first_answer is not None and leg.rang_at is not None and leg.rang_at > first_answer
        )
        if is_transfer and transfers:
            previous = _holder_before(answered_legs, leg.rang_at)
            kind = TRANSFER_WORDS.get(transfers.pop(0), "перевод")
            source = f" от {who(previous)}" if previous is not None else ""
            entries.append(
                TimelineEntry(leg.rang_at, "transfer", f"{kind.capitalize()}{source} к {who(leg)}")
            )
        if leg.rang_at is not None:
            entries.append(TimelineEntry(leg.rang_at, "ringing", f"Звонит у {who(leg)}"))
        if leg.answered_at is not None:
            entries.append(TimelineEntry(leg.answered_at, "answered", f"Ответил(а) {who(leg)}"))
        elif leg.outcome in LEG_OUTCOME_WORDS and leg.ended_at is not None:
            entries.append(
                TimelineEntry(
                    leg.ended_at, "leg_end", f"{who(leg)}: {LEG_OUTCOME_WORDS[leg.outcome]}"
                )
            )
    entries.append(TimelineEntry(call.ended_at, "ended", f"Звонок завершён: {disposition_label}"))
    for event in task_events:
        word = TASK_WORDS.get(event.kind, event.kind)
        entries.append(
            TimelineEntry(
                event.at,
                "task",
                f"{word.capitalize()} №{event.task_id} "
                f"({REASON_LABELS.get(event.reason, event.reason)})",
            )
        )
    for at, operator, label in outcomes:
        entries.append(TimelineEntry(at, "outcome", f"{operator} отметил(а) итог: {label}"))
    # Stable: entries of one moment keep the order above (ringing before answered...).
    return sorted(entries, key=lambda e: e.at or call.started_at)


def _queue_entry(call: CallLike, legs: Sequence[LegLike]) -> datetime | None:
    """Return when the caller joined the queue, where the stored times tell."""
    if call.queue_wait_s is None:
        return None
    if call.disposition == "answered":
        return call.started_at + timedelta(seconds=call.wait_s - call.queue_wait_s)
    if call.disposition == "abandoned":
        # The caller left the queue by hanging up: the call ended then.
        return call.ended_at - timedelta(seconds=call.queue_wait_s)
    rung = [leg.rang_at for leg in legs if leg.rang_at is not None]
    return min(rung) if rung else None


def _holder_before(answered: Sequence[LegLike], moment: datetime | None) -> LegLike | None:
    """Return the administrator who had the caller just before ``moment``."""
    if moment is None:
        return None
    earlier = [leg for leg in answered if leg.answered_at is not None and leg.answered_at < moment]
    return max(earlier, key=lambda leg: leg.answered_at or moment, default=None)


def _decimal(value: float) -> str:
    """Return ``value`` with one decimal, as Russian text writes it (a decimal comma).

    >>> _decimal(5.66)
    '5,7'
    """
    return f"{value:.1f}".replace(".", ",")
