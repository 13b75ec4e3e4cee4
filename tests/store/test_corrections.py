"""Supervisors' tag corrections: stored apart from the tagger's tags, with who and when."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.store import corrections, queries, speech
from callcenter.store.corrections import BadTagCorrection

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def call(session, make_call):
    record = make_call(linkedid="1795369538.60")
    queries.persist_call(session, call=record)
    speech.add_tags(
        session,
        linkedid=record.linkedid,
        tags=["price_objection", "booked"],
        source=speech.SOURCE_TAGGER,
        now=NOW,
    )
    session.commit()
    return record


def test_corrections_change_the_tags_shown_but_never_the_taggers(session, call):
    stored = corrections.correct_tags(
        session,
        linkedid=call.linkedid,
        add=["thinking"],
        remove=["price_objection"],
        by="vera",
        now=NOW,
    )
    session.commit()
    assert [(c.tag, c.action, c.by) for c in stored] == [
        ("thinking", "add", "vera"),
        ("price_objection", "remove", "vera"),
    ]
    state = corrections.tag_state(session, linkedid=call.linkedid)
    assert state.tagger == ("booked", "price_objection")
    assert state.effective == ("booked", "thinking")
    assert (state.added, state.removed) == (("thinking",), ("price_objection",))
    assert [(c.tag, c.action, c.by, c.at) for c in state.corrections] == [
        ("thinking", "add", "vera", NOW),
        ("price_objection", "remove", "vera", NOW),
    ]
    # The tagger's rows are untouched.
    assert speech.list_tags(session, linkedid=call.linkedid, source="tagger") == [
        "booked",
        "price_objection",
    ]


def test_a_correction_that_changes_nothing_is_not_stored(session, call):
    stored = corrections.correct_tags(
        session, linkedid=call.linkedid, add=["booked"], remove=["fear"], by="vera", now=NOW
    )
    assert stored == []
    assert corrections.list_corrections(session, linkedid=call.linkedid) == []


def test_the_latest_correction_of_a_tag_wins(session, call):
    corrections.correct_tags(
        session, linkedid=call.linkedid, add=[], remove=["booked"], by="vera", now=NOW
    )
    later = NOW + timedelta(minutes=5)
    corrections.correct_tags(
        session, linkedid=call.linkedid, add=["booked"], remove=[], by="olga", now=later
    )
    session.commit()
    state = corrections.tag_state(session, linkedid=call.linkedid)
    assert state.effective == ("booked", "price_objection")
    assert state.added == state.removed == ()
    assert [(c.action, c.by) for c in state.corrections] == [("remove", "vera"), ("add", "olga")]


@pytest.mark.parametrize(
    ("add", "remove", "by", "message"),
    [
        (["expensive"], [], "vera", "unknown tag(s): expensive"),
        ([], ["<script>"], "vera", "unknown tag(s): <script>"),
        (["fear"], ["fear"], "vera", "both added and removed: fear"),
        (["fear"], [], " ", "needs the supervisor's name"),
    ],
)
def test_bad_corrections_are_refused_with_the_reason(session, call, add, remove, by, message):
    with pytest.raises(BadTagCorrection, match=re.escape(message)):
        corrections.correct_tags(
            session, linkedid=call.linkedid, add=add, remove=remove, by=by, now=NOW
        )


def test_a_correction_of_a_call_never_stored_is_refused(session):
    with pytest.raises(BadTagCorrection, match="no stored call"):
        corrections.correct_tags(
            session, linkedid="404.1", add=["fear"], remove=[], by="vera", now=NOW
        )


def test_a_call_without_tags_can_get_its_first_one(session, make_call):
    record = make_call()
    queries.persist_call(session, call=record)
    corrections.correct_tags(
        session, linkedid=record.linkedid, add=["callback_requested"], remove=[], by="v", now=NOW
    )
    state = corrections.tag_state(session, linkedid=record.linkedid)
    assert (state.tagger, state.effective) == ((), ("callback_requested",))
