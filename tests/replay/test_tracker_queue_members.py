"""The re-sync's QueueStatus member list tells the tracker who is paused and what each phone
is doing, so a pause made while the AMI link was down shows up after the reconnect.

Uses the recorded ``state_snapshot`` trace (QueueStatus answered by a real Asterisk); the
paused variant sets the recorded ``Paused`` header of one member item to 1.
"""

from __future__ import annotations

from callcenter.calls.effects import OperatorStateChanged, OperatorStatus
from callcenter.calls.tracker import CallTracker
from tests.replay.helpers_traces import header, parse, records, rewrite, set_header


def _member_items_only(name: str, edit=lambda raw: raw) -> list:
    recs = [r for r in records(name) if header(r.raw, "Event") == "QueueMember"]
    return parse(rewrite(recs, edit))


def _states(events) -> dict[str, OperatorStatus]:
    tracker = CallTracker()
    out: dict[str, OperatorStatus] = {}
    for event in events:
        for effect in tracker.feed(event):
            if isinstance(effect, OperatorStateChanged):
                out[effect.agent] = effect.status
    return out


def _agent(item) -> str:
    return header(item.raw, "Location").split("/")[1].split("@")[0]


def test_member_items_report_each_members_state_without_trusting_their_device_status():
    """A member listed as not paused is free until its phone says otherwise; its item's
    device Status (1 or 2 in the recording) alone never makes it busy: the re-sync's channel
    list and the next device events say that."""
    items = _member_items_only("state_snapshot")
    assert len(items) == 3
    assert {header(i.raw, "Paused") for i in items} == {"0"}
    states = _states(items)
    assert states == {_agent(i): OperatorStatus.FREE for i in items}


def test_a_member_paused_while_we_were_away_is_paused_after_the_resync():
    def pause_103(raw: str) -> str:
        return set_header(raw, "Paused", "1") if "Local/103@" in raw else raw

    states = _states(_member_items_only("state_snapshot", pause_103))
    assert states["103"] is OperatorStatus.PAUSED
    assert all(s is not OperatorStatus.PAUSED for agent, s in states.items() if agent != "103")
