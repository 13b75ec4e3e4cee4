"""What happened after an objection, over hand-built rows: each awkward case counted by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from callcenter.reports.figures import (
    OBJECTION_TAGS,
    AttemptRow,
    BookingRow,
    CallRow,
    LegRow,
    ObjectionFigures,
    Period,
    ReportOptions,
    TaskRow,
    compute_figures,
    figures_payload,
)

PERIOD = Period(first=date(2026, 11, 16), last=date(2026, 11, 22), timezone="Europe/Moscow")
T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


def answered(linkedid: str, *, phone: str | None, tags: tuple[str, ...], **kw) -> CallRow:
    return CallRow(
        linkedid=linkedid,
        direction="inbound",
        disposition="answered",
        started_at=kw.pop("at", T0),
        phone=phone,
        tags=tags,
        **kw,
    )


def task(task_id: int, linkedid: str, phone: str, status: str, **kw) -> TaskRow:
    return TaskRow(
        task_id=task_id,
        phone=phone,
        reason="objection_followup",
        status=status,
        opened_at=T0 + timedelta(hours=1),
        first_call_linkedid=linkedid,
        **kw,
    )


CALLS = [
    # An objection on a call that also booked (the tagger's «записан»).
    answered("booked-too", phone="+79160000001", tags=("price_objection", "booked"), agent="101"),
    # Two objections on one call, the same tag twice (tagger and supervisor); a booking 10
    # days later; its follow-up task reached the patient (second attempt) and was closed.
    answered(
        "two",
        phone="+79160000002",
        tags=("price_objection", "thinking", "price_objection"),
        agent="101",
    ),
    # A transfer: 101 answered, 102 had the caller last; the follow-up task is still open.
    answered(
        "transfer",
        phone="+79160000003",
        tags=("fear",),
        agent="101",
        last_agent="102",
        legs=(
            LegRow("101", "answered", T0, T0 + timedelta(seconds=30)),
            LegRow("102", "answered", T0 + timedelta(seconds=30), T0 + timedelta(seconds=90)),
        ),
    ),
    # A withheld number: the operator recorded «записан» on the call itself.
    answered("withheld", phone=None, tags=("no_time",), agent="102"),
    # A withheld number without a booking: lost, whatever anyone else booked.
    answered("withheld-lost", phone=None, tags=("thinking",), agent="102"),
    # No objection: not counted, even though it booked.
    answered("plain", phone="+79160000009", tags=("booked",), agent="103"),
]
FOLLOWUPS = [
    task(
        1,
        "two",
        "+79160000002",
        "closed",
        close_reason="other",
        closed_at=T0 + timedelta(days=1),
        attempts=(
            AttemptRow(T0 + timedelta(hours=20), "no_answer"),
            AttemptRow(T0 + timedelta(hours=21), "answered"),
        ),
    ),
    task(2, "transfer", "+79160000003", "open", attempts=(AttemptRow(T0, "busy"),)),
]
BOOKINGS = [
    BookingRow(phone="+79160000002", at=T0 + timedelta(days=10)),  # a visit, 10 days later
    BookingRow(phone=None, at=T0 + timedelta(minutes=5), linkedid="withheld"),
    # Booked before the objection call: does not win it back.
    BookingRow(phone="+79160000003", at=T0 - timedelta(days=1)),
]


def figures(win_back_days: int):
    return compute_figures(
        period=PERIOD,
        calls=CALLS,
        bookings=BOOKINGS,
        followups=FOLLOWUPS,
        options=ReportOptions(win_back_days=win_back_days),
        now=T0,
    )


def by_tag(f) -> dict[str, ObjectionFigures]:
    return {o.tag: o for o in f.objections}


def test_objections_with_a_booking_ten_days_later_inside_the_window():
    f = figures(14)
    assert [o.tag for o in f.objections] == list(OBJECTION_TAGS)
    price = by_tag(f)["price_objection"]
    # "booked-too" booked on the call; "two" booked 10 days later (counted once: a duplicate tag).
    assert (price.calls, price.booked_on_call, price.won_back_later, price.won_back) == (2, 1, 1, 2)
    assert (price.with_task, price.task_reached, price.still_open, price.lost) == (1, 1, 0, 0)
    assert price.won_back_rate == 1.0
    thinking = by_tag(f)["thinking"]
    assert (thinking.calls, thinking.won_back, thinking.lost) == (2, 1, 1)
    fear = by_tag(f)["fear"]
    assert (fear.calls, fear.won_back, fear.with_task, fear.task_reached) == (1, 0, 1, 0)
    assert (fear.still_open, fear.lost) == (1, 0)
    no_time = by_tag(f)["no_time"]
    assert (no_time.calls, no_time.booked_on_call, no_time.won_back) == (1, 1, 1)
    total = f.objections_total
    # Five objection calls: "two" once, though it carries two objection tags.
    assert (total.calls, total.booked_on_call, total.won_back_later, total.won_back) == (5, 2, 1, 3)
    assert (total.with_task, total.task_reached, total.still_open, total.lost) == (2, 1, 1, 1)
    assert total.won_back + total.still_open + total.lost == total.calls


def test_objections_with_a_booking_ten_days_later_outside_the_window():
    f = figures(7)
    price = by_tag(f)["price_objection"]
    assert (price.calls, price.booked_on_call, price.won_back_later, price.won_back) == (2, 1, 0, 1)
    # Its task reached the patient but closed without a booking within 7 days: lost.
    assert (price.with_task, price.task_reached, price.still_open, price.lost) == (1, 1, 0, 1)
    assert price.won_back_rate == 0.5
    total = f.objections_total
    assert (total.calls, total.won_back, total.still_open, total.lost) == (5, 2, 1, 2)


def test_per_administrator_objections_count_for_who_had_the_caller_last():
    agents = {a.agent: a for a in figures(14).agents}
    # 101: "booked-too" (booked), "two" (won back later); the transfer counts for 102.
    assert (agents["101"].objections, agents["101"].objections_booked) == (2, 2)
    # 102: the transfer (still open), "withheld" (booked on the call), "withheld-lost".
    assert (agents["102"].objections, agents["102"].objections_booked) == (3, 1)
    # The transfer's legs still count 101 and 102 as having answered it.
    assert (agents["101"].answered, agents["102"].answered) == (1, 1)
    # 103 took only a call without an objection, on no leg: not listed.
    assert "103" not in agents
    agents7 = {a.agent: a for a in figures(7).agents}
    assert (agents7["101"].objections, agents7["101"].objections_booked) == (2, 1)


def test_no_objections_give_zero_figures_and_no_rates():
    f = compute_figures(period=PERIOD, calls=[CALLS[-1]], now=T0)
    assert all(o.calls == 0 and o.won_back_rate is None for o in f.objections)
    assert f.objections_total == ObjectionFigures(tag="all")


def test_payload_carries_the_objection_figures():
    payload = figures_payload(figures(14))
    assert [o["tag"] for o in payload["objections"]] == list(OBJECTION_TAGS)
    assert payload["objections_total"]["calls"] == 5
    agent = next(a for a in payload["agents"] if a["agent"] == "102")
    assert (agent["objections"], agent["objections_booked"]) == (3, 1)
