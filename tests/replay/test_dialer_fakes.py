"""The dialer with an in-memory originator: operators, concurrency, leases, bad numbers.

The fake answers each Originate like Asterisk does (a reply, then an OriginateResponse fed
through ``Dialer.observe``), so these tests run the dialer's real code without a socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.ami.events import AmiEvent
from callcenter.calls.effects import OperatorStateChanged, OperatorStatus
from callcenter.calls.model import Direction, Disposition
from callcenter.dialer.outcome import PendingOriginate
from callcenter.dialer.worker import Dialer, DialerConfig, Permission
from callcenter.store import dialer as store
from callcenter.store import queries
from callcenter.store.models import Task, TaskAttempt
from callcenter.tasks.schedule import AttemptOutcome, ClinicSchedule

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=MSK).astimezone(UTC)
CONFIG = DialerConfig(
    worker_id="fake-dialer",
    operators=("101", "102"),
    max_concurrent=2,
    originate_timeout_s=0.2,
    outcome_grace_s=0.2,
    answer_wait_s=0.2,
    lease_s=60.0,
)


def allow(*, phone: str, kind: str, at: datetime) -> Permission:
    return Permission(True, "test")


@dataclass
class FakeOriginator:
    """Answers every Originate with Success, then an OriginateResponse with ``reason``."""

    reason: str = "3"
    dialer: Dialer | None = None
    requests: list[dict] = field(default_factory=list)
    concurrent: int = 0
    max_concurrent: int = 0

    async def originate(self, **kwargs) -> AmiEvent:
        self.requests.append(kwargs)
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        asyncio.get_running_loop().call_later(0.02, self._respond, kwargs["action_id"])
        return AmiEvent.from_fields(
            [("Response", "Success"), ("ActionID", kwargs["action_id"])], 0.0
        )

    def _respond(self, action_id: str) -> None:
        self.concurrent -= 1
        assert self.dialer is not None
        event = AmiEvent.from_fields(
            [
                ("Event", "OriginateResponse"),
                ("ActionID", action_id),
                ("Response", "Failure"),
                ("Reason", self.reason),
                ("Uniqueid", "<unknown>"),
            ],
            0.0,
        )
        self.dialer.observe(event, [])


def make_dialer(session_factory, originator, **kwargs) -> Dialer:
    dialer = Dialer(
        config=kwargs.pop("config", CONFIG),
        session_factory=session_factory,
        originator=originator,
        consent=kwargs.pop("consent", allow),
        clock=kwargs.pop("clock", lambda: NOW),
        schedule=kwargs.pop("schedule", ClinicSchedule()),
    )
    originator.dialer = dialer
    return dialer


def add_task(session_factory, phone: str, **kwargs) -> int:
    with session_factory.begin() as session:
        task = Task(
            phone=phone,
            reason=kwargs.get("reason", "missed_call"),
            kind="service",
            status="open",
            opened_at=NOW - timedelta(minutes=30),
            due_at=NOW - timedelta(minutes=1),
            attempts=kwargs.get("attempts", 0),
        )
        session.add(task)
        session.flush()
        return task.id


def test_busy_operator_is_not_rung_and_nothing_is_claimed(session_factory):
    """The dialer never rings an operator who is on a call or ringing."""
    add_task(session_factory, "+79031234567")
    originator = FakeOriginator()
    dialer = make_dialer(session_factory, originator)
    for agent, status in (("101", OperatorStatus.ON_CALL), ("102", OperatorStatus.RINGING)):
        dialer.observe(None, [OperatorStateChanged(agent, None, status, NOW.timestamp())])
    assert asyncio.run(dialer.run_once()) == []
    assert originator.requests == []
    dialer.observe(None, [OperatorStateChanged("102", None, OperatorStatus.FREE, 0.0)])
    (result,) = asyncio.run(dialer.run_once())
    assert originator.requests[0]["extension"] == "102"
    assert result.outcome is AttemptOutcome.NO_ANSWER


def test_concurrent_originates_are_capped(session_factory):
    """Caps concurrent originates (config) and gives each its own operator."""
    for n in range(5):
        add_task(session_factory, f"+7903123456{n}")
    originator = FakeOriginator(reason="5")
    dialer = make_dialer(session_factory, originator)
    results = asyncio.run(dialer.run_once())
    assert len(results) == 2 and originator.max_concurrent == 2
    assert {r["extension"] for r in originator.requests} == {"101", "102"}
    assert all(r.outcome is AttemptOutcome.BUSY for r in results)


def test_number_on_a_live_call_is_not_dialled(session_factory, make_call):
    """At most one live call per patient: a number on a live call waits."""
    add_task(session_factory, "+79031234567")
    originator = FakeOriginator()
    dialer = make_dialer(session_factory, originator)
    from callcenter.calls.effects import CallStarted

    dialer.observe(None, [CallStarted("9.1", Direction.INBOUND, "89031234567", None, None, 1.0)])
    assert asyncio.run(dialer.run_once()) == []
    assert originator.requests == []


def test_undialable_number_closes_the_task_without_a_call(session_factory):
    """A number that cannot be dialled: the task closes as undialable, nothing is sent."""
    task_id = add_task(session_factory, "+7(903)")
    originator = FakeOriginator()
    (result,) = asyncio.run(make_dialer(session_factory, originator).run_once())
    assert result.action == "undialable" and originator.requests == []
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason) == ("closed", "undialable")


def test_last_attempt_closes_the_task_unreachable(session_factory):
    """Stop after max attempts (default 3): the task closes as unreachable."""
    task_id = add_task(session_factory, "+79031234567", attempts=2)
    (result,) = asyncio.run(make_dialer(session_factory, FakeOriginator()).run_once())
    assert (result.outcome, result.task_state) == (AttemptOutcome.NO_ANSWER, "closed")
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason, task.attempts) == ("closed", "unreachable", 3)


def test_marketing_task_without_consent_is_refused_with_the_reason(session_factory):
    """The real consent lookup: a marketing call to an unknown number is refused, and why."""
    from callcenter.dialer.worker import StoreConsentLookup

    task_id = add_task(session_factory, "+79031234567", reason="sleeping")
    with session_factory.begin() as session:
        session.get(Task, task_id).kind = "marketing"
    originator = FakeOriginator()
    consent = StoreConsentLookup(session_factory=session_factory, own_request_days=30)
    (result,) = asyncio.run(make_dialer(session_factory, originator, consent=consent).run_once())
    assert (result.action, result.detail) == ("refused", "unknown_number")
    assert originator.requests == []
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.close_reason) == ("refused", "unknown_number")
        assert (task.events[-1].kind, task.events[-1].detail) == ("refused", "unknown_number")


@pytest.mark.parametrize(
    ("disposition", "expected", "status"),
    [
        (Disposition.OUTBOUND_ANSWERED, AttemptOutcome.ANSWERED, "closed"),
        (Disposition.OUTBOUND_FAILED, AttemptOutcome.NO_ANSWER, "open"),
        (None, AttemptOutcome.UNKNOWN, "open"),
    ],
)
def test_after_a_lease_timeout_the_stored_call_gives_the_outcome_not_a_new_call(
    session_factory, make_call, disposition, expected, status
):
    """A claimed-but-unfinished task is picked up again after its lease; the call already
    carrying its CALLBACK_TASK gives the outcome instead of a second call."""
    task_id = add_task(session_factory, "+79031234567")
    with session_factory.begin() as session:
        store.claim_due_tasks(session, worker_id="crashed", now=NOW, lease_s=60, limit=1)
        store.start_attempt(session, task_id=task_id, action_id="cb-lost", started_at=NOW)
        if disposition is not None:
            call = make_call(
                caller="79031234567",
                direction=Direction.OUTBOUND,
                disposition=disposition,
                queue=None,
                callback_task=str(task_id),
                start_ts=NOW.timestamp() + 1,
            )
            queries.persist_call(session, call=call)
    originator = FakeOriginator()
    later = NOW + timedelta(minutes=2)
    dialer = make_dialer(session_factory, originator, clock=lambda: later)
    results = asyncio.run(dialer.run_once())
    assert originator.requests == []  # never doubled
    if expected is AttemptOutcome.ANSWERED:
        # Storing the answered callback already closed the task (reached): nothing to claim.
        assert results == []
        with session_factory() as session:
            assert session.get(Task, task_id).close_reason == "reached"
        return
    (result,) = results
    assert (result.action, result.outcome) == ("resolved_earlier_attempt", expected)
    with session_factory() as session:
        assert session.get(Task, task_id).status == status
        (attempt,) = session.scalars(select(TaskAttempt)).all()
        assert (attempt.action_id, attempt.outcome) == ("cb-lost", str(expected))


@pytest.mark.parametrize(
    ("style", "reason", "effects", "expected"),
    [
        ("patient_first", "4", "answered", AttemptOutcome.ANSWERED),
        ("operator_first", "4", "failed", AttemptOutcome.PATIENT_NO_ANSWER),
        ("patient_first", "4", "failed", AttemptOutcome.OPERATOR_NO_ANSWER),
        ("patient_first", "8", None, AttemptOutcome.FAILED),
        ("operator_first", "5", None, AttemptOutcome.OPERATOR_NO_ANSWER),
    ],
)
def test_outcome_resolution(make_call, style, reason, effects, expected):
    """answered / patient did not answer after the operator did / operator did not answer."""
    from callcenter.calls.effects import CallEnded

    entry = PendingOriginate(action_id="cb-7-x", task_id="7", style=style)
    entry.feed_event(
        AmiEvent.from_fields(
            [
                ("Event", "OriginateResponse"),
                ("ActionID", "cb-7-x"),
                ("Reason", reason),
                ("Uniqueid", "1795369458.48"),
            ],
            0.0,
        )
    )
    if effects is not None:
        disposition = (
            Disposition.OUTBOUND_ANSWERED if effects == "answered" else Disposition.OUTBOUND_FAILED
        )
        call = make_call(
            linkedid="1795369458.48",
            direction=Direction.OUTBOUND,
            disposition=disposition,
            callback_task="7",
        )
        entry.feed_effect(CallEnded(call, 1.0))
    assert entry.outcome_at_deadline() is expected


def test_a_failing_task_is_raised_after_the_other_calls_finish(session_factory):
    """A bug in one task's handling crashes the sweep loudly, but only after every other call
    in flight has its outcome recorded; the failed task keeps its lease until it expires."""
    broken = add_task(session_factory, "+79031234567")
    fine = add_task(session_factory, "+79031234568")

    def consent(*, phone: str, kind: str, at: datetime) -> Permission:
        if phone == "+79031234567":
            raise RuntimeError("consent lookup bug")
        return Permission(True, "test")

    originator = FakeOriginator()
    dialer = make_dialer(session_factory, originator, consent=consent)
    with pytest.raises(RuntimeError, match="consent lookup bug"):
        asyncio.run(dialer.run_once())
    with session_factory() as session:
        assert [a.task_id for a in session.scalars(select(TaskAttempt))] == [fine]
        assert session.get(Task, broken).status == "open"
        assert store.holds_lease(session, task_id=broken, worker_id="fake-dialer", now=NOW)
