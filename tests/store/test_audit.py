"""The audit log store: entries recorded and listed by period, user and kind, keyset paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.store.audit import BadAuditEntry, audit_users, list_access, record_access

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _seed(session):
    rows = [
        ("vera", "open_card", "patient", 7, T0),
        ("anna", "open_transcript", "call", "1795369641.12", T0 + timedelta(hours=1)),
        ("anna", "play_recording", "call", "1795369641.12", T0 + timedelta(hours=2)),
        ("vera", "open_card", "patient", 8, T0 + DAY),
    ]
    ids = [
        record_access(session, user=u, action=a, subject_kind=k, subject_id=i, at=at)
        for u, a, k, i, at in rows
    ]
    session.commit()
    return ids


def test_entries_come_back_newest_first_within_the_period(session) -> None:
    ids = _seed(session)
    entries = list_access(session, since=T0, until=T0 + DAY, limit=10)
    assert [e.id for e in entries] == [ids[2], ids[1], ids[0]]
    first = entries[-1]
    assert (first.user, first.action, first.subject_kind, first.subject_id) == (
        "vera",
        "open_card",
        "patient",
        "7",
    )
    assert first.at == T0


def test_filters_by_user_and_subject_kind(session) -> None:
    _seed(session)
    since, until = T0 - DAY, T0 + 2 * DAY
    assert {
        e.user for e in list_access(session, since=since, until=until, user="anna", limit=10)
    } == {"anna"}
    by_kind = list_access(session, since=since, until=until, subject_kind="patient", limit=10)
    assert [e.subject_id for e in by_kind] == ["8", "7"]
    assert list_access(session, since=since, until=until, user="nobody", limit=10) == []
    assert audit_users(session) == ["anna", "vera"]


def test_keyset_paging_walks_every_entry_once(session) -> None:
    _seed(session)
    since, until = T0 - DAY, T0 + 2 * DAY
    seen: list[int] = []
    before = None
    while True:
        page = list_access(session, since=since, until=until, limit=3, before_id=before)
        if not page:
            break
        seen.extend(e.id for e in page)
        before = page[-1].id
    assert len(seen) == 4
    assert seen == sorted(seen, reverse=True)


def test_detail_is_stored_as_json(session) -> None:
    entry_id = record_access(
        session,
        user="vera",
        action="forget",
        subject_kind="phone_hash",
        subject_id="a" * 64,
        at=T0,
        detail={"calls": 3, "notes": 1},
    )
    session.commit()
    (entry,) = list_access(session, since=T0, until=T0 + DAY, limit=1)
    assert entry.id == entry_id
    assert entry.detail == {"calls": 3, "notes": 1}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("user", "", "user must not be empty"),
        ("action", "  ", "action must not be empty"),
        ("subject_kind", "k" * 33, "longer than 32"),
        ("subject_id", "9" * 65, "longer than 64"),
        ("at", datetime(2026, 11, 20, 9, 0), "timezone-aware"),
    ],
)
def test_bad_entries_are_refused(session, field, value, message) -> None:
    fields = {
        "user": "vera",
        "action": "open_card",
        "subject_kind": "patient",
        "subject_id": 1,
        "at": T0,
    }
    fields[field] = value
    with pytest.raises(BadAuditEntry, match=message):
        record_access(session, **fields)


def test_bad_queries_are_refused(session) -> None:
    with pytest.raises(BadAuditEntry, match="end after it starts"):
        list_access(session, since=T0, until=T0, limit=10)
    with pytest.raises(BadAuditEntry, match="between 1 and"):
        list_access(session, since=T0, until=T0 + DAY, limit=0)
    with pytest.raises(BadAuditEntry, match="timezone-aware"):
        list_access(session, since=datetime(2026, 1, 1), until=T0, limit=10)
