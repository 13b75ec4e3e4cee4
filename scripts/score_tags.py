#!/usr/bin/env python
"""Score outcome tags against a gold file, as defined in ../shared/outcomes/README.md.

Two modes:

    python scripts/score_tags.py GOLD.jsonl PRED.jsonl   # the README's reference scorer
    python scripts/score_tags.py --run GOLD.jsonl        # tag GOLD's texts in-process first
        [--errors]                                       # …and list the calls it got wrong

Prints per-tag P/R/F1 with support, then micro-F1, macro-F1 and exact match.
Predictions missing for a call count as []; an unknown tag in the predictions is an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

if __package__ in (None, ""):  # run as a file: make the repository's callcenter importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.speech.tagger import TAGS  # noqa: E402  (after the sys.path line above)


@dataclass(frozen=True)
class Score:
    """Summary figures of one scoring run."""

    micro_f1: float
    macro_f1: float
    exact_match: float
    per_tag: dict[str, tuple[float, float, float, int]]  # tag → (P, R, F1, support)


def load(path: str | Path) -> dict[str, set[str]]:
    """Read a JSON-lines file of ``{"id", "tags"}`` into id → tag set."""
    with open(path, encoding="utf-8") as f:
        return {o["id"]: set(o["tags"]) for o in map(json.loads, f) if o}


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def score(
    gold: Mapping[str, set[str]], pred: Mapping[str, set[str]], *, out: TextIO | None = None
) -> Score:
    """Compare predictions with gold and print the report (the README's reference scorer).

    :raises ValueError: if the predictions contain a tag that is not one of the 12.
    """
    out = out if out is not None else sys.stdout
    unknown = set().union(*pred.values()) - set(TAGS) if pred else set()
    if unknown:
        raise ValueError(f"unknown tags in predictions: {sorted(unknown)}")
    totals, f1s, per_tag = [0, 0, 0], [], {}
    for t in TAGS:
        tp = sum(t in g and t in pred.get(i, set()) for i, g in gold.items())
        fp = sum(t not in g and t in pred.get(i, set()) for i, g in gold.items())
        fn = sum(t in g and t not in pred.get(i, set()) for i, g in gold.items())
        p, r = ratio(tp, tp + fp), ratio(tp, tp + fn)
        f1 = ratio(2 * p * r, p + r)
        f1s.append(f1)
        per_tag[t] = (p, r, f1, tp + fn)
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        print(f"{t:20s} P={p:.3f} R={r:.3f} F1={f1:.3f} support={tp + fn}", file=out)
    tp, fp, fn = totals
    p, r = ratio(tp, tp + fp), ratio(tp, tp + fn)
    result = Score(
        micro_f1=ratio(2 * p * r, p + r),
        macro_f1=sum(f1s) / len(f1s),
        exact_match=ratio(sum(pred.get(i, set()) == g for i, g in gold.items()), len(gold)),
        per_tag=per_tag,
    )
    print(
        f"micro-F1={result.micro_f1:.3f} macro-F1={result.macro_f1:.3f} "
        f"exact-match={result.exact_match:.3f}",
        file=out,
    )
    return result


def tag_gold_file(path: str | Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Run our tagger in-process over a gold file; return id → text and id → predicted tags."""
    from callcenter.speech.tagger import default_tagger

    tagger = default_tagger()
    texts: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                call = json.loads(line)
                texts[call["id"]] = call["text"]
    return texts, {i: set(tagger.tag(text)) for i, text in texts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", help="gold JSON lines with id and tags")
    parser.add_argument("pred", nargs="?", help="predicted JSON lines with id and tags")
    parser.add_argument("--run", action="store_true", help="tag the gold file's texts first")
    parser.add_argument("--errors", action="store_true", help="with --run: list wrong calls")
    args = parser.parse_args(argv)
    if args.run == bool(args.pred):
        parser.error("give either PRED or --run")
    gold = load(args.gold)
    if args.run:
        texts, pred = tag_gold_file(args.gold)
    else:
        texts, pred = {}, load(args.pred)
    try:
        score(gold, pred)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.errors:
        for call_id, tags in gold.items():
            got = pred.get(call_id, set())
            if got != tags:
                missed, extra = sorted(tags - got), sorted(got - tags)
                print(f"\n{call_id} missed={missed} extra={extra}\n  {texts.get(call_id, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
