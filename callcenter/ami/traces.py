"""Read recorded AMI traffic: verbatim ``.ami`` byte streams and ``.jsonl`` message logs.

Both forms go through the same ``FrameParser`` the live client uses, so replay and listening
cannot disagree about what a frame means.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import FRAME_END, FrameParser

log = logging.getLogger(__name__)

#: Traces recorded from a real Asterisk 22, shipped with the package (demo, simulator, tests).
TRACES_DIR = Path(__file__).resolve().parent.parent / "data" / "ami-traces"


class TraceError(ValueError):
    """A trace file cannot be read at all (missing, wrong format)."""


def trace_path(name: str, suffix: str = ".jsonl") -> Path:
    """Return the path of a shipped trace by scenario name (``burst``) or a path as given.

    >>> trace_path("burst").name
    'burst.jsonl'
    """
    p = Path(name)
    if p.suffix in (".ami", ".jsonl") or p.exists():
        return p
    return TRACES_DIR / f"{name}{suffix}"


def list_traces() -> list[str]:
    """Return the names of the shipped traces.

    >>> "burst" in list_traces()
    True
    """
    return sorted(p.name[: -len(".expected.json")] for p in TRACES_DIR.glob("*.expected.json"))


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One message of a ``.jsonl`` trace: receive time (s since connect) and exact text."""

    t: float
    raw: str


def read_jsonl_records(path: Path) -> list[TraceRecord]:
    """Return the records of a ``.jsonl`` trace; a broken line is logged and skipped.

    :raises TraceError: when the file cannot be opened.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from exc
    records: list[TraceRecord] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            records.append(TraceRecord(float(obj["t"]), str(obj["raw"])))
        except (ValueError, KeyError, TypeError) as exc:
            # A truncated last line is what a killed recorder leaves; keep what came before.
            log.warning("%s:%d: unreadable trace record skipped (%s)", path, lineno, exc)
    return records


def read_jsonl(path: Path, *, parser: FrameParser | None = None) -> Iterator[AmiEvent]:
    """Yield the messages of a ``.jsonl`` trace with their recorded receive times."""
    parser = parser or FrameParser()
    for rec in read_jsonl_records(path):
        data = rec.raw.encode("utf-8")
        if not data.endswith(FRAME_END):
            banner = rec.raw.rstrip("\r\n")
            if banner.startswith("Asterisk Call Manager/"):
                yield AmiEvent(banner, {}, rec.t, "banner", (), rec.raw)
                continue
            parser.stats.count_error("truncated_frame", f"record at t={rec.t} has no frame end")
            log.warning("%s: record at t=%s has no frame end; parsed as is", path, rec.t)
            # A half-written frame end ("\r\n") is not an empty header line.
            data = data.rstrip(b"\r\n")
        else:
            data = data[: -len(FRAME_END)]
        event = parser.parse_frame(data, rec.t)
        if event is not None:
            yield event


def read_ami(
    path: Path, *, parser: FrameParser | None = None, chunk_size: int = 65536
) -> Iterator[AmiEvent]:
    """Yield the messages of a verbatim ``.ami`` byte stream (no receive times: 0.0).

    A truncated last frame is counted and logged, never silently dropped.

    :raises TraceError: when the file cannot be opened.
    """
    parser = parser or FrameParser(clock=lambda: 0.0)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from exc
    with fh:
        while chunk := fh.read(chunk_size):
            yield from parser.feed(chunk)
    parser.finish()


def read_trace(path: Path | str, *, parser: FrameParser | None = None) -> Iterator[AmiEvent]:
    """Yield the messages of a trace in either recorded form, chosen by the file suffix.

    :raises TraceError: for an unknown suffix or an unreadable file.
    """
    p = trace_path(str(path))
    if p.suffix == ".jsonl":
        return read_jsonl(p, parser=parser)
    if p.suffix == ".ami":
        return read_ami(p, parser=parser)
    raise TraceError(f"unknown trace format {p.suffix!r} (expected .ami or .jsonl): {p}")
