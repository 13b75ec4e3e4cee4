"""Recorded Asterisk 22 traffic → CallTracker → calls that agree with each trace's expected.json."""

from __future__ import annotations

import random

import pytest

from callcenter.ami.parser import FrameParser
from callcenter.ami.traces import TRACES_DIR, list_traces, read_trace
from callcenter.calls.effects import CallLost, CallQueued, CallStarted
from callcenter.calls.model import Direction, Disposition
from callcenter.calls.tracker import CallTracker
from callcenter.replay import replay_events, replay_trace
from tests.replay.helpers_traces import (
    expected,
    feed_all,
    finished,
    header,
    mismatches,
    parse,
    records,
    rename_to_pjsip,
    rewrite,
    set_header,
    strip_timestamps,
)

TRACES = list_traces()


def assert_calls_agree(calls, name, *, tolerance=0.2, times=True):
    exp = expected(name)
    by_id = {c.linkedid: c for c in calls}
    assert len(by_id) == len(calls), "a call ended twice"
    assert sorted(by_id) == sorted(c["linkedid"] for c in exp["calls"]), "extra or missing calls"
    problems = {
        c["linkedid"]: bad
        for c in exp["calls"]
        if (bad := mismatches(by_id[c["linkedid"]], c, tolerance=tolerance, times=times))
    }
    assert not problems


@pytest.mark.parametrize("suffix", [".jsonl", ".ami"])
@pytest.mark.parametrize("name", TRACES)
def test_replayed_trace_gives_the_expected_calls(name, suffix):
    """Every call of every trace: same linkedid, direction, disposition, agent, recording,
    caller (raw), callback task; wait/talk/queue wait within 0.2 s; start/end times; no extras."""
    assert_calls_agree(replay_trace(TRACES_DIR / f"{name}{suffix}"), name)


def test_burst_counts_match_the_scenario():
    """The 40-call burst: 6 answered, 16 abandoned, 18 queue timeouts (README)."""
    calls = replay_trace("burst")
    counts = {d: sum(c.disposition is d for c in calls) for d in Disposition}
    assert (len(calls), counts[Disposition.ANSWERED]) == (40, 6)
    assert (counts[Disposition.ABANDONED], counts[Disposition.QUEUE_TIMEOUT]) == (16, 18)
    assert "anonymous" in {c.caller for c in calls}


def test_transfers_keep_one_call_with_first_and_last_agent():
    """Blind and attended transfers: agent = who answered first, last_agent = who had the caller
    last, the transfer recorded."""
    calls = {c.linkedid: c for c in replay_trace("transfer")}
    blind, attended = calls["1795369538.60"], calls["1795369569.70"]
    assert (blind.agent, blind.last_agent, blind.transfers) == ("101", "102", ("blind",))
    assert (attended.agent, attended.last_agent, attended.transfers) == (
        "101",
        "102",
        ("attended",),
    )


def _chunks(data: bytes, sizes):
    i = 0
    while i < len(data):
        n = next(sizes)
        yield data[i : i + n]
        i += n


def _constant(n):
    while True:
        yield n


def _random_sizes(seed):
    rng = random.Random(seed)
    while True:
        yield rng.choice((1, 2, 3, 5, 64, 333, 1000, 4096, 70000))


def _replay_chunked(data: bytes, sizes):
    parser = FrameParser(clock=lambda: 0.0)
    tracker = CallTracker()
    events = (e for chunk in _chunks(data, sizes) for e in parser.feed(chunk))
    calls = replay_events(events, tracker=tracker)
    assert parser.finish() == b""
    assert parser.stats.malformed == 0
    return calls


@pytest.mark.parametrize(
    "sizes",
    [lambda: _constant(1), lambda: _constant(7), lambda: _constant(4096), lambda: _random_sizes(7)],
    ids=["1", "7", "4096", "random"],
)
@pytest.mark.parametrize("name", TRACES)
def test_ami_bytes_in_any_chunking_give_identical_calls(name, sizes):
    """The verbatim .ami bytes split at arbitrary boundaries (mid-frame, mid-UTF-8 letter, many
    frames per chunk) give the same CallRecords as the whole stream at once."""
    data = (TRACES_DIR / f"{name}.ami").read_bytes()
    whole = replay_trace(TRACES_DIR / f"{name}.ami")
    assert _replay_chunked(data, sizes()) == whole


@pytest.mark.parametrize("name", TRACES)
def test_receive_times_drive_the_clock_without_timestamp_headers(name):
    """Timestamp is not Asterisk's default: without it the receive times give the same calls,
    every *_s within 0.5 s."""
    recs = rewrite(records(name), strip_timestamps)
    events = parse(recs)
    assert not any("Timestamp" in e.headers for e in events)
    assert_calls_agree(replay_events(events), name, tolerance=0.5, times=False)


@pytest.mark.parametrize("name", TRACES)
def test_pjsip_names_contexts_queue_and_numbers_do_not_matter(name):
    """A clinic's PJSIP trunk and phones, its own contexts, queue name and numbers: the same
    calls (dispositions, agents, timings) — nothing depends on the lab's names."""
    recs = rewrite(records(name), rename_to_pjsip)
    text = "".join(r.raw for r in recs)
    assert "from-trunk" not in text and "@agents" not in text and "reception" not in text
    assert "74951234500" not in text and "PJSIP/trunk-" in text
    calls = replay_events(parse(recs))
    exp = expected(name)
    for call in exp["calls"]:
        if call.get("queue"):
            call["queue"] = "registratura"
    by_id = {c.linkedid: c for c in calls}
    assert sorted(by_id) == sorted(c["linkedid"] for c in exp["calls"])
    problems = {c["linkedid"]: mismatches(by_id[c["linkedid"]], c) for c in exp["calls"]}
    assert not any(problems.values()), problems


def _cut_before_queue(name: str, linkedid: str):
    """Return the call's messages up to its QueueCallerJoin, then the caller's own hang-up.

    The hang-up messages are that trace's HangupRequest/SoftHangupRequest/Hangup of the clinic
    channel and the caller's half, moved to just after the cut.
    """
    recs = records(name)
    join = next(
        i
        for i, r in enumerate(recs)
        if header(r.raw, "Event") == "QueueCallerJoin" and header(r.raw, "Linkedid") == linkedid
    )
    call_info = next(c for c in expected(name)["calls"] if c["linkedid"] == linkedid)
    clinic = call_info["clinic_channel"]
    caller_half = clinic[:-1] + "1"
    before = [
        r for r in recs[:join] if header(r.raw, "Linkedid") in (None, linkedid)
    ]  # Linkedid-less messages are the banner, Login/Ping replies, device states
    cut_ts = max(float(header(r.raw, "Timestamp") or 0) for r in before)
    hangups = [
        r
        for r in recs[join:]
        if header(r.raw, "Event") in ("HangupRequest", "SoftHangupRequest", "Hangup")
        and header(r.raw, "Channel") in (clinic, caller_half)
    ]
    moved = []
    for k, r in enumerate(hangups, 1):
        ts = f"{cut_ts + 0.5 + k * 0.001:.6f}"
        moved.append(type(r)(r.t, set_header(r.raw, "Timestamp", ts)))
    return before + moved, cut_ts


def test_caller_who_hangs_up_before_the_queue_is_ivr_abandoned():
    """A caller who hangs up before reaching a queue or an agent (greeting, IVR, closed-hours
    message) is ivr_abandoned: no queue, wait_s = Newchannel → Hangup."""
    recs, cut_ts = _cut_before_queue("answered", "1795369342.0")
    effects = feed_all(parse(recs))
    (call,) = finished(effects)
    assert call.disposition is Disposition.IVR_ABANDONED
    assert (call.queue, call.agent, call.queue_wait_s, call.recording) == (None, None, None, None)
    assert call.caller == "+79161234567"
    start = expected("answered")["calls"][0]["start_ts"]
    assert call.wait_s == pytest.approx(round(cut_ts + 0.5 + 0.003 - start, 1), abs=0.11)
    assert call.talk_s == 0.0
    assert not any(isinstance(e, CallQueued) for e in effects)


def _snapshot_split(name: str):
    """Return (events before the snapshot, CoreShowChannel + QueueEntry items, events after,
    Asterisk time of the snapshot)."""
    events = list(read_trace(name))
    first = next(i for i, e in enumerate(events) if e.name in ("QueueParams", "CoreShowChannel"))
    last = max(i for i, e in enumerate(events) if e.name in ("CoreShowChannel", "QueueEntry"))
    snap = [e for e in events[first : last + 1] if e.kind == "event"]
    channels = [e for e in snap if e.name == "CoreShowChannel"]
    entries = [e for e in snap if e.name == "QueueEntry"]
    at = max(e.timestamp for e in events[:first] if "Timestamp" in e.headers)
    rest = [e for e in events[last + 1 :] if e.name not in ("Status", "StatusComplete")]
    return events[:first], channels, entries, rest, at


def test_resync_reattaches_live_calls_so_later_events_finish_them():
    """After a reconnect a fresh tracker learns the live calls from CoreShowChannels and
    QueueStatus; the later events finish them with the right disposition and agent."""
    _before, channels, entries, rest, at = _snapshot_split("state_snapshot")
    tracker = CallTracker()
    effects = tracker.resync(channels=channels, queue_entries=entries, at=at)
    started = {e.linkedid for e in effects if isinstance(e, CallStarted)}
    assert started == {"1795369604.82", "1795369606.84", "1795369608.86"}
    calls = {c.linkedid: c for c in finished(feed_all(rest, tracker))}
    want = {c["linkedid"]: c for c in expected("state_snapshot")["calls"]}
    assert sorted(calls) == sorted(want)
    for linkedid, call in calls.items():
        w = want[linkedid]
        got = (call.disposition, call.agent, call.caller, call.queue, call.end_ts)
        assert got == (w["disposition"], w["agent"], w["caller"], w["queue"], w["end_ts"])
    answered = calls["1795369604.82"]
    assert answered.agent_name == "Иванова Анна"
    assert answered.recording is None or answered.recording.endswith(".wav")
    assert tracker.live_calls == []


def test_resync_reports_calls_that_ended_while_away_as_lost():
    """A call we followed that is missing from the snapshot ended while the link was down:
    CallLost with what we knew, no invented disposition; its stray later events are ignored and
    the calls still live carry on to their normal end."""
    before, channels, entries, rest, at = _snapshot_split("burst")
    tracker = CallTracker()
    assert finished(feed_all(before, tracker)) == []
    gone = "1795369641.110"  # answered by 101, still talking at the snapshot
    assert gone in tracker.live_calls
    # As if that call had ended during the outage: it is not in Asterisk's lists.
    gone_uids = {e["Uniqueid"] for e in channels if e["Linkedid"] == gone}
    channels = [e for e in channels if e["Linkedid"] != gone]
    entries = [e for e in entries if e["Uniqueid"] not in gone_uids]
    effects = tracker.resync(channels=channels, queue_entries=entries, at=at)
    (lost,) = [e for e in effects if isinstance(e, CallLost)]
    assert (lost.linkedid, lost.agent, lost.caller, lost.queue) == (
        gone,
        "101",
        "74958369006",
        "reception",
    )
    assert lost.ts == at and lost.last_seen_ts <= at
    later = {c.linkedid: c for c in finished(feed_all(rest, tracker))}
    want = {c["linkedid"]: c for c in expected("burst")["calls"]}
    assert sorted(later) == sorted(set(want) - {gone})
    assert all(later[k].disposition == want[k]["disposition"] for k in later)
    assert tracker.live_calls == []


def test_resync_of_a_tracker_that_missed_nothing_changes_nothing():
    """A resync when every live call is still known: no effect, and the calls end exactly as in
    a plain replay."""
    before, channels, entries, rest, at = _snapshot_split("state_snapshot")
    tracker = CallTracker()
    assert finished(feed_all(before, tracker)) == []
    assert tracker.resync(channels=channels, queue_entries=entries, at=at) == []
    assert_calls_agree(finished(feed_all(rest, tracker)), "state_snapshot")


@pytest.mark.parametrize("name", ["outbound_callback_answered", "outbound_callback_noanswer"])
def test_originate_without_callback_task_is_still_an_outbound_call(name):
    """Without the CALLBACK_TASK variable the OriginateResponse (by Uniqueid, or by its dial
    string when it failed with ``Uniqueid: <unknown>``) makes the call outbound: same calls."""
    recs = [r for r in records(name) if header(r.raw, "Variable") != "CALLBACK_TASK"]
    effects = feed_all(parse(recs))
    calls = {c.linkedid: c for c in finished(effects)}
    want = expected(name)["calls"]
    assert sorted(calls) == sorted(c["linkedid"] for c in want)
    problems = {
        c["linkedid"]: mismatches(calls[c["linkedid"]], {**c, "callback_task": None}) for c in want
    }
    assert not any(problems.values()), problems
    last_start = {e.linkedid: e for e in effects if isinstance(e, CallStarted)}
    assert {e.direction for e in last_start.values()} == {Direction.OUTBOUND}
    assert all(e.caller in (None, calls[k].caller) for k, e in last_start.items())
