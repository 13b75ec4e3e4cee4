"""Replay recorded AMI traffic through the tracker: the engine of ``callcenter replay``.

An edge module (it reads files), so the pure ``calls`` package stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from callcenter.ami.events import AmiEvent
from callcenter.ami.traces import read_trace
from callcenter.calls.effects import CallEnded
from callcenter.calls.model import CallRecord
from callcenter.calls.tracker import CallTracker


def replay_events(
    events: Iterable[AmiEvent], *, tracker: CallTracker | None = None
) -> list[CallRecord]:
    """Feed messages through a tracker; return the finished calls in the order they ended."""
    tracker = tracker or CallTracker()
    finished: list[CallRecord] = []
    for event in events:
        for effect in tracker.feed(event):
            if isinstance(effect, CallEnded):
                finished.append(effect.call)
    return finished


def replay_trace(path: Path | str) -> list[CallRecord]:
    """Replay a ``.jsonl`` or ``.ami`` trace (or a shipped scenario name) into finished calls.

    :raises TraceError: when the trace cannot be read.
    """
    return replay_events(read_trace(path))
