"""Effects reach the notifier at once and the store through one writer thread, in order."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from callcenter.ami.traces import read_trace, trace_path
from callcenter.calls.model import CallRecord
from callcenter.calls.tracker import CallTracker
from callcenter.dispatch import EffectDispatcher, StoreWriter, TrackingListener
from callcenter.notify import RecordingNotifier, TaskNotice


@dataclass
class FakeSink:
    """In-memory CallSink: remembers calls and gaps, opens a task per dropped call."""

    calls: list[CallRecord] = field(default_factory=list)
    gaps: dict[int, list[float | None]] = field(default_factory=dict)
    threads: set[str] = field(default_factory=set)
    fail_on: str | None = None

    def save_call(self, call: CallRecord) -> list[TaskNotice]:
        self.threads.add(threading.current_thread().name)
        if call.linkedid == self.fail_on:
            raise RuntimeError("disk full")
        self.calls.append(call)
        if call.is_dropped and call.caller != "anonymous":
            return [TaskNotice(len(self.calls), call.caller or "", "x", "opened", call.linkedid)]
        return []

    def open_gap(self, *, at: float, reason: str) -> int:
        gap_id = len(self.gaps) + 1
        self.gaps[gap_id] = [at, None]
        return gap_id

    def close_gap(self, *, gap_id: int, at: float) -> None:
        self.gaps[gap_id][1] = at


def build(sink: FakeSink) -> tuple[TrackingListener, RecordingNotifier, StoreWriter]:
    notifier = RecordingNotifier()
    writer = StoreWriter()
    dispatcher = EffectDispatcher(notifier=notifier, sink=sink, writer=writer)
    return TrackingListener(tracker=CallTracker(), dispatcher=dispatcher), notifier, writer


def test_burst_calls_are_stored_on_the_writer_thread_in_end_order():
    sink = FakeSink()
    listener, notifier, writer = build(sink)
    for event in read_trace(trace_path("burst")):
        listener.on_event(event)
    assert writer.flush()
    writer.stop()
    ended = notifier.of("call_ended")
    assert len(ended) == 40
    assert [c.linkedid for c in sink.calls] == [c.linkedid for c in ended]
    assert sink.threads == {"store-writer"}
    # Task notices come from the store, after the commit: one per non-anonymous drop here.
    assert len(notifier.of("task_changed")) == 33
    # One screen pop per AgentCalled in the trace (busy agents are not rung: ringinuse=no).
    assert len(notifier.of("call_ringing")) == 9


def test_a_failed_store_write_is_counted_and_later_calls_still_stored():
    """A bug in one write is logged with its traceback and does not stop the stream."""
    sink = FakeSink(fail_on="1795369641.110")
    listener, notifier, writer = build(sink)
    for event in read_trace(trace_path("burst")):
        listener.on_event(event)
    writer.stop()
    assert writer.failures == 1
    assert len(sink.calls) == 39


def test_link_down_then_up_stores_one_gap_from_down_to_up():
    """A lost call is never silent: the time the link was down is stored as a gap."""
    sink = FakeSink()
    listener, notifier, writer = build(sink)
    listener.on_link_up(at=100.0)
    listener.on_link_down(at=110.0, reason="connection lost")
    listener.on_link_down(at=111.0, reason="connect refused")  # failed retry: same gap
    listener.on_link_up(at=125.5)
    writer.stop()
    assert sink.gaps == {1: [110.0, 125.5]}
    assert [p[0] for p in notifier.of("link_state")] == [True, False, False, True]


def test_first_connection_is_not_a_gap():
    sink = FakeSink()
    listener, _, writer = build(sink)
    listener.on_link_up(at=100.0)
    writer.stop()
    assert sink.gaps == {}


def test_stop_writes_everything_already_queued():
    """Graceful shutdown: in-flight effects are written before the writer ends."""
    sink = FakeSink()
    writer = StoreWriter()
    started = threading.Event()
    release = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    writer.submit(slow)
    for n in range(100):
        writer.submit(lambda n=n: sink.gaps.setdefault(n, []))
    assert started.wait(5)
    release.set()
    writer.stop()
    assert len(sink.gaps) == 100
