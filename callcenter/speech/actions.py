"""What a call's outcome tags do to tasks, consent and the phone (pure).

The rules, from the issue ("Speech", the pipeline):

- The operator's word wins: when the operator recorded an outcome for the call
  (``call_outcomes``), the tags are stored but act on nothing.
- ``price_objection`` or ``thinking`` on a call that did not book opens an
  ``objection_followup`` task (kind ``marketing``: the answer is the 10 %-off offer), due the
  next working morning.
- ``callback_requested`` opens a callback task due the next working morning, for an operator
  to set its time. The patient asked for it, so it is a ``service`` call (unless the clinic's
  settings say otherwise for the reason). It takes the place of an objection follow-up (one open
  task per number): the operator calling back has the offer on the card.
- ``booked`` closes the open callback tasks of the patient's numbers; a booked call opens none.
- ``do_not_call`` withdraws the marketing consent at once and closes the marketing tasks
  (152-ФЗ: a withdrawal counts for every decision from that moment). The tag also covers a
  patient who withdraws only the marketing consent (``tag_rules/do_not_call.toml``), so the
  number goes on the do-not-call list (never called, service calls included) only when the
  patient refuses further calls: ``do_not_call`` on a call that did not book. A patient who
  books in the same call still expects the reminder. On the list, every open task of the
  number closes (the dialer would refuse them anyway). No task opens on such a call.
- ``wrong_number`` flags the number; the person is not our patient, so no task opens.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import ClinicSchedule, kind_for_reason, next_working_morning

OBJECTION_FOLLOWUP = "objection_followup"
CALLBACK_REQUESTED = "callback_requested"
#: What the operator offers on an objection follow-up (the playbook's answer to «дорого»).
OBJECTION_OFFER = "offer: 10% off"
CALLBACK_DETAIL = "patient asked for a callback: set the time"
OBJECTION_TAGS = frozenset({"price_objection", "thinking"})
#: Close reasons written on tasks the tags close.
CLOSE_BOOKED = "booked"
CLOSE_DO_NOT_CALL = "do_not_call"
FLAG_WRONG_NUMBER = "wrong_number"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenFollowUp:
    """Open a task for the call's number (unless one is open already)."""

    reason: str
    kind: TaskKind
    due_at: datetime
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseTasks:
    """Close the open tasks of the patient's numbers (of one kind, or every kind)."""

    close_reason: str
    kind: TaskKind | None = None  # None: every open task


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawMarketingConsent:
    """Record the patient's marketing consent as withdrawn, effective at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddDoNotCall:
    """Put the number on the do-not-call list."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagPhone:
    """Flag the number (``wrong_number``)."""

    flag: str


Action = OpenFollowUp | CloseTasks | WithdrawMarketingConsent | AddDoNotCall | FlagPhone


def decide_tag_actions(
    *,
    tags: Collection[str],
    booked_by_operator_outcome: bool,
    operator_outcome: str | None,
    now: datetime,
    schedule: ClinicSchedule,
) -> list[Action]:
    """Return what the tags of a finished call do, in the order to apply them.

    ``operator_outcome`` is the last outcome the operator recorded for the call (None when none
    was); ``booked_by_operator_outcome`` says whether the operator recorded a booking. ``now`` is
    an aware datetime: due times are the next working morning after it.

    >>> from datetime import UTC
    >>> decide_tag_actions(tags={"price_objection"}, booked_by_operator_outcome=False,
    ...                    operator_outcome="not_interested", now=datetime.now(UTC),
    ...                    schedule=ClinicSchedule())
    []
    """
    if operator_outcome is not None or booked_by_operator_outcome:
        return []
    tags = frozenset(tags)
    booked = "booked" in tags
    refuses = "do_not_call" in tags
    wrong_number = FLAG_WRONG_NUMBER in tags
    actions: list[Action] = []
    if wrong_number:
        actions.append(FlagPhone(flag=FLAG_WRONG_NUMBER))
    if refuses:
        actions.append(WithdrawMarketingConsent())
        if booked:
            actions.append(CloseTasks(close_reason=CLOSE_DO_NOT_CALL, kind=TaskKind.MARKETING))
        else:
            actions.append(AddDoNotCall())
            actions.append(CloseTasks(close_reason=CLOSE_DO_NOT_CALL))
    if booked:
        actions.append(CloseTasks(close_reason=CLOSE_BOOKED))
    if refuses or wrong_number or booked:
        return actions
    morning = next_working_morning(now, schedule)
    if CALLBACK_REQUESTED in tags:
        actions.append(
            OpenFollowUp(
                reason=CALLBACK_REQUESTED,
                kind=schedule.kinds.get(CALLBACK_REQUESTED, TaskKind.SERVICE),
                due_at=morning,
                detail=CALLBACK_DETAIL,
            )
        )
    elif tags & OBJECTION_TAGS:
        actions.append(
            OpenFollowUp(
                reason=OBJECTION_FOLLOWUP,
                kind=kind_for_reason(OBJECTION_FOLLOWUP, schedule),
                due_at=morning,
                detail=OBJECTION_OFFER,
            )
        )
    return actions
