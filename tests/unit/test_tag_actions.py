"""What a call's tags do (speech/actions.py): the rules as the issue states them, pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.speech.actions import (
    AddDoNotCall,
    CloseTasks,
    FlagPhone,
    OpenFollowUp,
    WithdrawMarketingConsent,
    decide_tag_actions,
)
from callcenter.tasks.rules import TaskKind
from callcenter.tasks.schedule import ClinicSchedule

# Friday 2026-11-20, 17:00 Moscow; Saturday opens at 10:00 Moscow = 07:00 UTC.
FRIDAY_EVENING = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SATURDAY_MORNING = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
SCHEDULE = ClinicSchedule()


def decide(*tags: str, operator_outcome: str | None = None, booked_by_operator: bool = False):
    return decide_tag_actions(
        tags=set(tags),
        booked_by_operator_outcome=booked_by_operator,
        operator_outcome=operator_outcome,
        now=FRIDAY_EVENING,
        schedule=SCHEDULE,
    )


@pytest.mark.parametrize("tag", ["price_objection", "thinking"])
def test_an_objection_on_a_call_that_did_not_book_opens_a_marketing_followup(tag):
    """`price_objection` or `thinking` on a call that did not book opens an
    `objection_followup` task (kind `marketing`: the answer is the 10 %-off offer)."""
    [action] = decide(tag, "fear")
    assert isinstance(action, OpenFollowUp)
    assert (action.reason, action.kind) == ("objection_followup", TaskKind.MARKETING)
    assert "10%" in action.detail
    assert action.due_at == SATURDAY_MORNING


def test_an_objection_on_a_call_that_booked_opens_nothing_and_closes_callbacks():
    """`booked` closes open callback tasks for that patient/number."""
    assert decide("price_objection", "booked") == [CloseTasks(close_reason="booked")]


def test_a_callback_request_opens_a_service_task_due_the_next_working_morning():
    """`callback_requested` opens a callback task due the next working morning."""
    [action] = decide("callback_requested")
    assert isinstance(action, OpenFollowUp)
    assert (action.reason, action.kind, action.due_at) == (
        "callback_requested",
        TaskKind.SERVICE,
        SATURDAY_MORNING,
    )


def test_a_callback_request_takes_the_place_of_an_objection_followup():
    # One open task per number: the callback, where the operator has the offer on the card.
    [action] = decide("callback_requested", "price_objection")
    assert isinstance(action, OpenFollowUp) and action.reason == "callback_requested"


def test_the_next_working_morning_skips_closed_days():
    saturday_evening = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)  # Sunday is closed
    [action] = decide_tag_actions(
        tags={"thinking"},
        booked_by_operator_outcome=False,
        operator_outcome=None,
        now=saturday_evening,
        schedule=SCHEDULE,
    )
    assert isinstance(action, OpenFollowUp)
    assert action.due_at == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday 09:00 Moscow


def test_do_not_call_withdraws_marketing_consent_lists_the_number_and_opens_nothing():
    """`do_not_call` withdraws marketing consent at once; the patient refuses further calls →
    do-not-call list; marketing (here: every) task closes."""
    assert decide("do_not_call", "price_objection", "callback_requested") == [
        WithdrawMarketingConsent(),
        AddDoNotCall(),
        CloseTasks(close_reason="do_not_call"),
    ]


def test_do_not_call_on_a_booked_call_withdraws_only_the_marketing_consent():
    # "Запишите на среду, а рекламу не присылайте": the reminder must still reach the patient.
    assert decide("do_not_call", "booked") == [
        WithdrawMarketingConsent(),
        CloseTasks(close_reason="do_not_call", kind=TaskKind.MARKETING),
        CloseTasks(close_reason="booked"),
    ]


def test_wrong_number_flags_the_phone_and_opens_nothing():
    """`wrong_number` flags the phone."""
    assert decide("wrong_number") == [FlagPhone(flag="wrong_number")]
    assert decide("wrong_number", "do_not_call") == [
        FlagPhone(flag="wrong_number"),
        WithdrawMarketingConsent(),
        AddDoNotCall(),
        CloseTasks(close_reason="do_not_call"),
    ]


@pytest.mark.parametrize(
    "outcome", ["booked", "callback_requested", "not_interested", "do_not_call", "wrong_number"]
)
def test_the_operators_outcome_wins(outcome):
    """Tags act unless the operator already recorded an outcome for that call."""
    tags = ("price_objection", "do_not_call", "callback_requested", "booked", "wrong_number")
    assert decide(*tags, operator_outcome=outcome, booked_by_operator=outcome == "booked") == []


def test_tags_that_act_on_nothing():
    assert decide() == []
    assert decide("fear", "no_time", "insurance", "moved_away", "went_elsewhere") == []


def test_the_clinic_may_make_callbacks_marketing_calls():
    schedule = ClinicSchedule(kinds={"callback_requested": TaskKind.MARKETING})
    [action] = decide_tag_actions(
        tags={"callback_requested"},
        booked_by_operator_outcome=False,
        operator_outcome=None,
        now=FRIDAY_EVENING,
        schedule=schedule,
    )
    assert isinstance(action, OpenFollowUp) and action.kind == TaskKind.MARKETING
