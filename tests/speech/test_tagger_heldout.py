"""Held-out calls the rules were not written from, and sentences probing each general rule.

``tests/fixtures/tagger/heldout*.jsonl`` were written from the definitions in
``../shared/outcomes/README.md``, each batch before it was first scored (``heldout.jsonl``
before the rules were even read). The score a batch got on first sight is the honest estimate
on unseen calls; general fixes suggested by its misses were made afterwards, so today every
batch scores higher. The bars sit 0.05 below today's figures so that a regression is caught;
the first-sight figures are kept next to them for the record. No batch shares text with dev.jsonl.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from callcenter.speech.tagger import TAGS, tag_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tagger"
DEV = ROOT / "tests" / "fixtures" / "outcomes" / "dev.jsonl"

# file -> (micro-F1, macro-F1, exact match) bars. First-sight scores, before the fixes each
# batch suggested (micro / macro / exact): heldout 0.892 / 0.896 / 0.831 (the rules as they
# were), heldout2 0.926 / 0.921 / 0.875, heldout3 0.887 / 0.866 / 0.828,
# heldout4 0.804 / 0.797 / 0.703, heldout5 0.857 / 0.849 / 0.781,
# heldout6 0.840 / 0.844 / 0.734, heldout7 0.826 / 0.829 / 0.698,
# heldout8 0.852 / 0.867 / 0.759, heldout9 0.873 / 0.849 / 0.750 (two gold labels of heldout9
# were corrected against the README after scoring; the figure uses the corrected labels),
# heldout10 0.868 / 0.861 / 0.786 (one label corrected likewise: a son treated locally),
# heldout11 0.845 / 0.815 / 0.722 (one label corrected: a reminder, not a booking),
# heldout12 0.889 / 0.888 / 0.824 - never tuned on: its bars sit 0.05 below that figure.
BARS = {
    "heldout.jsonl": (0.94, 0.94, 0.94),
    "heldout2.jsonl": (0.95, 0.95, 0.93),
    "heldout3.jsonl": (0.95, 0.95, 0.93),
    "heldout4.jsonl": (0.94, 0.93, 0.93),
    "heldout5.jsonl": (0.94, 0.94, 0.93),
    "heldout6.jsonl": (0.94, 0.94, 0.93),
    "heldout7.jsonl": (0.95, 0.95, 0.93),
    "heldout8.jsonl": (0.95, 0.95, 0.93),
    "heldout9.jsonl": (0.95, 0.95, 0.93),
    "heldout10.jsonl": (0.93, 0.92, 0.93),
    "heldout11.jsonl": (0.94, 0.94, 0.93),
    "heldout12.jsonl": (0.84, 0.84, 0.77),
}
FILES = [FIXTURES / name for name in BARS]


def load_scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_tags", ROOT / "scripts" / "score_tags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def calls(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_heldout_file_has_bars():
    assert sorted(p.name for p in FIXTURES.glob("heldout*.jsonl")) == sorted(BARS)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_heldout_file_is_well_formed(path):
    rows = calls(path)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert len(rows) >= (150 if path.name == "heldout.jsonl" else 50)
    for row in rows:
        assert set(row["tags"]) <= set(TAGS), row["id"]
        assert len(row["tags"]) == len(set(row["tags"])), row["id"]
        assert re.fullmatch(r"[а-я ]+", row["text"]), row["id"]  # recognizer style
    # every tag occurs, and calls without any tag are there too
    assert {t for r in rows for t in r["tags"]} == set(TAGS)
    assert any(not r["tags"] for r in rows)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_heldout_shares_no_text_with_dev(path):
    dev = {" ".join(c["text"].split()) for c in calls(DEV)}
    assert not [c["id"] for c in calls(path) if " ".join(c["text"].split()) in dev]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_tagger_meets_the_heldout_bars(path):
    scorer = load_scorer()
    predicted = {c["id"]: set(tag_text(c["text"])) for c in calls(path)}
    report = io.StringIO()
    result = scorer.score(scorer.load(path), predicted, out=report)
    micro, macro, exact = BARS[path.name]
    assert result.micro_f1 >= micro, report.getvalue()
    assert result.macro_f1 >= macro, report.getvalue()
    assert result.exact_match >= exact, report.getvalue()


# --- sentences of our own, one group per general rule of the README ------------------------

RULE1_WHOSE_WORDS = [
    # the administrator recalls an objection, the patient books: only booked
    (
        "здравствуйте мы помним вы говорили что вам дорого поэтому предлагаем скидку "
        "спасибо запишите на вторник в десять записала",
        {"booked"},
    ),
    ("здравствуйте многие пациенты боятся удаления но у нас все под наркозом понятно", set()),
    ("я уточню у доктора расписание и перезвоню вам хорошо ладно жду", set()),
    ("хорошо администратор вам перезвонит завтра до обеда ладно", set()),
    ("не бойтесь у нас все безболезненно хорошо", set()),
    # someone speaking for the patient counts
    ("мама говорит что дочка очень боится зубного врача", {"fear"}),
    ("это муж анны она просила передать что ей сейчас некогда аврал на работе", {"no_time"}),
    ("ее нет дома это муж перезвоните ей вечером после семи", {"callback_requested"}),
    # booked needs both sides: a request alone, or a refused slot, is not a booking
    ("запишите меня на пятницу в десять к сожалению на пятницу все занято", set()),
    ("давайте на понедельник в девять хорошо записала вас", {"booked"}),
    (
        "есть окно в пятницу в одиннадцать сорок вас устроит да вполне тогда жду вас в пятницу",
        {"booked"},
    ),
    # a time for a call is not a slot for a visit
    (
        "вам удобно говорить нет а когда вам перезвонить давайте завтра в одиннадцать хорошо",
        {"callback_requested"},
    ),
]

RULE2_NEGATION_AND_PAST = [
    ("нет нет цена нормальная не дорого вполне", set()),
    ("совсем не страшно было спасибо", set()),
    ("я думала будет страшно а оказалось вообще не больно", set()),
    ("раньше я жутко боялась а у вашего доктора совсем перестала", set()),
    ("никаких претензий все отлично", set()),
    ("днем не звоните я сплю после смены", set()),
    ("звоните в любое время я не против", set()),
    ("что вам не понравилось нет нет все хорошо было я ошибочно поставила единицу", set()),
    # "не очень" answering "how was it" is a complaint, not a negation
    ("как прошел прием честно не очень ждала в коридоре почти час", {"dissatisfied"}),
]

RULE3_OTHER_MEANINGS = [
    ("дорогая ольга петровна напоминаем вам о приеме", set()),
    ("мы живем на садовой дороге", set()),
    ("страшно благодарна вашему доктору", set()),
    ("думаю что в четверг будет удобнее", set()),
    ("я думала вы до восьми работаете", set()),
    ("боюсь что в субботу мы будем на даче", set()),
    ("боюсь ошибиться но по моему прием был в среду", set()),
    ("я боюсь выходить из дома на улице гололед", set()),
    ("я трусиха ужасная", {"fear"}),
    # a certificate for a trip abroad is paperwork, not an absence
    ("нужна справка для страховки в поездку за границу", set()),
]

RULE4_WRONG_NUMBER = [
    ("вы ошиблись номером я не елена и никакой страховки дмс у меня нет", {"wrong_number"}),
    ("здесь нет такого человека у вас дорого наверное а мне не надо", {"wrong_number"}),
    ("вы не туда попали и не звоните больше", {"wrong_number", "do_not_call"}),
    ("нет я у вас не лечилась это какая то другая иванова наверное", {"wrong_number"}),
    ("это рабочий телефон организации", {"wrong_number"}),
    # a relative answering is not a wrong number
    ("это моя жена она сейчас на работе", set()),
]

RULE5_OPEN_FORMS = [
    ("ну у вас и расценки конечно я в шоке", {"price_objection"}),
    ("за такие деньги я лучше в поликлинику схожу", {"price_objection"}),
    ("нет столько я за чистку платить не готова это перебор", {"price_objection"}),
    ("у меня дети маленькие не на кого оставить", {"no_time"}),
    ("запись к терапевту а я в командировке до двадцатого", {"no_time"}),
    ("забудьте мой номер", {"do_not_call"}),
    ("я против ваших звонков", {"do_not_call"}),
    ("я лечусь у частного врача", {"went_elsewhere"}),
    ("я уже договорилась в областной больнице", {"went_elsewhere"}),
    ("в другое место пойду наверное", set()),
    ("уже десять дней жду анализы сколько можно", {"dissatisfied"}),
    ("коронку переделывали три раза", {"dissatisfied"}),
    ("мы через месяц переезжаем в новосибирск квартиру уже продали", {"moved_away"}),
    ("у меня сессия экзамены потом посмотрим", {"no_time", "thinking"}),
    ("ну я посмотрю свой график и перезвоню", {"thinking"}),
    ("зафиксировала вас на двадцать пятое в десять утра спасибо", {"booked"}),
    ("записываю вас в лист ожидания", set()),
]


# one short paraphrase per line, not taken from any labelled file: the vocabulary is open-ended
PARAPHRASES = [
    ("дерете втридорога", {"price_objection"}),
    ("пенсия не позволяет", {"price_objection"}),
    ("сейчас туго с деньгами", {"price_objection"}),
    ("откуда у пенсионерки такие деньги", {"price_objection"}),
    ("звякните мне в понедельник", {"callback_requested"}),
    ("попробуйте ей вечером перезвонить", {"callback_requested"}),
    ("за бабушкой ухаживаю лежачей", {"no_time"}),
    ("у меня вахта до весны", {"no_time"}),
    ("меня бросает в дрожь от бормашины", {"fear"}),
    ("меня от одной мысли о трубке тошнит", {"fear"}),
    ("перешла к доктору который от вас ушел", {"went_elsewhere"}),
    ("я теперь в медси обслуживаюсь", {"went_elsewhere"}),
    ("мы сделали в турции", {"went_elsewhere"}),
    ("пломба развалилась", {"dissatisfied"}),
    ("не дождалась врача и ушла", {"dissatisfied"}),
    ("в регистратуре меня полчаса мариновали", {"dissatisfied"}),
    ("номер у меня новый я его недавно взяла", {"wrong_number"}),
    ("вы меня с кем то путаете", {"wrong_number"}),
    ("прекратите мне звонить", {"do_not_call"}),
    ("я отказываюсь от рассылки", {"do_not_call"}),
    ("я живу теперь в питере", {"moved_away"}),
    ("мы уехали во владивосток жить", {"moved_away"}),
    ("по добровольной страховке", {"insurance"}),
    ("я еще поразмыслю", {"thinking"}),
    ("пока перевариваю информацию", {"thinking"}),
    ("хочу послушать мнение еще одного врача", {"thinking"}),
    # and their look-alikes that carry no tag
    ("ну и цены у вас хорошие приятно удивлена", set()),
    ("на дорогах гололед ехать страшно", set()),
    ("в прошлый раз было дорого а сейчас нормально", set()),
    ("переезд офиса на новое место", set()),
    ("у меня по дмс только их клиники", {"insurance"}),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(text, tags, id=f"{group}-{i}")
        for group, cases in (
            ("rule1", RULE1_WHOSE_WORDS),
            ("rule2", RULE2_NEGATION_AND_PAST),
            ("rule3", RULE3_OTHER_MEANINGS),
            ("rule4", RULE4_WRONG_NUMBER),
            ("rule5", RULE5_OPEN_FORMS),
            ("paraphrase", PARAPHRASES),
        )
        for i, (text, tags) in enumerate(cases)
    ],
)
def test_general_rules_on_our_own_sentences(text, expected):
    assert set(tag_text(text)) == expected
