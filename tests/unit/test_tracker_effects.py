"""What the tracker reports along the way: call effects and administrators' states."""

from __future__ import annotations

from collections import defaultdict

import pytest

from callcenter.ami.traces import read_trace
from callcenter.calls.disposition import Style
from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallerIdentified,
    CallQueued,
    CallStarted,
    CallTransferred,
    OperatorStateChanged,
    OperatorStatus,
)
from callcenter.calls.model import Direction, Disposition
from callcenter.calls.tracker import CallTracker
from tests.replay.helpers_traces import expected, feed_all

FREE, RINGING, ON_CALL, WRAP_UP = (
    OperatorStatus.FREE,
    OperatorStatus.RINGING,
    OperatorStatus.ON_CALL,
    OperatorStatus.WRAP_UP,
)


def call_effects(name: str, **kwargs):
    effects = feed_all(read_trace(name), CallTracker(**kwargs))
    return [e for e in effects if not isinstance(e, OperatorStateChanged)]


def test_answered_call_reports_its_whole_life_in_order():
    """answered: CallStarted, CallQueued, AgentRinging for 101/102/103, CallAnswered by 101,
    AgentStoppedRinging (cancelled) for the others, CallEnded."""
    effects = call_effects("answered")
    assert [type(e) for e in effects] == [
        CallStarted,
        CallQueued,
        AgentRinging,
        AgentRinging,
        AgentRinging,
        CallAnswered,
        AgentStoppedRinging,
        AgentStoppedRinging,
        CallEnded,
    ]
    started, queued, *rings, answered, stop1, stop2, ended = effects
    assert (started.direction, started.caller, started.did) == (
        Direction.INBOUND,
        "+79161234567",
        "74951234500",
    )
    assert (queued.queue, queued.position) == ("reception", 1)
    assert [(r.agent, r.agent_name, r.caller, r.queue) for r in rings] == [
        ("101", "Иванова Анна", "+79161234567", "reception"),
        ("102", "Петрова Мария", "+79161234567", "reception"),
        ("103", "Сидорова Елена", "+79161234567", "reception"),
    ]
    assert (answered.agent, answered.agent_name) == ("101", "Иванова Анна")
    assert {(s.agent, s.reason) for s in (stop1, stop2)} == {
        ("102", "cancelled"),
        ("103", "cancelled"),
    }
    assert ended.call.disposition is Disposition.ANSWERED
    assert all(a.ts <= b.ts for a, b in zip(effects, effects[1:], strict=False))
    assert ended.ts == pytest.approx(expected("answered")["calls"][0]["end_ts"], abs=0.001)


def test_queue_timeout_rings_three_rounds_and_stops_each_ring_as_no_answer():
    """queue_timeout: nine rings (3 rounds × 3 members), each stopped as no_answer, no answer."""
    effects = call_effects("queue_timeout")
    rings = [e for e in effects if isinstance(e, AgentRinging)]
    stops = [e for e in effects if isinstance(e, AgentStoppedRinging)]
    assert len(rings) == len(stops) == 9
    assert {s.reason for s in stops} == {"no_answer"}
    assert not any(isinstance(e, CallAnswered) for e in effects)
    assert effects[-1].call.disposition is Disposition.QUEUE_TIMEOUT


def test_transfers_are_reported_with_both_administrators():
    """transfer: one blind and one attended transfer, each from 101 to 102."""
    effects = call_effects("transfer")
    moves = [(t.kind, t.from_agent, t.to_agent) for t in effects if isinstance(t, CallTransferred)]
    assert moves == [("blind", "101", "102"), ("attended", "101", "102")]


def test_outbound_callbacks_report_the_patient_once_known():
    """Click-to-call rings the operator first and learns the patient's number from the Originate;
    the patient-first callback starts with the patient's number."""
    effects = call_effects("outbound_callback_answered")
    starts = [e for e in effects if isinstance(e, CallStarted)]
    assert [(s.direction, s.caller) for s in starts] == [
        (Direction.OUTBOUND, None),
        (Direction.OUTBOUND, "79031234567"),
    ]
    identified = [e.caller for e in effects if isinstance(e, CallerIdentified)]
    assert identified == ["89161234567"]
    ended = [e.call for e in effects if isinstance(e, CallEnded)]
    assert [(c.style, c.agent, c.callback_task) for c in ended] == [
        (Style.OPERATOR_FIRST, "101", "1001"),
        (Style.PATIENT_FIRST, "101", "1002"),
    ]


def operator_timeline(name: str, **kwargs) -> dict[str, list[OperatorStateChanged]]:
    timeline: dict[str, list[OperatorStateChanged]] = defaultdict(list)
    for effect in feed_all(read_trace(name), CallTracker(**kwargs)):
        if isinstance(effect, OperatorStateChanged):
            timeline[effect.agent].append(effect)
    return dict(timeline)


def test_operator_states_through_burst_follow_ring_talk_wrapup():
    """burst with the queue's 2-s wrap-up: each administrator rings, talks, wraps up, rings
    again; a member rung for a call someone else took goes back to free."""
    timeline = operator_timeline("burst", wrapup_s=2.0)
    statuses = {agent: [c.status for c in changes] for agent, changes in timeline.items()}
    assert statuses == {
        "101": [RINGING, ON_CALL, WRAP_UP, RINGING, ON_CALL, WRAP_UP],
        "102": [RINGING, FREE, RINGING, ON_CALL, WRAP_UP, RINGING, ON_CALL, WRAP_UP],
        "103": [RINGING, FREE, RINGING, FREE, RINGING, ON_CALL, WRAP_UP, RINGING, ON_CALL, WRAP_UP],
    }
    for changes in timeline.values():
        for change in changes:
            if change.status is WRAP_UP:
                assert change.until == pytest.approx(change.ts + 2.0)
            else:
                assert change.until is None
        assert all(a.ts <= b.ts for a, b in zip(changes, changes[1:], strict=False))
    names = {c.agent: c.agent_name for changes in timeline.values() for c in changes}
    assert names == {"101": "Иванова Анна", "102": "Петрова Мария", "103": "Сидорова Елена"}
    answered = [c for c in expected("burst")["calls"] if c["disposition"] == "answered"]
    for agent, changes in timeline.items():
        talks = sum(c.status is ON_CALL for c in changes)
        assert talks == sum(c["agent"] == agent for c in answered)


def test_without_wrapup_time_an_operator_is_free_right_after_a_call():
    """With no wrap-up configured (Asterisk's default) no wrap_up state appears; all end free."""
    timeline = operator_timeline("burst")
    assert all(WRAP_UP not in [c.status for c in changes] for changes in timeline.values())
    assert {agent: changes[-1].status for agent, changes in timeline.items()} == {
        "101": FREE,
        "102": FREE,
        "103": FREE,
    }


def test_paused_member_is_reported_paused_until_unpaused():
    """QueueMemberStatus Paused: 1 makes the administrator paused; Paused: 0 frees them."""
    events = [e for e in read_trace("answered") if e.name == "QueueMemberStatus"]
    event = next(e for e in events if e["MemberName"] == "Петрова Мария" and e["Status"] == "1")
    paused = type(event)(event.name, {**event.headers, "Paused": "1"}, event.received_at)
    tracker = CallTracker()
    (change,) = tracker.feed(paused)
    assert (change.agent, change.status) == ("102", OperatorStatus.PAUSED)
    (change,) = tracker.feed(event)
    assert change.status is FREE
    assert tracker.operator_status("102") is FREE
