"""AMI link gaps: periods when calls may have gone unseen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from callcenter.store import queries

DOWN_AT = datetime(2026, 11, 22, 17, 50, tzinfo=UTC)


def test_gap_is_opened_then_closed_with_recovered_calls(session) -> None:
    """A gap opens when the link drops and closes, with what was recovered, when it is back."""
    gap_id = queries.open_gap(session, started_at=DOWN_AT, reason="connection lost")
    session.commit()
    (gap,) = queries.list_gaps(session)
    assert (gap.id, gap.ended_at, gap.reason) == (gap_id, None, "connection lost")

    queries.close_gap(
        session, gap_id=gap_id, ended_at=DOWN_AT + timedelta(seconds=42), recovered_calls=3
    )
    session.commit()
    session.expire_all()
    (gap,) = queries.list_gaps(session)
    assert (gap.ended_at, gap.recovered_calls) == (DOWN_AT + timedelta(seconds=42), 3)


def test_gap_times_come_back_as_utc(session) -> None:
    """Times stored with any offset are read back as the same instant in UTC on both back-ends."""
    moscow = timezone(timedelta(hours=3))
    queries.open_gap(session, started_at=datetime(2026, 11, 22, 20, 50, tzinfo=moscow), reason="x")
    session.commit()
    session.expire_all()
    (gap,) = queries.list_gaps(session)
    assert gap.started_at == DOWN_AT
    assert gap.started_at.tzinfo is UTC


def test_naive_datetime_is_refused(session) -> None:
    """A naive datetime is ambiguous (server local time?), so the store refuses it."""
    with pytest.raises(StatementError, match="naive datetime"):
        queries.open_gap(session, started_at=datetime(2026, 11, 22, 17, 50), reason="x")


def test_gaps_are_listed_oldest_first(session) -> None:
    """list_gaps returns gaps in the order they began."""
    later = queries.open_gap(session, started_at=DOWN_AT + timedelta(hours=1), reason="later")
    earlier = queries.open_gap(session, started_at=DOWN_AT, reason="earlier")
    session.commit()
    assert [gap.id for gap in queries.list_gaps(session)] == [earlier, later]


def test_closing_an_unknown_gap_raises_lookup_error(session) -> None:
    """Closing a gap that does not exist is a bug in the caller, reported loudly."""
    with pytest.raises(LookupError):
        queries.close_gap(session, gap_id=999, ended_at=DOWN_AT)


def test_closing_a_gap_twice_raises_value_error(session) -> None:
    """A gap ends once."""
    gap_id = queries.open_gap(session, started_at=DOWN_AT, reason="x")
    queries.close_gap(session, gap_id=gap_id, ended_at=DOWN_AT + timedelta(seconds=1))
    with pytest.raises(ValueError, match="already closed"):
        queries.close_gap(session, gap_id=gap_id, ended_at=DOWN_AT + timedelta(seconds=2))


def test_gap_cannot_end_before_it_started(session) -> None:
    """An end before the start is a clock or caller bug."""
    gap_id = queries.open_gap(session, started_at=DOWN_AT, reason="x")
    with pytest.raises(ValueError, match="before it started"):
        queries.close_gap(session, gap_id=gap_id, ended_at=DOWN_AT - timedelta(seconds=1))
