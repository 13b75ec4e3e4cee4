"""What became of an Originate: its reply, its OriginateResponse and the tracker's effects (pure).

The facts, from the recorded traces (``data/ami-traces/README.md`` point 3):

* ``Response: Error`` to the Originate itself: Asterisk refused it → ``rejected``.
* ``OriginateResponse`` with the same ActionID tells whether the *first* channel answered:
  ``Reason: 4`` answered, ``3`` no answer (after the Originate Timeout), ``5`` busy; anything
  else (0 failure, 1 hung up, 8 congestion) → ``failed``. Its ``Uniqueid`` is the new call's
  Linkedid when it answered, ``<unknown>`` when not.
* Patient first: the first channel is the patient, so Reason 3/5 is ``no_answer``/``busy``.
  Operator first: it is the operator, so Reason 3/5 is ``operator_no_answer``.
* After Reason 4 the other side still has to answer. The tracker's ``CallAnswered`` for the
  call (or its ``CallEnded`` with disposition ``outbound_answered``) means the patient and an
  operator talk → ``answered``; ``CallEnded`` with ``outbound_failed`` means the second leg
  never answered → ``patient_no_answer`` (operator first) or ``operator_no_answer`` (patient
  first). ``CallEnded`` is matched by the call's ``callback_task`` (the tracker reads the
  ``CALLBACK_TASK`` variable), ``CallAnswered`` by the Linkedid.
* Nothing decisive within the deadline → ``unknown``: the phone may have rung.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.ami.actions import OriginateStyle
from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import CallAnswered, CallEnded, Effect
from callcenter.calls.model import Disposition
from callcenter.tasks.schedule import AttemptOutcome

REASON_ANSWERED = 4
REASON_NO_ANSWER = 3
REASON_BUSY = 5


def outcome_of_reason(reason: int, *, style: OriginateStyle) -> AttemptOutcome | None:
    """Return the outcome an OriginateResponse Reason settles, or None (answered: not yet).

    >>> outcome_of_reason(3, style="patient_first"), outcome_of_reason(5, style="patient_first")
    (<AttemptOutcome.NO_ANSWER: 'no_answer'>, <AttemptOutcome.BUSY: 'busy'>)
    >>> outcome_of_reason(3, style="operator_first")
    <AttemptOutcome.OPERATOR_NO_ANSWER: 'operator_no_answer'>
    >>> outcome_of_reason(4, style="operator_first") is None
    True
    >>> outcome_of_reason(8, style="patient_first")
    <AttemptOutcome.FAILED: 'failed'>
    """
    if reason == REASON_ANSWERED:
        return None
    if reason in (REASON_NO_ANSWER, REASON_BUSY):
        if style == "operator_first":
            return AttemptOutcome.OPERATOR_NO_ANSWER
        return AttemptOutcome.NO_ANSWER if reason == REASON_NO_ANSWER else AttemptOutcome.BUSY
    return AttemptOutcome.FAILED


def outcome_of_stored_disposition(disposition: str) -> AttemptOutcome:
    """Return the outcome a stored callback call shows (used after a lease expired).

    A stored failed call does not say whether the line was busy or rang out: ``no_answer``.

    >>> outcome_of_stored_disposition("outbound_answered")
    <AttemptOutcome.ANSWERED: 'answered'>
    """
    if disposition == Disposition.OUTBOUND_ANSWERED:
        return AttemptOutcome.ANSWERED
    return AttemptOutcome.NO_ANSWER


@dataclass(slots=True)
class PendingOriginate:
    """What is known so far about one Originate (fed events and effects in stream order)."""

    action_id: str
    task_id: str
    style: OriginateStyle
    reason: int | None = None
    linkedid: str | None = None
    answered: bool = False
    ended: Disposition | None = None
    rejected: str | None = None  # the Error message, when the Originate was refused

    def feed_event(self, event: AmiEvent) -> None:
        """Take an AMI event (only this Originate's OriginateResponse matters)."""
        if event.name != "OriginateResponse" or event.action_id != self.action_id:
            return
        raw = (event.get("Reason") or "").strip()
        self.reason = int(raw) if raw.isdigit() else -1
        uniqueid = event.get("Uniqueid")
        if uniqueid and uniqueid != "<unknown>" and self.linkedid is None:
            self.linkedid = uniqueid

    def feed_effect(self, effect: Effect) -> None:
        """Take a tracker effect (this call's CallAnswered and CallEnded matter)."""
        if isinstance(effect, CallEnded):
            call = effect.call
            if call.callback_task is not None and call.callback_task.strip() == self.task_id:
                self.ended = call.disposition
                self.linkedid = call.linkedid
        elif isinstance(effect, CallAnswered) and effect.linkedid == self.linkedid:
            self.answered = True

    def feed_reply(self, reply: AmiEvent) -> None:
        """Take Asterisk's first response to the Originate action."""
        if reply.name.lower() == "error":
            self.rejected = reply.get("Message") or "Originate refused"

    @property
    def outcome(self) -> AttemptOutcome | None:
        """Return the outcome once it is settled, else None."""
        if self.rejected is not None:
            return AttemptOutcome.REJECTED
        if self.answered or self.ended is Disposition.OUTBOUND_ANSWERED:
            return AttemptOutcome.ANSWERED
        if self.reason is not None:
            settled = outcome_of_reason(self.reason, style=self.style)
            if settled is not None:
                return settled
        if self.ended is not None:
            # The call ended unanswered; OriginateResponse says which side, when it came.
            if self.reason == REASON_ANSWERED:
                if self.style == "operator_first":
                    return AttemptOutcome.PATIENT_NO_ANSWER
                return AttemptOutcome.OPERATOR_NO_ANSWER
            return None  # wait a little for the OriginateResponse (busy or no answer?)
        return None

    def outcome_at_deadline(self) -> AttemptOutcome:
        """Return the outcome when the wait is over: what is known, else ``unknown``."""
        settled = self.outcome
        if settled is not None:
            return settled
        if self.ended is not None:
            return AttemptOutcome.NO_ANSWER  # ended unanswered, side unknown
        return AttemptOutcome.UNKNOWN


@dataclass
class OutcomeBoard:
    """The dialer's view of its Originates in flight, fed from the AMI listener."""

    pending: dict[str, PendingOriginate] = field(default_factory=dict)

    def watch(self, *, action_id: str, task_id: str, style: OriginateStyle) -> PendingOriginate:
        """Start following an Originate (before it is sent: events may beat the reply)."""
        entry = PendingOriginate(action_id=action_id, task_id=task_id, style=style)
        self.pending[action_id] = entry
        return entry

    def forget(self, action_id: str) -> None:
        """Stop following an Originate."""
        self.pending.pop(action_id, None)

    def observe(self, event: AmiEvent | None, effects: Iterable[Effect]) -> list[PendingOriginate]:
        """Feed one AMI event (None: a re-sync) and the tracker's effects; return the entries
        they concern.

        Only an ``OriginateResponse`` (found by its ActionID) and the effects ``CallEnded`` and
        ``CallAnswered`` can change an entry, so the other events cost one comparison each,
        however many Originates are in flight.
        """
        if not self.pending:
            return []
        touched: list[PendingOriginate] = []
        if event is not None and event.name == "OriginateResponse":
            entry = self.pending.get(event.action_id or "")
            if entry is not None:
                entry.feed_event(event)
                touched.append(entry)
        for effect in effects:
            if isinstance(effect, CallEnded | CallAnswered):
                for entry in self.pending.values():
                    entry.feed_effect(effect)
                    touched.append(entry)
        return touched
