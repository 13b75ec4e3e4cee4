"""Dropped-call rules: which finished call opens, extends or closes a callback task (pure).

The rule, from the issue: every ``abandoned``, ``ivr_abandoned``, ``queue_timeout``,
``no_answer`` or ``busy`` inbound call opens a callback task for the caller's normalized number,
reason ``abandoned_call`` (abandoned, ivr_abandoned) or ``missed_call`` (queue_timeout, no_answer,
busy). One open task per number. The task closes by itself when that number later gets through
(answered inbound → ``got_through``) or is reached by an answered outbound call
(``outbound_answered`` → ``reached``; an outbound call's ``caller`` is the patient's number and its
``callback_task`` the task it was placed for). A repeat missed call is recorded on the same task;
it is not a callback attempt. Withheld callers are counted, never turned into tasks.

What "later" means (the overlap rule). The clinic does not call back a dropped call if it talked
to that number in a call that was still going on when the dropped call started or came after it:
an answered contact C resolves a dropped call D when ``C.end_ts > D.start_ts``. So a task closes
when a contact ends after the start of the task's *latest* drop, and a drop opens no task when
such a contact is already stored. In the ``burst`` trace, +79777228464 is answered (start
…641.618, end …669.291) while the same person's second call 89777228464 (start …643.277) times
out at …669.324: the administrator was talking to the patient during the dropped call, so no
task is left open. The rule compares only each call's own start and end, so the outcome does not
depend on the order calls are persisted in (the store persists them as they end).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from callcenter.calls.model import CallRecord, Direction, Disposition
from callcenter.patients.phone import is_withheld, normalize_phone


class TaskReason(StrEnum):
    MISSED_CALL = "missed_call"
    ABANDONED_CALL = "abandoned_call"


#: Reasons of the tasks a dropped call opens.
DROPPED_REASONS = frozenset({"missed_call", "abandoned_call"})


class TaskKind(StrEnum):
    SERVICE = "service"  # a callback to a dropped caller: allowed without marketing consent
    MARKETING = "marketing"


class CloseReason(StrEnum):
    GOT_THROUGH = "got_through"  # the patient called again and was answered
    REACHED = "reached"  # our outbound call was answered


#: Which reason a dropped inbound call gives its callback task.
REASON_BY_DISPOSITION: Mapping[Disposition, TaskReason] = MappingProxyType(
    {
        Disposition.ABANDONED: TaskReason.ABANDONED_CALL,
        Disposition.IVR_ABANDONED: TaskReason.ABANDONED_CALL,
        Disposition.QUEUE_TIMEOUT: TaskReason.MISSED_CALL,
        Disposition.NO_ANSWER: TaskReason.MISSED_CALL,
        Disposition.BUSY: TaskReason.MISSED_CALL,
    }
)


#: Dispositions of a call in which the clinic and the patient talked ("answered" is inbound only,
#: "outbound_answered" outbound only, so the disposition alone says it).
CONTACT_DISPOSITIONS = frozenset({Disposition.ANSWERED, Disposition.OUTBOUND_ANSWERED})


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenTaskView:
    """What the rules need to know about a number's open task."""

    task_id: int
    phone: str
    last_drop_started_at: float  # start_ts of the latest dropped call recorded on the task
    reason: str = "missed_call"  # why the task was opened (a follow-up's reason, or a drop)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenTask:
    """Open a new callback task for a dropped caller."""

    phone: str
    reason: TaskReason
    kind: TaskKind = TaskKind.SERVICE
    opened_at: float  # the drop time: when the dropped call ended
    due_at: float
    drop_started_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordRepeatDrop:
    """Record another dropped call on the number's open task."""

    task_id: int
    reason: TaskReason  # this drop's reason; a dropped-call task keeps the reason it opened with
    dropped_at: float
    drop_started_at: float
    # The open task was one of our follow-ups (a reminder, «Забота», …): the caller rang us, so
    # it becomes a callback to a dropped caller (this drop's reason, a service call: the
    # caller's own request), due as soon as possible.
    takes_over: bool = False
    due_at: float | None = None  # with takes_over: when the callback is due


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseTask:
    """Close the task because the clinic and the patient have talked."""

    task_id: int
    close_reason: CloseReason
    closed_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordManualAttempt:
    """An administrator dialled the number by hand (a desk phone, not the dialer) and the
    patient did not answer: an attempt on the number's open task, like the dialer's."""

    task_id: int
    outcome: str  # "no_answer" | "busy" | "failed": the dialer's AttemptOutcome values
    ended_at: float


#: Hangup causes (Q.850) of an unanswered outbound call: busy, or the call could not be placed.
BUSY_CAUSES = frozenset({17})
FAILED_CAUSES = frozenset({1, 3, 27, 28, 34, 38, 41, 42})


def manual_attempt_outcome(hangup_cause: int | None) -> str:
    """Return how a hand-dialled unanswered call ended, as a dialer attempt outcome.

    >>> manual_attempt_outcome(17), manual_attempt_outcome(19), manual_attempt_outcome(34)
    ('busy', 'no_answer', 'failed')
    """
    if hangup_cause in BUSY_CAUSES:
        return "busy"
    if hangup_cause in FAILED_CAUSES:
        return "failed"
    return "no_answer"


@dataclass(frozen=True, slots=True, kw_only=True)
class NoChange:
    """Leave tasks as they are."""

    why: str


TaskDecision = OpenTask | RecordRepeatDrop | CloseTask | RecordManualAttempt | NoChange


def compute_due_at(*, dropped_at: float) -> float:
    """Return when a new callback task is due: as soon as possible after the drop."""
    # Hook: working-hours scheduling (a drop at 23:00 is due at opening time) is a later issue;
    # it replaces this body and keeps the signature.
    return dropped_at


def is_contact(call: CallRecord) -> bool:
    """Return True when the clinic and the caller actually talked on this call."""
    return call.disposition in CONTACT_DISPOSITIONS


def parse_callback_task_id(call: CallRecord) -> int | None:
    """Return the task id an outbound call was placed for, or None.

    >>> from callcenter.calls.model import CallRecord, Direction, Disposition
    >>> def outbound(callback_task):
    ...     return CallRecord(linkedid="1.1", caller="89161234567", direction=Direction.OUTBOUND,
    ...         disposition=Disposition.OUTBOUND_ANSWERED, queue=None, agent="101", wait_s=3.0,
    ...         talk_s=8.9, queue_wait_s=None, start_ts=1.0, end_ts=2.0, recording=None,
    ...         callback_task=callback_task)
    >>> parse_callback_task_id(outbound("1001")), parse_callback_task_id(outbound("x1"))
    (1001, None)
    """
    raw = call.callback_task
    if call.direction is not Direction.OUTBOUND or raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def contact_resolves_drop(*, contact_ended_at: float, drop_started_at: float) -> bool:
    """Return True when a contact ending at ``contact_ended_at`` makes a callback unnecessary.

    >>> contact_resolves_drop(contact_ended_at=1795369669.291, drop_started_at=1795369643.277)
    True
    >>> contact_resolves_drop(contact_ended_at=100.0, drop_started_at=100.0)
    False
    """
    return contact_ended_at > drop_started_at


def decide_task_change(
    *,
    call: CallRecord,
    open_task: OpenTaskView | None,
    last_contact_ended_at: float | None = None,
) -> TaskDecision:
    """Decide what a finished call does to callback tasks.

    ``open_task`` is the open task of the call's number (or, for an outbound callback, the open
    task it was placed for); ``last_contact_ended_at`` is when the latest stored contact with the
    number (answered inbound or outbound) ended.
    """
    if call.is_dropped:
        return _decide_for_drop(
            call=call, open_task=open_task, last_contact_ended_at=last_contact_ended_at
        )
    if is_contact(call):
        return _decide_for_contact(call=call, open_task=open_task)
    if (
        call.direction is Direction.OUTBOUND
        and call.disposition is Disposition.OUTBOUND_FAILED
        and open_task is not None
        and parse_callback_task_id(call) is None  # the dialer records its own attempts
    ):
        return RecordManualAttempt(
            task_id=open_task.task_id,
            outcome=manual_attempt_outcome(call.hangup_cause),
            ended_at=call.end_ts,
        )
    return NoChange(why=f"{call.direction} {call.disposition} neither drops nor reaches a caller")


def _decide_for_drop(
    *, call: CallRecord, open_task: OpenTaskView | None, last_contact_ended_at: float | None
) -> TaskDecision:
    phone = normalize_phone(call.caller)
    if phone is None:
        if is_withheld(call.caller):
            return NoChange(why="withheld caller: counted, never a task")
        return NoChange(why=f"caller {call.caller!r} is not a phone number")
    reason = REASON_BY_DISPOSITION[call.disposition]
    if open_task is not None:
        takes_over = open_task.reason not in DROPPED_REASONS
        return RecordRepeatDrop(
            task_id=open_task.task_id,
            reason=reason,
            dropped_at=call.end_ts,
            drop_started_at=call.start_ts,
            takes_over=takes_over,
            due_at=compute_due_at(dropped_at=call.end_ts) if takes_over else None,
        )
    if last_contact_ended_at is not None and contact_resolves_drop(
        contact_ended_at=last_contact_ended_at, drop_started_at=call.start_ts
    ):
        return NoChange(why="the clinic talked to this number during or after the drop")
    return OpenTask(
        phone=phone,
        reason=reason,
        opened_at=call.end_ts,
        due_at=compute_due_at(dropped_at=call.end_ts),
        drop_started_at=call.start_ts,
    )


def _decide_for_contact(*, call: CallRecord, open_task: OpenTaskView | None) -> TaskDecision:
    if open_task is None:
        return NoChange(why="no open task for this number")
    close = CloseTask(
        task_id=open_task.task_id,
        close_reason=(
            CloseReason.GOT_THROUGH if call.direction is Direction.INBOUND else CloseReason.REACHED
        ),
        closed_at=call.end_ts,
    )
    # A callback placed for this very task closes it whatever the timing says.
    if parse_callback_task_id(call) == open_task.task_id:
        return close
    if normalize_phone(call.caller) != open_task.phone:
        return NoChange(why="the open task belongs to another number")
    if not contact_resolves_drop(
        contact_ended_at=call.end_ts, drop_started_at=open_task.last_drop_started_at
    ):
        return NoChange(why="the contact ended before the task's latest drop started")
    return close
