"""The playbook: the right script per situation, consent-filtered, filled in; files validated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callcenter.playbook import (
    OBJECTION_KEYS,
    SCRIPTS_DIR,
    SITUATION_KINDS,
    PlaybookInvalid,
    Situation,
    UnknownSituation,
    load_playbook,
    select_script,
    situation_for,
)


@pytest.fixture(scope="module")
def playbook():
    return load_playbook()


def card(**overrides):
    base = {
        "phone": "+79039556279",
        "raw_caller": "89039556279",
        "known": True,
        "patient": {
            "id": 7,
            "full_name": "Иванова Мария Петровна",
            "birth_date": "1985-03-14",
            "doctor": "Петров Сергей Иванович",
            "insurance": None,
        },
        "last_visit": {"date": "2026-04-02", "doctor": "Петров Сергей Иванович", "service": "—"},
        "notes": [],
        "segments": [],
        "consent": {"pd": True, "marketing": True, "do_not_call": False},
        "open_tasks": [],
        "recent_calls": [],
        "months_since_visit": 7,
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("call_kind", "overrides", "script_id"),
    [
        ("inbound", {}, "inbound_known"),
        ("inbound", {"known": False, "patient": None, "last_visit": None}, "inbound_unknown"),
        ("callback_missed", {}, "callback_missed"),
        ("missed_call", {}, "callback_missed"),
        ("callback_abandoned", {}, "callback_abandoned"),
        ("abandoned_call", {}, "callback_abandoned"),
        ("sleeping_care", {"segments": ["sleeping"]}, "sleeping_care"),
        ("sleeping", {"segments": ["sleeping"]}, "sleeping_care"),
        ("nps_followup", {}, "nps_followup"),
        ("care_after_treatment", {}, "care_after_treatment"),
        ("no_show", {}, "no_show"),
        ("dms_reminder", {"segments": ["dms"]}, "dms_reminder"),
    ],
)
def test_each_situation_picks_its_script(playbook, call_kind, overrides, script_id):
    situation = situation_for(card=card(**overrides), call_kind=call_kind)
    assert select_script(situation, playbook=playbook).id == script_id


def test_every_situation_kind_has_a_script_with_lines(playbook):
    for kind in SITUATION_KINDS:
        suggested = select_script(Situation(kind=kind), playbook=playbook)
        assert suggested.lines and all(line.strip() for line in suggested.lines)


def test_marketing_lines_are_never_offered_without_marketing_consent(playbook):
    marketing = [
        line.text for script in playbook.scripts.values() for line in script.lines if line.marketing
    ] + [a.text for o in playbook.objections for a in o.answers if a.marketing]
    assert marketing, "the shipped playbook has offers to filter"
    for consent in (
        {"pd": True, "marketing": False, "do_not_call": False},
        {"pd": True, "marketing": True, "do_not_call": True},
        {},
    ):
        for kind in SITUATION_KINDS:
            situation = situation_for(
                card=card(consent=consent, segments=["sleeping", "dms", "dropped"]),
                call_kind=kind,
            )
            shown = select_script(situation, playbook=playbook).to_dict()
            said = " ".join(shown["lines"] + [o["answer"] for o in shown["objections"]])
            assert "скидк" not in said and "10 %" not in said
            assert not any(text.split("—")[0][:40] in said for text in marketing)


def test_price_answer_is_the_ten_percent_offer_with_consent(playbook):
    situation = situation_for(card=card(), call_kind="no_show")
    price = select_script(situation, playbook=playbook).objections[0]
    assert (price.key, price.title) == ("price_objection", "Дорого")
    assert "10 %" in price.answer


def test_price_answer_without_consent_explains_instalments_without_an_offer(playbook):
    situation = situation_for(
        card=card(consent={"pd": True, "marketing": False, "do_not_call": False}),
        call_kind="no_show",
    )
    price = select_script(situation, playbook=playbook).objections[0]
    assert price.key == "price_objection"
    assert "частями" in price.answer and "10 %" not in price.answer


def test_objections_come_in_order_each_with_a_shortcut(playbook):
    suggested = select_script(Situation(kind="inbound_known"), playbook=playbook)
    objections = suggested.to_dict()["objections"]
    assert [o["key"] for o in objections] == list(OBJECTION_KEYS)
    assert [o["title"] for o in objections] == ["Дорого", "Нет времени", "Боюсь", "Подумаю"]
    shortcuts = [o["shortcut"] for o in objections]
    assert all(shortcuts) and len(set(shortcuts)) == 4


def test_marketing_line_is_offered_with_consent(playbook):
    situation = situation_for(card=card(segments=["sleeping"]), call_kind="sleeping_care")
    lines = select_script(situation, playbook=playbook).lines
    assert any("скидка" in line for line in lines)


def test_placeholders_are_filled_from_the_card(playbook):
    situation = situation_for(
        card=card(segments=["sleeping"]), call_kind="sleeping_care", clinic="Улыбка"
    )
    said = "\n".join(select_script(situation, playbook=playbook).lines)
    assert "Здравствуйте, Мария Петровна!" in said
    assert "7 месяцев назад" in said
    assert "Сергей Иванович" in said
    assert "«Улыбка»" in said
    assert "{" not in said and "}" not in said


def test_missing_patient_name_gives_a_neutral_greeting(playbook):
    for patient in (None, {"full_name": None}, {"full_name": "Иванова"}):
        situation = situation_for(
            card=card(patient=patient, last_visit=None, months_since_visit=None),
            call_kind="sleeping_care",
        )
        lines = select_script(situation, playbook=playbook).lines
        assert lines[0] == "Здравствуйте!"
        assert lines[1] == "Это клиника, где вы лечились. Удобно сейчас говорить пару минут?"
        assert not any("{" in line or "None" in line for line in lines)


def test_to_dict_is_the_panel_shape(playbook):
    payload = select_script(Situation(kind="no_show"), playbook=playbook).to_dict()
    assert set(payload) == {"id", "title", "lines", "objections"}
    assert all(set(o) >= {"key", "title", "answer"} for o in payload["objections"])


def test_segment_lines_only_for_that_segment(playbook):
    plain = select_script(situation_for(card=card(), call_kind="inbound"), playbook=playbook)
    dms = select_script(
        situation_for(card=card(segments=["dms"]), call_kind="inbound"), playbook=playbook
    )
    assert not any("ДМС" in line for line in plain.lines)
    assert any("ДМС" in line for line in dms.lines)


def test_unknown_call_kind_is_refused():
    with pytest.raises(UnknownSituation, match="birthday_greeting"):
        situation_for(card=card(), call_kind="birthday_greeting")
    with pytest.raises(UnknownSituation):
        Situation(kind="birthday_greeting")


def copy_scripts(tmp_path: Path) -> Path:
    target = tmp_path / "scripts"
    shutil.copytree(SCRIPTS_DIR, target)
    return target


def test_broken_placeholder_is_rejected_at_load_with_file_and_line(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "no_show.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    number = next(i for i, text in enumerate(lines, start=1) if "Здравствуйте, {name}!" in text)
    lines[number - 1] = lines[number - 1].replace("{name}", "{name")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(scripts)
    assert caught.value.problems == (
        f"{path}:{number}: broken placeholder: unmatched '{{' in 'Здравствуйте, {{name!'",
    )


def test_unknown_placeholder_is_rejected_at_load_with_file_and_line(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "objections.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Понимаю, времени", "{patient}, понимаю, времени"), "utf-8")
    number = next(
        i
        for i, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if "{patient}" in line
    )
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(scripts)
    assert any(
        p.startswith(f"{path}:{number}: unknown placeholder '{{patient}}'")
        for p in (caught.value.problems)
    )


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('situation = "no_show"', 'situation = "birthday"', "unknown situation 'birthday'"),
        ('title = "Не пришли на приём"\n', "", "missing required field 'title'"),
        ('text = "Спасибо! Ждём', 'marketting = true\ntext = "Спасибо! Ждём', "unknown field"),
        ('fallback = "Здравствуйте!"\n', "", "needs a fallback"),
        ('id = "no_show"', 'id = "noshow"', "differs from the script's name"),
        ("[[lines]]", "[[lines]", "not valid TOML"),
    ],
)
def test_malformed_script_is_rejected_naming_file_and_line(tmp_path, replace, by, message):
    scripts = copy_scripts(tmp_path)
    path = scripts / "no_show.toml"
    text = path.read_text(encoding="utf-8")
    assert replace in text
    path.write_text(text.replace(replace, by, 1), encoding="utf-8")
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(scripts)
    (problem,) = [p for p in caught.value.problems if message in p]
    assert problem.startswith(f"{path}:")
    assert problem.split(":")[1].isdigit()


def test_situation_without_a_script_is_rejected(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "dms_reminder.toml").unlink()
    with pytest.raises(PlaybookInvalid, match="no script for situation 'dms_reminder'"):
        load_playbook(scripts)


def test_objection_with_only_marketing_answers_is_rejected(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "objections.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            '[[objections.answers]]\ntext = "Понимаю, времени',
            '[[objections.answers]]\nmarketing = true\ntext = "Понимаю, времени',
        ),
        encoding="utf-8",
    )
    with pytest.raises(PlaybookInvalid, match="every answer is marketing or limited to segments"):
        load_playbook(scripts)


def test_playbook_package_is_pure():
    from tests.unit.test_import_rules import IO_LAYERS, IO_LIBRARIES, PKG, runtime_imports

    for path in sorted((PKG / "playbook").rglob("*.py")):
        bad = [m for m in runtime_imports(path) if m.startswith(IO_LAYERS + IO_LIBRARIES)]
        assert not bad, f"{path.name} imports {bad}"


def test_doctor_and_name_formats_from_the_card(playbook):
    situation = situation_for(
        card=card(
            patient={"full_name": "Мария Петровна Иванова", "doctor": "Петров С. И."},
            last_visit={"date": "2026-04-02", "doctor": None, "service": "—"},
            months_since_visit=11,
        ),
        call_kind="sleeping_care",
    )
    assert (situation.name, situation.doctor) == ("Мария Петровна", "Петров С. И.")
    said = "\n".join(select_script(situation, playbook=playbook).lines)
    assert "11 месяцев назад" in said and "Петров С. И. советует" in said
