"""The real busy-hour trace (burst.expected.json) through the store and the task rules."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.calls.model import CallRecord, Direction, Disposition
from callcenter.patients.phone import normalize_phone
from callcenter.store import queries
from callcenter.store.models import Call, Task

BURST = Path(__file__).parents[2] / "callcenter" / "data" / "ami-traces" / "burst.expected.json"
RECORD_FIELDS = {field.name for field in dataclasses.fields(CallRecord)}


def load_burst_calls() -> list[CallRecord]:
    """Return the trace's calls as CallRecords (the JSON names its fields the same way)."""
    calls = json.loads(BURST.read_text(encoding="utf-8"))["calls"]
    return [to_record(raw) for raw in calls]


def to_record(raw: dict[str, Any]) -> CallRecord:
    fields = {name: value for name, value in raw.items() if name in RECORD_FIELDS}
    fields["direction"] = Direction(raw["direction"])
    fields["disposition"] = Disposition(raw["disposition"])
    fields.setdefault("callback_task", None)
    fields["transfers"] = tuple(raw.get("transfers", ()))
    return CallRecord(**fields)


def expected_open_phones(calls: list[CallRecord]) -> set[str]:
    """Numbers left with an open task, by brute force over all pairs of calls."""
    contacts = [
        c for c in calls if c.disposition in (Disposition.ANSWERED, Disposition.OUTBOUND_ANSWERED)
    ]
    return {
        phone
        for drop in calls
        if drop.is_dropped and (phone := normalize_phone(drop.caller)) is not None
        if not any(
            normalize_phone(c.caller) == phone and c.end_ts > drop.start_ts for c in contacts
        )
    }


def persist_each(sessions: sessionmaker[Session], calls: list[CallRecord]) -> None:
    """Persist the calls one transaction each, as the listener does."""
    for call in calls:
        with sessions.begin() as session:
            queries.persist_call(session, call=call)


def open_task_phones(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [task.phone for task in queries.list_open_tasks(session)]


def test_burst_in_end_time_order_leaves_one_task_per_unresolved_dropped_number(session_factory):
    """Rule: every dropped inbound call opens a task for its normalized number, one open task
    per number, withheld callers never; a dropped call whose number had an answered call
    overlapping or after its start leaves no open task."""
    calls = load_burst_calls()
    persist_each(session_factory, sorted(calls, key=lambda c: c.end_ts))

    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 40
        anonymous = session.scalar(select(Call).where(Call.caller == "anonymous"))
        assert anonymous is not None and anonymous.phone is None
        assert queries.count_calls_by_disposition(session) == {
            "answered": 6,
            "queue_timeout": 18,
            "abandoned": 16,
        }

    phones = open_task_phones(session_factory)
    assert len(phones) == len(set(phones))
    assert set(phones) == expected_open_phones(calls)
    # By hand: 34 dropped calls (18 queue_timeout + 16 abandoned); one is "anonymous" → 33
    # numbers, all distinct once normalized. 89777228464 (= +79777228464) timed out while the
    # same number was being answered (answered call ends 1795369669.291, after the drop started
    # at 1795369643.277), so it is resolved: 33 - 1 = 32 open tasks.
    assert len(phones) == 32
    assert "+79777228464" not in phones


ORDERS = {
    "start_ts": lambda c: c.start_ts,
    "end_ts_reversed": lambda c: -c.end_ts,  # the repeat caller's drop now comes first
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_burst_leaves_the_same_tasks_in_any_persist_order(session_factory, order):
    """The overlap rule compares each call's own times, so any persist order leaves the same
    open tasks as end-time order."""
    calls = load_burst_calls()
    persist_each(session_factory, sorted(calls, key=ORDERS[order]))
    assert set(open_task_phones(session_factory)) == expected_open_phones(calls)


def test_overlapping_answer_closes_the_repeat_callers_task_when_the_drop_is_stored_first(
    session_factory,
):
    """Rule: the task closes by itself when that number gets through; stored drop-first, the
    repeat caller's task opens and the overlapping answered call closes it (got_through)."""
    calls = sorted(load_burst_calls(), key=lambda c: -c.end_ts)
    persist_each(session_factory, calls)
    with session_factory() as session:
        closed = session.scalars(select(Task).where(Task.status == "closed")).all()
        assert [(t.phone, t.close_reason) for t in closed] == [("+79777228464", "got_through")]


def test_replaying_burst_twice_stores_nothing_twice(session_factory):
    """Replaying the same trace again stores no call twice and opens no task twice."""
    calls = sorted(load_burst_calls(), key=lambda c: c.end_ts)
    persist_each(session_factory, calls)
    before = open_task_phones(session_factory)
    persist_each(session_factory, calls)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 40
        assert session.scalar(select(func.count()).select_from(Task)) == len(before)
    assert open_task_phones(session_factory) == before
