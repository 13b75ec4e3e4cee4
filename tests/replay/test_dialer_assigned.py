"""Taken tasks and the drain sweep.

A task an operator took is rung to that operator only, operator first, and waits while they
are busy (it is never offered to another operator); ``drain`` dials everything due within the
originate cap.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.calls.effects import OperatorStateChanged, OperatorStatus
from callcenter.store import callbacks
from callcenter.store.models import Task
from callcenter.tasks.schedule import AttemptOutcome
from tests.replay.test_dialer_fakes import NOW, FakeOriginator, add_task, make_dialer


def take(session_factory, task_id: int, extension: str) -> None:
    with session_factory.begin() as session:
        callbacks.take_task(session, task_id, extension=extension, by="anna", now=NOW)


def test_a_taken_task_rings_its_operator_first_even_outside_the_dialers_operators(
    session_factory,
):
    """Config operators are 101 and 102 (patient first); the task was taken by 107."""
    task_id = add_task(session_factory, "+79031234567")
    take(session_factory, task_id, "107")
    originator = FakeOriginator(reason="5")
    (result,) = asyncio.run(make_dialer(session_factory, originator).run_once())
    (request,) = originator.requests
    assert (request["extension"], request["style"]) == ("107", "operator_first")
    # Operator first: Reason 5 is the operator's line, so no attempt is used.
    assert result.outcome is AttemptOutcome.OPERATOR_NO_ANSWER
    with session_factory() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.attempts, task.assigned_extension) == ("open", 0, "107")


def test_a_taken_task_waits_for_its_busy_operator_and_is_not_given_to_another(session_factory):
    task_id = add_task(session_factory, "+79031234568")
    take(session_factory, task_id, "101")
    originator = FakeOriginator()
    dialer = make_dialer(session_factory, originator)
    dialer.observe(None, [OperatorStateChanged("101", None, OperatorStatus.ON_CALL, 0.0)])
    (result,) = asyncio.run(dialer.run_once())
    assert result.action == "no_free_operator"
    assert originator.requests == []  # 102 is free, but the task is 101's
    with session_factory() as session:
        assert session.get(Task, task_id).due_at == NOW + timedelta(minutes=1)


def test_other_tasks_still_go_to_the_free_operators(session_factory):
    mine = add_task(session_factory, "+79031234569")
    other = add_task(session_factory, "+79031234570", reason="no_show")
    take(session_factory, mine, "102")
    originator = FakeOriginator()
    results = asyncio.run(make_dialer(session_factory, originator).run_once())
    by_task = {r["task_id"]: (r["extension"], r["style"]) for r in originator.requests}
    assert by_task == {
        str(mine): ("102", "operator_first"),
        str(other): ("101", "patient_first"),
    }
    assert {r.task_id for r in results} == {mine, other}


def test_drain_dials_every_due_task_keeping_the_cap(session_factory):
    """One sweep (``drain``) dials everything due, never more than max_concurrent at once."""
    ids = {add_task(session_factory, f"+7903123460{n}") for n in range(7)}
    originator = FakeOriginator(reason="5")
    results = asyncio.run(make_dialer(session_factory, originator).drain())
    assert {r.task_id for r in results} == ids
    assert all(r.action == "dialled" for r in results)
    assert originator.max_concurrent == 2 and len(originator.requests) == 7


def test_drain_with_no_budget_left_claims_nothing(session_factory):
    add_task(session_factory, "+79031234610")
    originator = FakeOriginator()
    assert asyncio.run(make_dialer(session_factory, originator).drain(budget_s=0)) == []
    assert originator.requests == []
