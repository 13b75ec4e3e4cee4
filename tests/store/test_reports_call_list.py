"""The call list's filters and keyset pages, on both back-ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

from callcenter.calls.model import Disposition
from callcenter.reports.figures import Period
from callcenter.store import queries, reports
from callcenter.store.models_speech import CallTag

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
PERIOD = Period(first=date(2026, 11, 10), last=date(2026, 11, 10), timezone="Europe/Moscow")


def _store(session_factory, make_call) -> list[str]:
    """Store 30 calls, three of them at the same instant; return linkedids newest first."""
    calls = []
    for i in range(30):
        answered = i % 3 == 0
        calls.append(
            make_call(
                start_ts=T0 + 60 * (i // 3 * 3),  # groups of three share a start time
                caller=f"8916000{i % 5:04d}",
                disposition=Disposition.ANSWERED if answered else Disposition.ABANDONED,
                agent=("101" if i % 2 else "102") if answered else None,
                last_agent="103" if i == 9 else None,
                end_ts=T0 + 60 * (i // 3 * 3) + 30,
            )
        )
    with session_factory.begin() as s:
        for call in calls:
            queries.persist_call(s, call=call)
            if call.disposition == Disposition.ANSWERED:
                s.add(
                    CallTag(
                        linkedid=call.linkedid,
                        tag="price_objection",
                        source="tagger",
                        created_at=datetime.now(UTC),
                    )
                )
    with session_factory() as s:
        every = list(reports.iter_calls(s, filters=reports.CallFilter(period=PERIOD)))
    return [c.linkedid for c in every]


def _all_pages(session, filters: reports.CallFilter, *, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = reports.list_calls_page(session, filters=filters, after=cursor, limit=limit)
        seen += [c.linkedid for c in page]
        if cursor is None:
            return seen


def test_keyset_pages_cover_every_call_once_across_equal_start_times(session_factory, make_call):
    newest_first = _store(session_factory, make_call)
    assert len(newest_first) == 30
    with session_factory() as s:
        for limit in (1, 2, 3, 7, 30, 50):
            assert _all_pages(s, reports.CallFilter(period=PERIOD), limit=limit) == newest_first


def test_each_filter_and_all_together(session_factory, make_call):
    _store(session_factory, make_call)

    def linkedids(**kw) -> list[str]:
        with session_factory() as s:
            return _all_pages(s, reports.CallFilter(period=PERIOD, **kw), limit=4)

    assert len(linkedids(disposition="answered")) == 10
    assert len(linkedids(disposition="abandoned")) == 20
    # The agent filter matches the answering administrator and the last one (a transfer).
    assert len(linkedids(agent="101")) == 5
    assert len(linkedids(agent="103")) == 1
    assert len(linkedids(tag="price_objection")) == 10
    assert linkedids(tag="no_such_tag") == []
    # A whole number by equality; a fragment by substring.
    assert len(linkedids(phone="+79160000001")) == 6
    assert len(linkedids(phone="8 (916) 000-00-01")) == 6
    assert len(linkedids(phone="0001")) == 6
    assert len(linkedids(phone="916000")) == 30
    both = linkedids(disposition="answered", agent="102", tag="price_objection", phone="916")
    assert len(both) == 5
    assert len(linkedids(disposition="answered", agent="102", phone="+79160000001")) == 1
    assert linkedids(disposition="abandoned", agent="102") == []
