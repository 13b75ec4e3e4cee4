"""Whether the clinic may call a number, under 152-ФЗ (pure).

The rules, from the issue:

- A *service* call (a reminder, test results, care follow-up) needs only the patient's consent to
  the processing of personal data (``pd``).
- A *marketing* call (offers, discounts) needs a separate marketing consent, which the patient can
  withdraw at any time; it is a use of personal data too, so it needs ``pd`` as well.
- A withdrawal takes effect at once, for every decision made after it: the state is always the
  latest record per kind at the moment of the decision, never a cached flag.
- Calling back a number that just called us answers the caller's own request: that service call
  is allowed without any consent record (new callers have none yet), unless the number asked not
  to be called. A caller's request never stands in for marketing consent.
- A number on the do-not-call list is never called, whatever else is on file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CallPurpose(StrEnum):
    SERVICE = "service"  # reminders, results, care follow-up, callbacks to dropped callers
    MARKETING = "marketing"  # offers, discounts


class ConsentKind(StrEnum):
    PD = "pd"  # processing of personal data
    MARKETING = "marketing"


class ConsentAction(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The latest state per kind, as of a moment."""

    pd_consent: bool
    marketing_consent: bool
    do_not_call: bool


@dataclass(frozen=True, slots=True)
class CallPermission:
    """Whether a call may be placed, and the rule that decided it."""

    allowed: bool
    # "pd_consent" | "marketing_consent" | "callers_own_request" when allowed;
    # "do_not_call" | "no_pd_consent" | "no_marketing_consent" | "unknown_number" when refused
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecordView:
    """One consent given or withdrawn, as the rules see it."""

    kind: str  # ConsentKind value
    action: str  # ConsentAction value
    at: datetime


#: The state of a number with no consent on file.
NO_CONSENT = ConsentState(pd_consent=False, marketing_consent=False, do_not_call=False)


def may_call(
    *, purpose: CallPurpose, consent: ConsentState | None, callers_own_request: bool
) -> CallPermission:
    """Decide whether a call for ``purpose`` may be placed to a number.

    ``consent`` is None for a number the clinic knows nothing about (no patient, not on the
    do-not-call list); ``callers_own_request`` is True when the call answers the number's own
    recent call.

    >>> may_call(purpose=CallPurpose.SERVICE, consent=None, callers_own_request=True)
    CallPermission(allowed=True, reason='callers_own_request')
    >>> may_call(purpose=CallPurpose.SERVICE, consent=None, callers_own_request=False)
    CallPermission(allowed=False, reason='unknown_number')
    """
    if consent is not None and consent.do_not_call:
        return CallPermission(allowed=False, reason="do_not_call")
    if purpose is CallPurpose.MARKETING:
        if consent is None:
            return CallPermission(allowed=False, reason="unknown_number")
        if not consent.marketing_consent:
            return CallPermission(allowed=False, reason="no_marketing_consent")
        if not consent.pd_consent:
            return CallPermission(allowed=False, reason="no_pd_consent")
        return CallPermission(allowed=True, reason="marketing_consent")
    if consent is not None and consent.pd_consent:
        return CallPermission(allowed=True, reason="pd_consent")
    if callers_own_request:
        return CallPermission(allowed=True, reason="callers_own_request")
    if consent is None:
        return CallPermission(allowed=False, reason="unknown_number")
    return CallPermission(allowed=False, reason="no_pd_consent")


def consent_state_from_records(
    records: Iterable[ConsentRecordView], *, do_not_call: bool, at: datetime
) -> ConsentState:
    """Return the consent state at ``at``: the latest record per kind at or before it wins.

    Records after ``at`` are ignored; of two records of one kind at the same moment, the
    withdrawal wins, so a tie never turns into a call the patient refused.
    """
    latest: dict[str, ConsentRecordView] = {}
    for record in records:
        if record.at > at:
            continue
        current = latest.get(record.kind)
        if current is None or _supersedes(record, current):
            latest[record.kind] = record
    return ConsentState(
        pd_consent=_is_given(latest.get(ConsentKind.PD)),
        marketing_consent=_is_given(latest.get(ConsentKind.MARKETING)),
        do_not_call=do_not_call,
    )


def _supersedes(record: ConsentRecordView, current: ConsentRecordView) -> bool:
    if record.at != current.at:
        return record.at > current.at
    return record.action == ConsentAction.WITHDRAWN


def _is_given(record: ConsentRecordView | None) -> bool:
    return record is not None and record.action == ConsentAction.GIVEN
