"""Score the tagger on the labelled dev set with the README's scorer and hold it to the bars."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from callcenter.speech.tagger import TAGS, tag_text

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "tests" / "fixtures" / "outcomes" / "dev.jsonl"
OWN = ROOT / "tests" / "fixtures" / "outcomes" / "own.jsonl"


def load_scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_tags", ROOT / "scripts" / "score_tags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scorer() -> ModuleType:
    return load_scorer()


def predict(path: Path) -> dict[str, set[str]]:
    calls = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {c["id"]: set(tag_text(c["text"])) for c in calls}


def test_scorer_uses_the_same_twelve_tags(scorer):
    assert tuple(scorer.TAGS) == TAGS


@pytest.mark.parametrize("path", [DEV, OWN], ids=["dev", "own"])
def test_tagger_meets_the_bars(scorer, path):
    report = io.StringIO()
    result = scorer.score(scorer.load(path), predict(path), out=report)
    assert result.micro_f1 >= 0.92, report.getvalue()
    assert result.macro_f1 >= 0.85, report.getvalue()
    assert result.exact_match >= 0.80, report.getvalue()


def test_scorer_counts_missing_calls_as_empty_and_rejects_unknown_tags(scorer, tmp_path):
    gold = {"a": {"booked"}, "b": set()}
    result = scorer.score(gold, {"b": set()}, out=io.StringIO())
    assert result.exact_match == 0.5 and result.micro_f1 == 0.0
    with pytest.raises(ValueError, match="unknown tags"):
        scorer.score(gold, {"a": {"bookd"}}, out=io.StringIO())


def test_scorer_command_line_runs_on_prediction_files(scorer, tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(
        "".join(json.dumps({"id": i, "tags": sorted(t)}) + "\n" for i, t in predict(DEV).items()),
        encoding="utf-8",
    )
    assert scorer.main([str(DEV), str(pred)]) == 0
    assert "micro-F1=" in capsys.readouterr().out
    assert scorer.main(["--run", str(DEV)]) == 0
