#!/usr/bin/env python
"""Benchmark: outcome-tagger throughput on one core, in transcripts per second.

Tags the dev set's transcripts over and over (the word cache warm, as in a long-running
worker) and prints transcripts/s; the target is at least 2,000/s. Also prints the cold cost:
loading the rules and the first pass over the texts, which fills the per-word caches.

    .venv/bin/python scripts/bench_tagger.py [--rounds N] [--file GOLD.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's callcenter importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.speech.tagger import Tagger  # noqa: E402

DEV = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "outcomes" / "dev.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the texts")
    parser.add_argument("--file", type=Path, default=DEV, help="JSON lines with a text field")
    args = parser.parse_args(argv)
    texts = [json.loads(line)["text"] for line in args.file.read_text("utf-8").splitlines()]
    words = sum(len(t.split()) for t in texts)

    start = time.perf_counter()
    tagger = Tagger()
    loaded = time.perf_counter()
    for text in texts:
        tagger.tag(text)
    warm = time.perf_counter()
    print(
        f"load rules {1000 * (loaded - start):.0f} ms; first pass over {len(texts)} transcripts "
        f"{1000 * (warm - loaded):.0f} ms (fills the word caches)"
    )

    # CPU time of this process is the figure for one core; wall time is shown too, as it
    # includes whatever else the machine is doing.
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.rounds):
        for text in texts:
            tagger.tag(text)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = args.rounds * len(texts)
    print(
        f"{n} transcripts ({words / len(texts):.0f} words each on average): "
        f"{n / cpu:,.0f} transcripts/s on one core ({n * words / len(texts) / cpu:,.0f} words/s; "
        f"{n / wall:,.0f}/s by wall clock), target ≥ 2,000 transcripts/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
