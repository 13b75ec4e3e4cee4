#!/usr/bin/env python
"""Benchmark: stock panoramisk parsing alone vs our whole path (bytes → events → tracker).

Replays the shared `burst` trace (2,953 messages) many times in 4 KiB chunks and prints
messages per second for:
  (a) panoramisk 1.4's own AMIProtocol.data_received (parsing only, callbacks do nothing);
  (b) our protocol's data_received → AmiEvent → CallTracker.feed → effects;
and their ratio (b / a). The issue's target is a ratio of at least 1.5.

    .venv/bin/python scripts/bench_tracker.py [--rounds N] [--chunk BYTES]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami.protocol import AmiProtocol
from callcenter.ami.traces import trace_path
from callcenter.calls.tracker import CallTracker


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class _NullFactory:
    """Stands in for panoramisk's Manager: dispatch does nothing."""

    forgetable_actions = ("ping", "login")
    awaiting_actions: list[object] = []
    save_stream = None

    def dispatch(self, message: object) -> None:
        pass

    def connection_lost(self, exc: object) -> None:
        pass


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def run_stock(chunks: list[bytes]) -> int:
    proto = AMIProtocol()
    proto.connection_made(_NullTransport())
    proto.factory = _NullFactory()
    proto.encoding = "utf8"
    count = 0
    original = proto.handle_message

    def counting(message: object) -> None:
        nonlocal count
        count += 1
        original(message)

    proto.handle_message = counting  # type: ignore[method-assign]
    for c in chunks:
        proto.data_received(c)
    return count


def run_ours(chunks: list[bytes]) -> int:
    tracker = CallTracker()
    count = 0
    effects = 0

    def sink(event: object) -> None:
        nonlocal count, effects
        count += 1
        effects += len(tracker.feed(event))  # type: ignore[arg-type]

    proto = AmiProtocol(sink=sink)
    proto.connection_made(_NullTransport())  # type: ignore[arg-type]
    proto.factory = _NullFactory()
    for c in chunks:
        proto.data_received(c)
    return count


def measure(fn: Callable[[list[bytes]], int], chunks: list[bytes], rounds: int) -> float:
    fn(chunks)  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        n = 0
        for _ in range(rounds):
            n += fn(chunks)
        elapsed = time.perf_counter() - start
        best = max(best, n / elapsed)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="trace replays per measurement")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per data_received call")
    args = ap.parse_args()
    data = trace_path("burst", ".ami").read_bytes()
    chunks = chunks_of(data, args.chunk)
    stock = measure(run_stock, chunks, args.rounds)
    ours = measure(run_ours, chunks, args.rounds)
    print(f"trace: burst ({len(data):,} bytes), {args.chunk}-byte chunks, {args.rounds} rounds")
    print(f"(a) stock panoramisk parsing alone:        {stock:10,.0f} messages/s")
    print(f"(b) ours, bytes → events → tracker:        {ours:10,.0f} messages/s")
    print(f"ratio (b)/(a): {ours / stock:.2f}  (target ≥ 1.5)")


if __name__ == "__main__":
    main()
