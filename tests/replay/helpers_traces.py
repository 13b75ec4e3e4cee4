"""Trace-editing helpers for tracker tests: load, rewrite and re-parse the recorded messages.

Every edit works on the raw text Asterisk sent and re-parses it with the real ``FrameParser``,
so a rewritten trace is still exactly what some Asterisk could have sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import FRAME_END, FrameParser
from callcenter.ami.traces import TRACES_DIR, TraceRecord, read_jsonl_records
from callcenter.calls.effects import CallEnded, Effect
from callcenter.calls.model import CallRecord
from callcenter.calls.tracker import CallTracker

TIMES = ("wait_s", "talk_s", "queue_wait_s")
FACTS = ("linkedid", "direction", "disposition", "agent", "recording", "caller", "queue")


def expected(name: str) -> dict[str, Any]:
    """Return a shipped trace's ``expected.json``."""
    return json.loads((TRACES_DIR / f"{name}.expected.json").read_text(encoding="utf-8"))


def records(name: str) -> list[TraceRecord]:
    """Return the messages of a shipped ``.jsonl`` trace as recorded."""
    return read_jsonl_records(TRACES_DIR / f"{name}.jsonl")


def parse(recs: Iterable[TraceRecord]) -> list[AmiEvent]:
    """Parse trace records (possibly edited) into messages, as the trace reader does."""
    parser = FrameParser()
    out: list[AmiEvent] = []
    for rec in recs:
        data = rec.raw.encode("utf-8")
        if not data.endswith(FRAME_END):
            continue  # the banner
        event = parser.parse_frame(data[: -len(FRAME_END)], rec.t)
        if event is not None:
            out.append(event)
    return out


def rewrite(recs: Iterable[TraceRecord], edit: Callable[[str], str]) -> list[TraceRecord]:
    """Return the records with ``edit`` applied to each message's raw text."""
    return [TraceRecord(rec.t, edit(rec.raw)) for rec in recs]


def header(raw: str, name: str) -> str | None:
    """Return one header's value from a raw message."""
    m = re.search(rf"^{re.escape(name)}: ?(.*?)\r$", raw, re.MULTILINE)
    return m.group(1) if m else None


def set_header(raw: str, name: str, value: str) -> str:
    """Return the raw message with one header's value replaced."""
    return re.sub(
        rf"^({re.escape(name)}: ?).*?\r$",
        lambda m: f"{m.group(1)}{value}\r",
        raw,
        count=1,
        flags=re.MULTILINE,
    )


def drop_header(raw: str, name: str) -> str:
    """Return the raw message without a header."""
    return re.sub(rf"^{re.escape(name)}:[^\r]*\r\n", "", raw, flags=re.MULTILINE)


def strip_timestamps(raw: str) -> str:
    """Remove the ``Timestamp`` header (not Asterisk's default) from a raw message."""
    return drop_header(raw, "Timestamp")


# The lab simulates the trunk and the phones with Local channel pairs. A clinic has PJSIP: the
# trunk channel is ``PJSIP/trunk-XXXXXXXX``, a phone is ``PJSIP/101`` (channel
# ``PJSIP/101-XXXXXXXX``). Also rename contexts, the queue and the dialled numbers, so nothing
# the tracker does can lean on the lab's names.
_PJSIP_RENAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Local/\d+@from-trunk-([0-9a-f]+);2"), r"PJSIP/trunk-\1"),
    (re.compile(r"Local/(\d+)@from-trunk-([0-9a-f]+);1"), r"Local/\1@inbound-sim-\2;1"),
    (re.compile(r"Local/(\d+)@agents-([0-9a-f]+);[12]"), r"PJSIP/\1-\2"),
    (re.compile(r"Local/(\d+)@agents/n"), r"PJSIP/\1"),
    (re.compile(r"Local/(\d+)@agents\b"), r"PJSIP/\1"),
    (re.compile(r"^(DialString: )(\d+)@agents/n\r$", re.MULTILINE), "\\1\\2\r"),
    (re.compile(r"Local/(\d+)@operator-([0-9a-f]+);[12]"), r"PJSIP/\1-\2"),
    (re.compile(r"^(DialString: )(\d+)@operator/n\r$", re.MULTILINE), "\\1\\2\r"),
    (re.compile(r"Local/(\d+)@pstn-([0-9a-f]+);[12]"), r"PJSIP/trunk-\2"),
    (re.compile(r"Local/(\d+)@pstn/n"), r"PJSIP/\1@trunk"),
    (re.compile(r"\b(\d+)@pstn/n"), r"\1@trunk"),
    (re.compile(r"Local/(\d+)@operator\b"), r"PJSIP/\1"),
    (re.compile(r"Local/(\d+)@internal-([0-9a-f]+);([12])"), r"Local/\1@staff-\2;\3"),
    (re.compile(r"\bfrom-trunk\b"), "from-pstn"),
    (re.compile(r"\bagents\b"), "phones"),
    (re.compile(r"\binternal\b"), "staff"),
    (re.compile(r"reception"), "registratura"),
    (re.compile(r"7495123450(\d)"), r"7812555000\1"),
    (re.compile(r"7495123451(\d)"), r"7812555001\1"),
]


def rename_to_pjsip(raw: str) -> str:
    """Rewrite a lab message as a PJSIP clinic with other names and numbers would send it.

    >>> rename_to_pjsip("Channel: Local/74951234500@from-trunk-0000001e;2\\r\\n")
    'Channel: PJSIP/trunk-0000001e\\r\\n'
    >>> rename_to_pjsip("Interface: Local/101@agents/n\\r\\nQueue: reception\\r\\n")
    'Interface: PJSIP/101\\r\\nQueue: registratura\\r\\n'
    """
    for pattern, repl in _PJSIP_RENAMES:
        raw = pattern.sub(repl, raw)
    return raw


def feed_all(events: Iterable[AmiEvent], tracker: CallTracker | None = None) -> list[Effect]:
    """Feed messages through a tracker and return every effect, in order."""
    tracker = tracker or CallTracker()
    out: list[Effect] = []
    for event in events:
        out.extend(tracker.feed(event))
    return out


def finished(effects: Iterable[Effect]) -> list[CallRecord]:
    """Return the records of the calls that ended, in end order."""
    return [e.call for e in effects if isinstance(e, CallEnded)]


def mismatches(
    record: CallRecord, call: dict[str, Any], *, tolerance: float = 0.2, times: bool = True
) -> list[str]:
    """Return how a record disagrees with an ``expected.json`` call (empty when it agrees).

    Fields an expected call does not list (``queue`` of an outbound call …) must be null.
    """
    got = record.to_contract()
    out = [f"{k}: got {got[k]!r}, expected {call.get(k)!r}" for k in FACTS if got[k] != call.get(k)]
    if got["callback_task"] != call.get("callback_task"):
        out.append(
            f"callback_task: got {got['callback_task']!r}, expected {call.get('callback_task')!r}"
        )
    for k in TIMES:
        want, have = call.get(k), got[k]
        if (want is None) != (have is None) or (
            want is not None and abs(want - have) > tolerance + 1e-9
        ):
            out.append(f"{k}: got {have!r}, expected {want!r}")
    if times:
        for k in ("start_ts", "end_ts"):
            if abs(got[k] - call[k]) > 0.0015:
                out.append(f"{k}: got {got[k]!r}, expected {call[k]!r}")
    if "last_agent" in call and record.last_agent != call["last_agent"]:
        out.append(f"last_agent: got {record.last_agent!r}, expected {call['last_agent']!r}")
    return out
