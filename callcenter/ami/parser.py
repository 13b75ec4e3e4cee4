"""Bytes → AMI frames → AmiEvent. No sockets: fed by the protocol, trace readers and tests.

Why our own parser: panoramisk 1.4 decodes each network chunk on its own (a Cyrillic letter
split across two reads vanishes), strips frames before splitting headers (so a last header with
an empty value such as ``AppData: `` is lost) and drops frames without ``Event``/``Response``
silently. We frame on raw bytes (``\\r\\n\\r\\n`` never occurs inside a UTF-8 sequence), decode
each whole frame once, split every header on the first ``:`` and keep empty values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from callcenter.ami.events import AmiEvent

log = logging.getLogger(__name__)

EOL = b"\r\n"
FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"


@dataclass(slots=True)
class ParserStats:
    """Counters a listener exposes (and metrics later export)."""

    messages: int = 0
    malformed: int = 0
    bad_header_lines: int = 0
    invalid_utf8: int = 0
    last_error: str | None = None
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def count_error(self, kind: str, detail: str) -> None:
        """Count one malformed input of ``kind`` and remember the latest detail."""
        self.malformed += 1
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        self.last_error = f"{kind}: {detail}"


class FrameParser:
    """Incremental AMI parser: ``feed(bytes)`` returns the complete messages so far.

    >>> p = FrameParser(clock=lambda: 1.0)
    >>> [e.kind for e in p.feed(b"Asterisk Call Manager/11.0.0\\r\\nEvent: Newexten\\r\\nAppData:")]
    ['banner']
    >>> [(e.name, e["AppData"]) for e in p.feed(b" \\r\\n\\r\\n")]
    [('Newexten', '')]
    >>> name = "Event: X\\r\\nName: Ир\\r\\n\\r\\n".encode()
    >>> [e["Name"] for e in p.feed(name[:-6]) + p.feed(name[-6:])]  # "р" split across reads
    ['Ир']
    """

    __slots__ = ("_buf", "_clock", "_expect_banner", "stats", "on_malformed")

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        expect_banner: bool = True,
        on_malformed: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self._buf = b""
        self._clock = clock
        self._expect_banner = expect_banner
        self.stats = ParserStats()
        self.on_malformed = on_malformed

    @property
    def pending(self) -> bytes:
        """Return the bytes of an incomplete frame still waiting for its end."""
        return self._buf

    def feed(self, data: bytes) -> list[AmiEvent]:
        """Add received bytes and return every message they complete, in order."""
        buf = self._buf + data if self._buf else data
        out: list[AmiEvent] = []
        if self._expect_banner:
            if len(buf) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(buf):
                self._buf = buf
                return out
            self._expect_banner = False
            if buf.startswith(BANNER_PREFIX):
                end = buf.find(EOL)
                if end < 0:
                    self._expect_banner = True
                    self._buf = buf
                    return out
                banner = buf[:end].decode("utf-8", "replace")
                out.append(AmiEvent(banner, {}, self._clock(), "banner", (), banner + "\r\n"))
                buf = buf[end + 2 :]
        frames = buf.split(FRAME_END)
        self._buf = frames.pop()
        if frames:
            now = self._clock()
            parse = self.parse_frame
            for frame in frames:
                event = parse(frame, now)
                if event is not None:
                    out.append(event)
        return out

    def parse_frame(self, frame: bytes, received_at: float) -> AmiEvent | None:
        """Parse one frame (without its blank line); count and log it when malformed."""
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Keep the frame (a wrong letter beats a lost hangup), but say so.
            self.stats.invalid_utf8 += 1
            self._malformed("invalid_utf8", frame, str(exc))
            text = frame.decode("utf-8", "replace")
        if not text:
            # A stray blank line between frames (seen after some Command replies).
            return None
        lines = text.split("\r\n")
        pairs: Sequence[Sequence[str]]
        headers: dict[str, str]
        try:
            # Fast path: every line is "Key: value" (what Asterisk writes). split() gives
            # ["AppData", ""] for "AppData: ", so empty values are kept.
            pairs = [line.split(": ", 1) for line in lines]
            headers = dict(pairs)  # type: ignore[arg-type]
            if ":" in "".join(headers):
                raise ValueError("colon in a header name: the first colon had no space")
        except ValueError:
            pairs = fields = self._parse_lines(lines, frame)
            headers = dict(fields)
        # Only a message with a repeated header (Variable, ChanVariable) keeps its pairs.
        repeated = tuple((k, v) for k, v in pairs) if len(headers) != len(pairs) else ()
        self.stats.messages += 1
        raw = text + "\r\n\r\n"
        if "Event" in headers:
            return AmiEvent(headers["Event"], headers, received_at, "event", repeated, raw)
        if "Response" in headers:
            return AmiEvent(headers["Response"], headers, received_at, "response", repeated, raw)
        self._malformed("no_event_or_response", frame, repr(text[:120]))
        return None

    def _parse_lines(self, lines: list[str], frame: bytes) -> list[tuple[str, str]]:
        """Split each line on its first ``:``; count and skip lines that have none."""
        fields: list[tuple[str, str]] = []
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep or not key:
                self.stats.bad_header_lines += 1
                self._malformed("bad_header_line", frame, repr(line[:80]))
                continue
            fields.append((key, value[1:] if value[:1] == " " else value))
        return fields

    def finish(self) -> bytes:
        """Return (and forget) an incomplete trailing frame; count it as truncated."""
        rest, self._buf = self._buf, b""
        if rest.strip():
            self._malformed("truncated_frame", rest, f"{len(rest)} bytes without a frame end")
        return rest

    def _malformed(self, kind: str, frame: bytes, detail: str) -> None:
        self.stats.count_error(kind, detail)
        log.warning("malformed AMI input (%s): %s; frame starts %r", kind, detail, frame[:160])
        if self.on_malformed is not None:
            self.on_malformed(kind, frame)
