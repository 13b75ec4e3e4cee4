"""Bad or odd input never stops the tracker: recorded messages with small edits."""

from __future__ import annotations

import pytest

from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import AgentRinging, CallEnded, CallStarted
from callcenter.calls.model import Disposition
from callcenter.calls.tracker import HANDLERS, CallTracker
from callcenter.replay import replay_events
from tests.replay.helpers_traces import (
    drop_header,
    feed_all,
    finished,
    header,
    parse,
    records,
    rewrite,
    set_header,
)

CLINIC = "Local/74951234500@from-trunk-00000000;2"  # answered.jsonl's clinic channel


def answered_events() -> list[AmiEvent]:
    return parse(records("answered"))


def answered_record():
    (call,) = replay_events(answered_events())
    return call


def first(events: list[AmiEvent], name: str, **headers: str) -> AmiEvent:
    return next(
        e for e in events if e.name == name and all(e.get(k) == v for k, v in headers.items())
    )


def test_unknown_event_type_is_ignored_without_effect():
    """Events not in HANDLERS are ignored on purpose: no effect, no call."""
    rec = next(r for r in records("answered") if header(r.raw, "Event") == "Newchannel")
    (renamed,) = parse(rewrite([rec], lambda raw: set_header(raw, "Event", "NewchannelV2")))
    (newexten,) = [e for e in answered_events() if e.name == "Newexten"][:1]
    tracker = CallTracker()
    assert renamed.name not in HANDLERS and newexten.name not in HANDLERS
    assert tracker.feed(renamed) == [] and tracker.feed(newexten) == []
    assert tracker.live_calls == []


def test_responses_and_banner_are_ignored():
    """Only events drive the tracker: the banner and action responses do nothing."""
    tracker = CallTracker()
    events = answered_events()
    replies = [e for e in events if e.kind != "event"]
    assert replies and all(tracker.feed(e) == [] for e in replies)
    assert tracker.stats.events == 0


@pytest.mark.parametrize(
    "name", ["Hangup", "HangupRequest", "QueueCallerJoin", "AgentConnect", "DialEnd", "VarSet"]
)
def test_event_for_a_channel_never_seen_makes_no_call(name):
    """An event about a channel we never saw created: no crash, no call, no effect."""
    event = first(answered_events(), name, Channel=CLINIC)
    tracker = CallTracker()
    assert tracker.feed(event) == []
    assert tracker.live_calls == []


def test_hangup_before_newchannel_is_ignored_and_the_call_still_ends():
    """A stray Hangup ahead of its Newchannel is dropped; the recorded call then runs normally."""
    events = answered_events()
    early = first(events, "Hangup", Channel=CLINIC)
    tracker = CallTracker()
    assert tracker.feed(early) == []
    assert tracker.stats.unknown_channel == 1
    assert finished(feed_all(events, tracker)) == [answered_record()]


def test_hangup_moved_before_newchannel_leaves_the_call_open_without_crash():
    """When the clinic channel's only Hangup came first, the call cannot end by itself (a resync
    settles it); nothing crashes and nothing is invented."""
    events = answered_events()
    hangup = first(events, "Hangup", Channel=CLINIC)
    reordered = [hangup] + [e for e in events if e is not hangup]
    tracker = CallTracker()
    assert finished(feed_all(reordered, tracker)) == []
    assert tracker.live_calls == ["1795369342.0"]


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        ("Newchannel", "Uniqueid"),
        ("Newchannel", "Channel"),
        ("Newchannel", "ChannelState"),
        ("Hangup", "Cause"),
        ("DialBegin", "DestUniqueid"),
        ("DialEnd", "DialStatus"),
        ("QueueCallerJoin", "Queue"),
        ("QueueCallerJoin", "Position"),
        ("AgentCalled", "Interface"),
        ("AgentCalled", "MemberName"),
        ("AgentConnect", "DestUniqueid"),
        ("AgentComplete", "Interface"),
        ("QueueMemberStatus", "Interface"),
        ("VarSet", "Value"),
        ("NewCallerid", "CallerIDNum"),
        ("BridgeEnter", "BridgeUniqueid"),
    ],
)
def test_missing_headers_never_stop_the_stream(event, missing):
    """Each recorded event of a type loses one header: the stream goes on, at most one call."""

    def edit(raw: str) -> str:
        return drop_header(raw, missing) if header(raw, "Event") == event else raw

    events = parse(rewrite(records("answered"), edit))
    assert all(missing not in e.headers for e in events if e.name == event)
    calls = replay_events(events)
    assert len(calls) <= 1
    assert all(c.linkedid == "1795369342.0" for c in calls)


def test_agent_comes_from_the_dialled_channel_when_interface_is_missing():
    """Without Interface the queue leg's extension comes from its DestChannel."""

    def edit(raw: str) -> str:
        if header(raw, "Event") in ("AgentCalled", "AgentConnect", "AgentComplete"):
            return drop_header(raw, "Interface")
        return raw

    (call,) = replay_events(parse(rewrite(records("answered"), edit)))
    assert (call.disposition, call.agent, call.agent_name) == (
        Disposition.ANSWERED,
        "101",
        "Иванова Анна",
    )


@pytest.mark.parametrize("number", ["Иван", "sip:alice@example.org", "101abc", "+7 (916) 123"])
def test_caller_number_that_is_not_a_phone_number_is_kept_raw(number):
    """A caller ID that is no phone number: the call is still tracked, the caller kept as is."""
    old = "+79161234567"
    events = parse(rewrite(records("answered"), lambda raw: raw.replace(old, number)))
    (call,) = replay_events(events)
    assert call.caller == number
    assert (call.disposition, call.agent) == (Disposition.ANSWERED, "101")


@pytest.mark.parametrize("name", ["answered", "transfer", "outbound_callback_noanswer", "burst"])
def test_duplicate_events_change_nothing(name):
    """Every message delivered twice: the same calls and no doubled screen pops."""
    events = parse(records(name))
    doubled = [e for e in events for _ in (0, 1)]
    once, twice = feed_all(events), feed_all(doubled)
    assert finished(twice) == finished(once)
    rings = [e for e in once if isinstance(e, AgentRinging)]
    assert [e for e in twice if isinstance(e, AgentRinging)] == rings
    assert sum(isinstance(e, CallStarted) for e in twice) == len(finished(once))


def test_newchannel_without_linkedid_joins_its_call_when_the_linkedid_shows():
    """A Newchannel without Linkedid: the channel is held alone until a later event names its
    call, so no extra call appears and the record is unchanged."""

    def edit(raw: str) -> str:
        return drop_header(raw, "Linkedid") if header(raw, "Event") == "Newchannel" else raw

    events = parse(rewrite(records("answered"), edit))
    assert all("Linkedid" not in e.headers for e in events if e.name == "Newchannel")
    effects = feed_all(events)
    assert finished(effects) == [answered_record()]
    assert [e.linkedid for e in effects if isinstance(e, CallStarted)] == ["1795369342.0"]


def test_channel_that_never_names_a_linkedid_is_a_call_of_its_own():
    """With no Linkedid anywhere (a stripped-down feed) each Uniqueid stands for its own call;
    the call still ends and nothing crashes."""
    events = parse(rewrite(records("busy"), lambda raw: drop_header(raw, "Linkedid")))
    calls = replay_events(events)
    assert calls and all(c.linkedid for c in calls)


def test_malformed_timestamp_falls_back_to_receive_time():
    """A Timestamp that is no number: the receive time is used, the call still ends."""
    events = parse(rewrite(records("busy"), lambda raw: set_header(raw, "Timestamp", "soon")))
    effects = feed_all(events)
    assert [type(e) for e in effects if isinstance(e, CallEnded)] == [CallEnded]
