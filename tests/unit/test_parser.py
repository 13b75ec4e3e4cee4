"""FrameParser: bytes in, AmiEvents out, at any chunk boundary, never losing a frame silently."""

from __future__ import annotations

import json
import logging
import random

import pytest

from callcenter.ami.parser import FrameParser
from callcenter.ami.traces import (
    TRACES_DIR,
    list_traces,
    read_ami,
    read_jsonl,
    read_jsonl_records,
)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CYRILLIC = "Event: QueueMember\r\nMemberName: Иванова Анна\r\nPausedReason: \r\n\r\n".encode()


def feed_all(parser: FrameParser, pieces: list[bytes]) -> list:
    out = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    return out


def test_partial_frame_waits_for_its_blank_line():
    p = FrameParser(expect_banner=False)
    assert p.feed(b"Event: Hangup\r\nUniqueid: 1.2\r\n") == []
    assert p.pending == b"Event: Hangup\r\nUniqueid: 1.2\r\n"
    assert p.feed(b"\r") == []
    [event] = p.feed(b"\n")
    assert (event.name, event["Uniqueid"]) == ("Hangup", "1.2")
    assert p.pending == b""


@pytest.mark.parametrize("cut", range(1, len(CYRILLIC)))
def test_split_anywhere_including_inside_a_utf8_letter(cut):
    p = FrameParser(expect_banner=False)
    [event] = p.feed(CYRILLIC[:cut]) + p.feed(CYRILLIC[cut:])
    assert event["MemberName"] == "Иванова Анна"
    assert event.raw.encode() == CYRILLIC
    assert p.stats.malformed == 0


def test_many_events_in_one_chunk_come_out_in_order():
    frames = b"".join(f"Event: Newexten\r\nPriority: {i}\r\n\r\n".encode() for i in range(500))
    events = FrameParser(expect_banner=False).feed(frames)
    assert [e["Priority"] for e in events] == [str(i) for i in range(500)]


def test_banner_split_across_reads_then_events():
    p = FrameParser()
    out = feed_all(p, [BANNER[:5], BANNER[5:20], BANNER[20:] + b"Event: A\r\n\r\n"])
    assert [(e.kind, e.name) for e in out] == [
        ("banner", "Asterisk Call Manager/11.0.0"),
        ("event", "A"),
    ]


def test_empty_last_header_is_kept():
    [event] = FrameParser(expect_banner=False).feed(
        b"Event: Newexten\r\nApplication: Answer\r\nAppData: \r\n\r\n"
    )
    assert event.headers == {"Event": "Newexten", "Application": "Answer", "AppData": ""}


def test_burst_keeps_every_empty_last_header():
    # panoramisk 1.4 strips the frame first and loses these (518 messages of burst).
    records = read_jsonl_records(TRACES_DIR / "burst.jsonl")
    with_empty_last = [
        r for r in records if r.raw.endswith(": \r\n\r\n") and not r.raw.startswith("Asterisk")
    ]
    assert len(with_empty_last) == 518
    parsed = {e.raw: e for e in read_ami(TRACES_DIR / "burst.ami")}
    for rec in with_empty_last:
        last_key = rec.raw[: -len(": \r\n\r\n")].rsplit("\r\n", 1)[-1]
        assert parsed[rec.raw].fields[-1] == (last_key, "")


def test_repeated_headers_keep_every_value():
    [event] = FrameParser(expect_banner=False).feed(
        b"Response: Success\r\nChanVariable: A=1\r\nChanVariable: B=\r\n\r\n"
    )
    assert event.kind == "response"
    assert event.values("ChanVariable") == ["A=1", "B="]


def test_malformed_frames_are_counted_logged_and_skipped(caplog):
    seen = []
    p = FrameParser(expect_banner=False, on_malformed=lambda kind, frame: seen.append(kind))
    stream = (
        b"Event: First\r\n\r\n"
        b"Foo: no event or response\r\n\r\n"
        b"Event: Broken\r\nthis line has no colon\r\nKey: v\r\n\r\n"
        b"Event: BadBytes\r\nName: \xff\xfe\r\n\r\n"
        b"Event: Last\r\n\r\n"
    )
    with caplog.at_level(logging.WARNING, logger="callcenter.ami.parser"):
        events = p.feed(stream)
    assert [e.name for e in events] == ["First", "Broken", "BadBytes", "Last"]
    assert events[1].headers == {"Event": "Broken", "Key": "v"}
    assert "\ufffd" in events[2]["Name"]
    assert sorted(seen) == ["bad_header_line", "invalid_utf8", "no_event_or_response"]
    assert p.stats.malformed == 3
    assert p.stats.errors_by_kind == {
        "no_event_or_response": 1,
        "bad_header_line": 1,
        "invalid_utf8": 1,
    }
    assert len([r for r in caplog.records if "malformed AMI input" in r.message]) == 3


@pytest.mark.parametrize("name", list_traces())
def test_every_trace_reads_byte_for_byte_at_random_boundaries(name):
    records = read_jsonl_records(TRACES_DIR / f"{name}.jsonl")
    data = (TRACES_DIR / f"{name}.ami").read_bytes()
    assert "".join(r.raw for r in records).encode() == data
    rng = random.Random(name)
    cuts = sorted({0, len(data), *(rng.randrange(len(data)) for _ in range(len(data) // 40))})
    p = FrameParser()
    events = feed_all(p, [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)])
    assert [e.raw for e in events] == [r.raw for r in records]
    assert p.stats.malformed == 0
    assert p.pending == b""


def test_truncated_ami_file_yields_complete_frames_and_counts_the_cut(tmp_path):
    data = (TRACES_DIR / "busy.ami").read_bytes()
    cut = data.rindex(b"\r\n\r\n", 0, len(data) - 10) + 4 + 25  # 25 bytes into the last frame
    path = tmp_path / "cut.ami"
    path.write_bytes(data[:cut])
    parser = FrameParser(clock=lambda: 0.0)
    events = list(read_ami(path, parser=parser, chunk_size=333))
    records = read_jsonl_records(TRACES_DIR / "busy.jsonl")
    assert [e.raw for e in events] == [r.raw for r in records[:-1]]
    assert parser.stats.errors_by_kind == {"truncated_frame": 1}


def test_truncated_jsonl_file_keeps_what_came_before(tmp_path, caplog):
    lines = (TRACES_DIR / "busy.jsonl").read_text(encoding="utf-8").splitlines()
    unfinished = json.dumps({"t": 9.9, "raw": "Event: Hangup\r\nUniqueid: 1.2\r\n"})
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join([*lines[:-1], unfinished, lines[-1][:30]]), encoding="utf-8")
    parser = FrameParser()
    with caplog.at_level(logging.WARNING):
        events = list(read_jsonl(path, parser=parser))
    assert [e.raw for e in events[:-1]] == [json.loads(x)["raw"] for x in lines[:-1]]
    assert events[-1].name == "Hangup"  # parsed as is, but counted
    assert parser.stats.errors_by_kind == {"truncated_frame": 1}
    assert any("unreadable trace record" in r.message for r in caplog.records)
