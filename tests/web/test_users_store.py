"""Users and call outcomes in the store, on both back-ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_add_user_migrates_and_hashes_the_password(db_url):
    view = users.add_user(
        db_url, username="anna", password="s3cret", role="operator", extension="101"
    )
    assert view.role == "operator" and view.extension == "101"
    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            assert users.authenticate(session, username="anna", password="s3cret") == view
            assert users.authenticate(session, username="anna", password="wrong") is None
            assert users.authenticate(session, username="nobody", password="s3cret") is None
            stored = session.execute(users.select(users.User.password_hash)).scalar_one()
            assert "s3cret" not in stored
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "admin"}, "role must be one of"),
        ({"role": "operator"}, "needs an extension"),
        ({"role": "supervisor", "password": ""}, "password"),
    ],
)
def test_create_user_refuses_bad_input(session, kwargs, message):
    args = {"username": "x", "password": "p", **kwargs}
    with pytest.raises(users.UserError, match=message):
        users.create_user(session, **args)


def test_a_taken_username_is_refused(session):
    users.create_user(session, username="boss", password="p", role="supervisor")
    with pytest.raises(users.UserError, match="already exists"):
        users.create_user(session, username="boss", password="q", role="supervisor")


def test_deactivated_user_cannot_log_in(session):
    view = users.create_user(session, username="old", password="p", role="supervisor")
    session.get(users.User, view.id).active = False
    assert users.authenticate(session, username="old", password="p") is None
    assert users.get_user(session, user_id=view.id) is None


def test_record_outcome_keeps_detail_only_where_it_means_something(session):
    booked = users.record_outcome(
        session,
        linkedid="1.1",
        operator="anna",
        outcome="booked",
        detail="2026-11-30",
        note="к терапевту",
        at=NOW,
    )
    refused = users.record_outcome(
        session,
        linkedid="1.1",
        operator="anna",
        outcome="not_interested",
        detail="junk",
        note="",
        at=NOW,
    )
    assert (booked.detail, refused.detail, refused.note) == ("2026-11-30", None, None)
    assert [o.outcome for o in users.list_outcomes(session, linkedid="1.1")] == [
        "booked",
        "not_interested",
    ]


@pytest.mark.parametrize(
    ("outcome", "detail"), [("maybe", None), ("booked", None), ("callback_requested", "")]
)
def test_record_outcome_refuses_bad_outcomes(session, outcome, detail):
    with pytest.raises(users.BadOutcome):
        users.record_outcome(
            session,
            linkedid="1.1",
            operator="a",
            outcome=outcome,
            detail=detail,
            note=None,
            at=NOW,
        )
