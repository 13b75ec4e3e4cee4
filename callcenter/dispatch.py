"""Effects → rows, tasks and notifications: the edge the pure tracker hands its results to.

Concurrency: the AMI listener runs on an asyncio loop and must never block on the database,
so every write goes to one ``StoreWriter`` thread, in order. One writer also gives SQLite the
single-writer discipline it needs. Notifications of calls go out at once from the loop; task
notices go out from the writer after their transaction commits.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    Effect,
    OperatorStateChanged,
)
from callcenter.calls.model import CallRecord
from callcenter.calls.tracker import CallTracker
from callcenter.notify import Notifier, TaskNotice

log = logging.getLogger(__name__)


class CallSink(Protocol):
    """Where finished calls and link gaps are kept (the store, or a fake in tests)."""

    def save_call(self, call: CallRecord) -> list[TaskNotice]: ...
    def open_gap(self, *, at: float, reason: str) -> int: ...
    def close_gap(self, *, gap_id: int, at: float) -> None: ...


_STOP = object()


class StoreWriter:
    """Run store work on one thread, in submission order; ``stop`` drains what is queued."""

    def __init__(self, *, name: str = "store-writer") -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.failures = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Queue a job; it runs after every job submitted before it."""
        self._queue.put(job)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every job submitted so far has run; return False on timeout."""
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Run what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            try:
                job()  # type: ignore[operator]
            except Exception:
                # A failed write must not stop later ones; it is logged with its traceback
                # and counted (metrics later), and the call stays in the log line.
                self.failures += 1
                log.exception("store job failed")


@dataclass
class EffectDispatcher:
    """Send each tracker effect to the notifier and, through the writer, to the store."""

    notifier: Notifier
    sink: CallSink | None = None
    writer: StoreWriter | None = None

    def dispatch(self, effects: Iterable[Effect]) -> None:
        """Handle effects in order."""
        for effect in effects:
            if isinstance(effect, CallEnded):
                self._call_ended(effect.call)
            elif isinstance(effect, AgentRinging):
                self.notifier.call_ringing(effect)
            elif isinstance(effect, AgentStoppedRinging):
                # A ring-all queue's other phones stop: their screen pops are withdrawn.
                self.notifier.agent_stopped_ringing(effect)
            elif isinstance(effect, CallStarted):
                self.notifier.call_started(effect)
            elif isinstance(effect, CallAnswered):
                self.notifier.call_answered(effect)
            elif isinstance(effect, OperatorStateChanged):
                self.notifier.operator_state(effect)

    def _call_ended(self, call: CallRecord) -> None:
        log.info(
            "call ended",
            extra={"linkedid": call.linkedid, "disposition": str(call.disposition)},
        )
        self.notifier.call_ended(call)
        sink = self.sink
        if sink is None:
            return

        def save() -> None:
            for notice in sink.save_call(call):
                self.notifier.task_changed(notice)

        self.write(save)

    def write(self, job: Callable[[], None]) -> None:
        """Run a store job on the writer thread (or at once without one)."""
        if self.writer is None:
            job()
        else:
            self.writer.submit(job)


class TrackingListener:
    """The AMI client's listener: events → tracker → dispatcher; link gaps → store."""

    def __init__(
        self,
        *,
        tracker: CallTracker,
        dispatcher: EffectDispatcher,
    ) -> None:
        self.tracker = tracker
        self.dispatcher = dispatcher
        self._gap_id: int | None = None
        self.link_up = False

    def on_event(self, event: AmiEvent) -> None:
        """Feed one AMI event to the tracker and dispatch what it reports."""
        effects = self.tracker.feed(event)
        if effects:
            self.dispatcher.dispatch(effects)

    def on_link_up(self, *, at: float) -> None:
        """Close the open gap, if any, and tell the screens."""
        self.link_up = True
        self.dispatcher.notifier.link_state(up=True, at=at, reason=None)
        sink = self.dispatcher.sink
        if sink is None:
            return

        def close() -> None:
            # Runs on the writer after the open job below, so _gap_id is set by then.
            if self._gap_id is not None:
                sink.close_gap(gap_id=self._gap_id, at=at)
                self._gap_id = None

        self.dispatcher.write(close)

    def on_link_down(self, *, at: float, reason: str) -> None:
        """Open a gap at once: until the link is back, calls may go unseen."""
        was_up, self.link_up = self.link_up, False
        self.dispatcher.notifier.link_state(up=False, at=at, reason=reason)
        sink = self.dispatcher.sink
        if not was_up:
            return  # still down (a failed reconnect): the open gap already covers it
        if sink is None:
            log.warning("AMI link down at %.3f (%s); calls may be missing", at, reason)
            return

        def open_() -> None:
            self._gap_id = sink.open_gap(at=at, reason=reason)

        self.dispatcher.write(open_)

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None:
        """Re-attach calls still live after a reconnect; report the ones that vanished."""
        effects = self.tracker.resync(channels=channels, queue_entries=queue_entries, at=at)
        if effects:
            self.dispatcher.dispatch(effects)
