"""The tagger's API, command-line function, rule files and pattern engine (not its vocabulary)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from callcenter.speech.tagger import (
    TAGS,
    RuleError,
    Tagger,
    default_tagger,
    run_tag_command,
    tag_text,
)

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "callcenter" / "speech" / "tag_rules"
DEV = ROOT / "tests" / "fixtures" / "outcomes" / "dev.jsonl"
README_TAGS = (
    "price_objection booked callback_requested no_time fear went_elsewhere dissatisfied "
    "wrong_number do_not_call moved_away insurance thinking"
).split()


# --- API ------------------------------------------------------------------------------


def test_tags_are_the_twelve_readme_tags_in_readme_order():
    assert TAGS == tuple(README_TAGS)


def test_tag_text_returns_a_frozenset_of_known_tags():
    tags = tag_text("алло здравствуйте ой дороговато для меня я подумаю")
    assert isinstance(tags, frozenset)
    assert tags == {"price_objection", "thinking"}


def test_tagger_instance_and_module_function_agree():
    text = "здравствуйте перезвоните мне завтра после обеда пожалуйста"
    assert Tagger().tag(text) == tag_text(text) == {"callback_requested"}


def test_default_tagger_is_loaded_once():
    assert default_tagger() is default_tagger()


def test_every_tag_has_rules():
    assert {rule.tag for rule in default_tagger().rules} == set(TAGS)


# --- bad input ------------------------------------------------------------------------


def test_empty_transcript_has_no_tags():
    assert tag_text("") == frozenset()
    assert tag_text("   \n\t ") == frozenset()


def test_transcript_in_latin_letters_has_no_tags_and_does_not_crash():
    assert tag_text("allo zdravstvuyte eto klinika dorogo perezvonite") == frozenset()


def test_transcript_of_punctuation_and_digits_only_has_no_tags():
    assert tag_text("... 123 ?!! 45-67") == frozenset()


def test_ten_thousand_word_transcript_is_tagged_without_crashing():
    # A whole day of calls glued together: every tag it finds must still be a real tag.
    lines = [json.loads(line)["text"] for line in DEV.read_text(encoding="utf-8").splitlines()]
    words: list[str] = []
    while len(words) < 10_000:
        for text in lines:
            words.extend(text.split())
    tags = tag_text(" ".join(words[:10_000]))
    assert tags <= set(TAGS)
    assert "wrong_number" in tags and tags <= {"wrong_number", "do_not_call"}  # rule 4 applies


def test_uppercase_and_yo_are_normalised():
    assert tag_text("НУ ЭТО ДОРОГОВАТО, Я ЕЩЁ ПОДУМАЮ") == {"price_objection", "thinking"}


def test_non_string_transcript_is_a_type_error():
    with pytest.raises(TypeError):
        tag_text(None)  # type: ignore[arg-type]


# --- command line ---------------------------------------------------------------------


def run(lines: list[str]) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_tag_command(io.StringIO("\n".join(lines) + "\n"), out, errfile=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_command_prints_one_line_per_call_with_sorted_tags_and_ignores_other_fields():
    call = {
        "id": "звонок-1",
        "text": "ой дороговато я подумаю",
        "tags": ["booked"],
        "note": "ignored",
        "extra": 1,
    }
    code, out, err = run([json.dumps(call, ensure_ascii=False)])
    assert code == 0 and err == ""
    assert out == [{"id": "звонок-1", "tags": ["price_objection", "thinking"]}]


def test_command_writes_non_ascii_ids_unescaped():
    out, err = io.StringIO(), io.StringIO()
    run_tag_command(io.StringIO('{"id": "вызов", "text": ""}\n'), out, errfile=err)
    assert out.getvalue() == '{"id": "вызов", "tags": []}\n'


def test_command_reports_bad_lines_on_stderr_and_goes_on():
    lines = [
        '{"id": "a", "text": "алло"}',
        "not json",
        '{"text": "нет id"}',
        '{"id": "c"}',
        '{"id": "d", "text": 42}',
        '["a", "list"]',
        "",
        '{"id": "e", "text": "наберите через час"}',
    ]
    code, out, err = run(lines)
    assert code == 1
    assert out == [{"id": "a", "tags": []}, {"id": "e", "tags": ["callback_requested"]}]
    reported = re.findall(r"^line (\d+)", err, flags=re.M)
    assert reported == ["2", "3", "4", "5", "6"]
    assert "no id" in err and "no text" in err and "not a string" in err and "'d'" in err


def test_command_returns_zero_on_empty_input():
    assert run([]) == (0, [], "")


def test_command_tags_the_dev_file_like_the_api():
    out, err = io.StringIO(), io.StringIO()
    with DEV.open(encoding="utf-8") as f:
        assert run_tag_command(f, out, errfile=err) == 0
    got = {o["id"]: set(o["tags"]) for o in map(json.loads, out.getvalue().splitlines())}
    texts = {o["id"]: o["text"] for o in map(json.loads, DEV.read_text("utf-8").splitlines())}
    assert got == {i: set(tag_text(t)) for i, t in texts.items()}


# --- rule files -----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9a-zа-я]+", text.lower().replace("ё", "е"))


def test_no_four_consecutive_dev_words_appear_in_any_rule_file():
    dev_grams = set()
    for line in DEV.read_text(encoding="utf-8").splitlines():
        words = _words(json.loads(line)["text"])
        dev_grams.update(zip(words, words[1:], words[2:], words[3:], strict=False))
    files = sorted(p for p in RULES_DIR.iterdir() if p.is_file())
    assert len(files) >= 13
    leaks = []
    for path in files:
        words = _words(path.read_text(encoding="utf-8"))
        for gram in zip(words, words[1:], words[2:], words[3:], strict=False):
            if gram in dev_grams:
                leaks.append(f"{path.name}: {' '.join(gram)}")
    assert leaks == []


def test_each_tag_has_its_own_rule_file():
    assert {p.stem for p in RULES_DIR.glob("*.toml")} == set(TAGS) | {"common"}


# --- pattern engine, on small rule directories ----------------------------------------


def make_rules(tmp_path: Path, rules: str, common: str = "") -> Tagger:
    (tmp_path / "common.toml").write_text(common, encoding="utf-8")
    (tmp_path / "fear.toml").write_text('tag = "fear"\n' + rules, encoding="utf-8")
    return Tagger(rules_dir=tmp_path)


def test_plain_word_matches_any_inflection(tmp_path):
    tagger = make_rules(tmp_path, '[[rule]]\npatterns = ["бояться"]\n')
    assert tagger.tag("он боится") == {"fear"}
    assert tagger.tag("мы боялись") == {"fear"}


def test_gap_and_optional_elements(tmp_path):
    tagger = make_rules(tmp_path, '[[rule]]\npatterns = ["страшно очень? ..1 идти"]\n')
    assert tagger.tag("страшно идти") == {"fear"}
    assert tagger.tag("страшно очень идти") == {"fear"}
    assert tagger.tag("страшно мне идти") == {"fear"}  # optional skipped, then a gap of 1
    assert tagger.tag("страшно к вам идти") == frozenset()  # a gap of 2


def test_negative_element_matches_any_other_word(tmp_path):
    tagger = make_rules(tmp_path, '[[rule]]\npatterns = ["страшно !ну идти"]\n')
    assert tagger.tag("страшно мне идти") == {"fear"}
    assert tagger.tag("страшно ну идти") == frozenset()


def test_grammeme_constraint_applies_to_every_alternative(tmp_path):
    tagger = make_rules(tmp_path, '[[rule]]\npatterns = ["позвонить|набрать@impr,excl"]\n')
    assert tagger.tag("наберите") == {"fear"}
    assert tagger.tag("позвоните") == {"fear"}
    assert tagger.tag("позвоню") == frozenset()


def test_blocker_overlap_negation_and_admin_scope(tmp_path):
    common = (
        '[negation]\nnegators = ["не"]\ntransparent = ["уже"]\n'
        '[[admin_scope]]\nextend = 2\npatterns = ["вы говорили"]\n'
    )
    rules = '[[rule]]\npatterns = ["страшно"]\nblockers = ["страшно неудобно"]\n'
    tagger = make_rules(tmp_path, rules, common)
    assert tagger.tag("мне страшно") == {"fear"}
    assert tagger.tag("уже не страшно") == frozenset()
    assert tagger.tag("страшно неудобно") == frozenset()
    assert tagger.tag("вы говорили что страшно") == frozenset()
    assert any("negated" in line for line in tagger.explain("не страшно"))


@pytest.mark.parametrize(
    "pattern",
    ["..2 страшно", "страшно ..2", "* страшно", "страшно? боюсь", "$nope", "страшно@", "!страшно"],
)
def test_malformed_pattern_is_a_rule_error(tmp_path, pattern):
    with pytest.raises(RuleError):
        make_rules(tmp_path, f'[[rule]]\npatterns = ["{pattern}"]\n')


@pytest.mark.parametrize(
    "rule",
    [
        'patterns = ["дорого@NOSUCH"]',
        'patterns = ["дoрого"]',  # Latin "o" inside a Cyrillic word
        'patterns = ["бояться|impr"]',  # a grammeme without @
        'patterns = ["страшно"]\nspeaker = "robot"',
        'patterns = ["страшно"]\nunless_tags = ["no_such_tag"]',
        'patterns = ["страшно"]\ncolour = "red"',
        "patterns = []",
    ],
)
def test_malformed_rule_is_a_rule_error(tmp_path, rule):
    with pytest.raises(RuleError):
        make_rules(tmp_path, f"[[rule]]\n{rule}\n")


def test_unknown_tag_file_and_missing_common_file_are_rule_errors(tmp_path):
    (tmp_path / "x.toml").write_text('tag = "nope"\n', encoding="utf-8")
    with pytest.raises(RuleError, match="common.toml"):
        Tagger(rules_dir=tmp_path)
    (tmp_path / "common.toml").write_text("", encoding="utf-8")
    with pytest.raises(RuleError, match="unknown or missing tag"):
        Tagger(rules_dir=tmp_path)


def test_double_at_checks_the_best_reading_only(tmp_path):
    tagger = make_rules(tmp_path, '[[rule]]\npatterns = ["я не *@@Name/Surn"]\n')
    assert tagger.tag("я не ирина") == {"fear"}
    assert tagger.tag("я не по этому поводу") == frozenset()  # "по" is a name only at a stretch
    loose = make_rules(tmp_path, '[[rule]]\npatterns = ["я не *@Name/Surn"]\n')
    assert loose.tag("я не по этому поводу") == {"fear"}
