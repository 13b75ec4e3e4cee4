"""Stored script versions: validated before saving, numbered per script, overlaid on the files."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.playbook import SCRIPTS_DIR, PlaybookInvalid, Situation, select_script
from callcenter.store.models_playbook import ScriptVersion
from callcenter.store.playbook import (
    current_playbook,
    get_version,
    list_versions,
    save_script_version,
)

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def shipped(script_id: str) -> str:
    return (SCRIPTS_DIR / f"{script_id}.toml").read_text(encoding="utf-8")


def test_saved_version_replaces_the_file_in_the_current_playbook(session):
    text = shipped("no_show").replace(
        "Спасибо! Ждём вас, всего доброго.", "Спасибо! Будем рады вас видеть."
    )
    version = save_script_version(
        session, script_id="no_show", text=text, author="Ольга", comment="тёплое прощание", now=NOW
    )
    session.commit()
    assert version == 1
    lines = select_script(Situation(kind="no_show"), playbook=current_playbook(session)).lines
    assert lines[-1] == "Спасибо! Будем рады вас видеть."


def test_versions_are_numbered_per_script_and_listed_newest_first(session):
    for n in range(3):
        save_script_version(
            session,
            script_id="no_show",
            text=shipped("no_show") + f"\n# правка {n}\n",
            author="Ольга",
            comment=f"правка {n}",
            now=NOW + timedelta(minutes=n),
        )
    assert (
        save_script_version(
            session,
            script_id="nps_followup",
            text=shipped("nps_followup"),
            author="Ирина",
            comment="",
            now=NOW,
        )
        == 1
    )
    session.commit()
    session.expire_all()
    history = list_versions(session, script_id="no_show")
    assert [(v.version, v.comment) for v in history] == [
        (3, "правка 2"),
        (2, "правка 1"),
        (1, "правка 0"),
    ]
    assert history[0].created_at == NOW + timedelta(minutes=2)
    assert history[0].created_at.tzinfo is UTC
    assert history[0].author == "Ольга"
    assert {v.script_id for v in list_versions(session)} == {"no_show", "nps_followup"}
    assert get_version(session, script_id="no_show", version=2).comment == "правка 1"
    assert get_version(session, script_id="no_show", version=9) is None


def test_latest_version_wins(session):
    base = shipped("no_show")
    for farewell in ("До встречи!", "До скорой встречи!"):
        save_script_version(
            session,
            script_id="no_show",
            text=base.replace("Спасибо! Ждём вас, всего доброго.", farewell),
            author="Ольга",
            comment="",
        )
    session.commit()
    lines = select_script(Situation(kind="no_show"), playbook=current_playbook(session)).lines
    assert lines[-1] == "До скорой встречи!"


def test_invalid_text_is_refused_with_its_line_and_nothing_is_stored(session):
    text = shipped("no_show").replace("Здравствуйте, {name}!", "Здравствуйте, {patient_name}!")
    number = next(
        i for i, line in enumerate(text.splitlines(), start=1) if "{patient_name}" in line
    )
    with pytest.raises(PlaybookInvalid) as caught:
        save_script_version(session, script_id="no_show", text=text, author="Ольга", comment="")
    assert caught.value.problems[0].startswith(
        f"no_show (new version):{number}: unknown placeholder '{{patient_name}}'"
    )
    session.commit()
    assert session.query(ScriptVersion).count() == 0
    assert list_versions(session) == []


def test_text_that_breaks_the_playbook_as_a_whole_is_refused(session):
    # Valid alone, but a second script for a situation that already has one.
    text = shipped("no_show").replace('situation = "no_show"', 'situation = "dms_reminder"')
    with pytest.raises(PlaybookInvalid, match="already has script"):
        save_script_version(session, script_id="no_show", text=text, author="Ольга", comment="")
    assert session.query(ScriptVersion).count() == 0


def test_author_is_required(session):
    with pytest.raises(PlaybookInvalid, match="author"):
        save_script_version(
            session, script_id="no_show", text=shipped("no_show"), author=" ", comment=""
        )


def test_objection_answers_are_versioned_too(session):
    text = shipped("objections").replace("в выходной?", "в субботу?")
    save_script_version(session, script_id="objections", text=text, author="Ирина", comment="")
    session.commit()
    suggested = select_script(Situation(kind="no_show"), playbook=current_playbook(session))
    no_time = next(o for o in suggested.objections if o.key == "no_time")
    assert no_time.answer.endswith("в субботу?")


def test_stored_version_no_longer_valid_falls_back_to_the_file(session, caplog):
    # Written behind the validator's back, as a version saved under older rules would be.
    session.add(
        ScriptVersion(
            script_id="no_show",
            version=1,
            text=shipped("no_show").replace("{name}", "{first_name}"),
            author="Ольга",
            created_at=NOW,
            comment="",
        )
    )
    session.commit()
    lines = select_script(Situation(kind="no_show"), playbook=current_playbook(session)).lines
    assert lines[0] == "Здравствуйте!"
    assert "ignoring stored script no_show version 1" in caplog.text


def test_two_supervisors_saving_at_once_get_consecutive_versions(session_factory):
    """The second save waits for the first one's transaction, then numbers after it."""
    results: list[int] = []
    errors: list[BaseException] = []

    def second_save() -> None:
        try:
            with session_factory() as other:
                results.append(
                    save_script_version(
                        other,
                        script_id="no_show",
                        text=shipped("no_show"),
                        author="Ирина",
                        comment="второй",
                    )
                )
                other.commit()
        except BaseException as exc:  # handed to the test thread, which re-raises it
            errors.append(exc)

    with session_factory() as first:
        first_version = save_script_version(
            first, script_id="no_show", text=shipped("no_show"), author="Ольга", comment="первый"
        )
        thread = threading.Thread(target=second_save, daemon=True)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second save did not wait for the first"
        first.commit()
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    assert (first_version, results) == (1, [2])
