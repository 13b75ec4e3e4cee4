"""Consent rules under 152-ФЗ: service vs marketing calls, withdrawal, the caller's own request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.patients.consent import (
    NO_CONSENT,
    CallPermission,
    CallPurpose,
    ConsentRecordView,
    ConsentState,
    consent_state_from_records,
    may_call,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
SERVICE = CallPurpose.SERVICE
MARKETING = CallPurpose.MARKETING


def state(*, pd: bool = False, marketing: bool = False, dnc: bool = False) -> ConsentState:
    return ConsentState(pd_consent=pd, marketing_consent=marketing, do_not_call=dnc)


def record(kind: str, action: str, *, minutes: int) -> ConsentRecordView:
    return ConsentRecordView(kind=kind, action=action, at=T0 + timedelta(minutes=minutes))


def test_service_call_needs_only_pd_consent() -> None:
    """Rule: service calls (reminders, results, care follow-up) need only the pd consent."""
    assert may_call(purpose=SERVICE, consent=state(pd=True), callers_own_request=False) == (
        CallPermission(allowed=True, reason="pd_consent")
    )


def test_service_call_without_pd_consent_is_refused() -> None:
    """Rule: service calls need the pd consent."""
    assert may_call(purpose=SERVICE, consent=NO_CONSENT, callers_own_request=False) == (
        CallPermission(allowed=False, reason="no_pd_consent")
    )


def test_marketing_call_needs_a_separate_marketing_consent() -> None:
    """Rule: marketing calls (offers, discounts) need a separate marketing consent."""
    refused = may_call(purpose=MARKETING, consent=state(pd=True), callers_own_request=False)
    allowed = may_call(
        purpose=MARKETING, consent=state(pd=True, marketing=True), callers_own_request=False
    )
    assert refused == CallPermission(allowed=False, reason="no_marketing_consent")
    assert allowed == CallPermission(allowed=True, reason="marketing_consent")


def test_marketing_consent_without_pd_consent_is_refused() -> None:
    """A marketing call processes personal data too: without pd consent it is refused."""
    assert may_call(
        purpose=MARKETING, consent=state(marketing=True), callers_own_request=False
    ) == CallPermission(allowed=False, reason="no_pd_consent")


def test_callback_to_a_new_caller_answers_their_own_request() -> None:
    """Rule: calling back a number that just called us answers the caller's own request;
    new callers have no consent record yet."""
    assert may_call(purpose=SERVICE, consent=None, callers_own_request=True) == (
        CallPermission(allowed=True, reason="callers_own_request")
    )


def test_callback_to_a_known_patient_without_pd_consent_answers_their_request() -> None:
    """The caller's own request stands even when no pd consent is on file."""
    assert may_call(purpose=SERVICE, consent=NO_CONSENT, callers_own_request=True) == (
        CallPermission(allowed=True, reason="callers_own_request")
    )


def test_callers_own_request_never_replaces_marketing_consent() -> None:
    """Rule: marketing calls need a separate marketing consent; a missed call is not one."""
    assert may_call(purpose=MARKETING, consent=None, callers_own_request=True) == (
        CallPermission(allowed=False, reason="unknown_number")
    )
    assert may_call(
        purpose=MARKETING, consent=state(pd=True), callers_own_request=True
    ) == CallPermission(allowed=False, reason="no_marketing_consent")


@pytest.mark.parametrize("purpose", [SERVICE, MARKETING])
@pytest.mark.parametrize("own_request", [True, False])
def test_do_not_call_refuses_everything(purpose: CallPurpose, own_request: bool) -> None:
    """Rule: calling back is allowed unless the number asked not to be called."""
    consent = state(pd=True, marketing=True, dnc=True)
    assert may_call(purpose=purpose, consent=consent, callers_own_request=own_request) == (
        CallPermission(allowed=False, reason="do_not_call")
    )


def test_unknown_number_without_own_request_is_refused() -> None:
    """A number with no patient and no request of its own has given no consent."""
    assert may_call(purpose=SERVICE, consent=None, callers_own_request=False) == (
        CallPermission(allowed=False, reason="unknown_number")
    )


def test_latest_record_per_kind_wins() -> None:
    """The latest record per kind at or before the moment wins."""
    records = [
        record("pd", "given", minutes=0),
        record("marketing", "given", minutes=1),
        record("marketing", "withdrawn", minutes=5),
        record("marketing", "given", minutes=9),
    ]
    at = T0 + timedelta(minutes=6)
    assert consent_state_from_records(records, do_not_call=False, at=at) == state(pd=True)
    at = T0 + timedelta(minutes=9)
    assert consent_state_from_records(reversed(records), do_not_call=False, at=at) == state(
        pd=True, marketing=True
    )


def test_withdrawal_takes_effect_at_once() -> None:
    """Rule: a withdrawal takes effect at once for every later decision."""
    records = [record("pd", "given", minutes=0), record("marketing", "given", minutes=0)]
    withdrawn = [*records, record("marketing", "withdrawn", minutes=30)]
    just_after = T0 + timedelta(minutes=30)
    consent = consent_state_from_records(withdrawn, do_not_call=False, at=just_after)
    assert may_call(purpose=MARKETING, consent=consent, callers_own_request=False) == (
        CallPermission(allowed=False, reason="no_marketing_consent")
    )
    # Service calls still go ahead: only the marketing consent was withdrawn.
    assert may_call(purpose=SERVICE, consent=consent, callers_own_request=False).allowed


def test_records_after_the_moment_are_ignored() -> None:
    """Consent given later does not allow a call decided earlier."""
    records = [record("pd", "given", minutes=10)]
    assert consent_state_from_records(records, do_not_call=False, at=T0) == NO_CONSENT


def test_withdrawal_wins_a_tie() -> None:
    """Two records of one kind at the same moment: the withdrawal wins (the safe side)."""
    records = [record("pd", "withdrawn", minutes=0), record("pd", "given", minutes=0)]
    assert consent_state_from_records(records, do_not_call=False, at=T0) == NO_CONSENT


def test_do_not_call_flag_is_carried_into_the_state() -> None:
    """The do-not-call list is part of the state the rules see."""
    assert consent_state_from_records([], do_not_call=True, at=T0) == state(dnc=True)
