"""The dispatcher hands AgentStoppedRinging to the notifier (withdrawing ring-all screen pops)."""

from __future__ import annotations

from callcenter.calls.effects import AgentRinging, AgentStoppedRinging, CallAnswered
from callcenter.dispatch import EffectDispatcher
from callcenter.notify import NullNotifier, RecordingNotifier


def test_stopped_ringing_reaches_the_notifier_in_order():
    notifier = RecordingNotifier()
    ring = AgentRinging("1.1", "101", None, "89039556279", None, "reception", 1.0)
    stop = AgentStoppedRinging("1.1", "102", "cancelled", 2.0)
    answer = CallAnswered("1.1", "101", None, 2.0)
    EffectDispatcher(notifier=notifier).dispatch([ring, answer, stop])
    assert [kind for kind, _ in notifier.events] == [
        "call_ringing",
        "call_answered",
        "agent_stopped_ringing",
    ]
    assert notifier.of("agent_stopped_ringing") == [stop]


def test_null_notifier_ignores_stopped_ringing():
    NullNotifier().agent_stopped_ringing(AgentStoppedRinging("1.1", "102", "no_answer", 2.0))
