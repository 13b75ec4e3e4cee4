"""Disposition rules, alone and on recorded direct-line calls with one header edited."""

from __future__ import annotations

import pytest

from callcenter.calls.disposition import (
    ABANDON,
    TIMEOUT,
    Style,
    decide_inbound,
    decide_outbound,
    decide_style,
)
from callcenter.calls.model import Disposition
from callcenter.replay import replay_events
from tests.replay.helpers_traces import expected, header, parse, records, set_header


@pytest.mark.parametrize(
    ("facts", "want"),
    [
        ({"answered": True, "queued": True, "queue_exit": ABANDON}, Disposition.ANSWERED),
        ({"queued": True, "queue_exit": ABANDON}, Disposition.ABANDONED),
        ({"queued": True, "queue_exit": TIMEOUT}, Disposition.QUEUE_TIMEOUT),
        (
            {"queued": True, "queue_exit": ABANDON, "queue_status": "TIMEOUT"},
            Disposition.QUEUE_TIMEOUT,
        ),
        ({"queued": True}, Disposition.ABANDONED),
        ({"queue_status": "FULL"}, Disposition.QUEUE_TIMEOUT),
        ({"dial_status": "BUSY"}, Disposition.BUSY),
        ({"dial_status": "NOANSWER"}, Disposition.NO_ANSWER),
        ({"dial_status": "CANCEL"}, Disposition.NO_ANSWER),
        ({"dial_status": "CHANUNAVAIL"}, Disposition.FAILED),
        ({}, Disposition.IVR_ABANDONED),
    ],
)
def test_inbound_disposition_follows_what_the_call_went_through(facts, want):
    """Answered beats everything; a queued caller abandoned or timed out (QUEUESTATUS, when
    present, settles it); a direct line by its DialStatus; nothing reached → ivr_abandoned."""
    base = {
        "answered": False,
        "queued": False,
        "queue_exit": None,
        "queue_status": None,
        "dial_status": None,
    }
    assert decide_inbound(**{**base, **facts}) is want


def test_callback_is_answered_only_when_patient_and_operator_talked():
    """A patient who answered but met no operator is a failed callback, not a contact."""
    assert decide_outbound(patient_answered=True, agent="101") is Disposition.OUTBOUND_ANSWERED
    assert decide_outbound(patient_answered=True, agent=None) is Disposition.OUTBOUND_FAILED
    assert decide_outbound(patient_answered=False, agent="101") is Disposition.OUTBOUND_FAILED


@pytest.mark.parametrize(
    ("first", "second", "agents", "want"),
    [
        ("101", "89161234567", set(), Style.OPERATOR_FIRST),
        ("79031234567", "101", set(), Style.PATIENT_FIRST),
        ("alice", "+79161234567", set(), Style.OPERATOR_FIRST),
        ("2001234", "101", {"101"}, Style.PATIENT_FIRST),
        ("7001", "2001234", {"7001"}, Style.OPERATOR_FIRST),
    ],
)
def test_callback_style_comes_from_who_is_rung_first(first, second, agents, want):
    """The originated channel is the operator when it is a known or internal extension."""
    assert decide_style(first, second, agents) is want


def _edit_direct_dial(name: str, status: str):
    """Return the trace with the clinic channel's Dial() of the administrator ending in
    ``status`` (the recorded DialEnd with its DialStatus edited)."""
    clinic = expected(name)["calls"][0]["clinic_channel"]
    out = []
    for rec in records(name):
        raw = rec.raw
        if header(raw, "Event") == "DialEnd" and header(raw, "Channel") == clinic:
            raw = set_header(raw, "DialStatus", status)
        out.append(type(rec)(rec.t, raw))
    return parse(out)


def test_direct_line_answered_is_answered_by_the_dialled_extension():
    """A direct line's Dial() answered: answered by 102 (from the dialled channel), wait until
    the DialEnd, and the MixMonitor recording is kept."""
    (call,) = replay_events(_edit_direct_dial("direct_noanswer", "ANSWER"))
    assert (call.disposition, call.agent, call.queue) == (Disposition.ANSWERED, "102", None)
    assert call.wait_s == pytest.approx(10.0, abs=0.11)
    assert call.recording == "d-20261122-174338-79857776655-1795369418.37.wav"


def test_direct_line_the_caller_gave_up_on_is_no_answer():
    """The caller hung up while the direct line rang (DialStatus CANCEL): no_answer."""
    (call,) = replay_events(_edit_direct_dial("direct_noanswer", "CANCEL"))
    assert (call.disposition, call.agent, call.recording) == (Disposition.NO_ANSWER, None, None)


def test_direct_line_unreachable_phone_is_failed():
    """The administrator's phone could not be reached (CHANUNAVAIL): failed."""
    (call,) = replay_events(_edit_direct_dial("busy", "CHANUNAVAIL"))
    assert call.disposition is Disposition.FAILED
