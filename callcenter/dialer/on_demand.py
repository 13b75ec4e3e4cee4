"""Dial one task now, on an operator's request (take, click-to-call), as a Huey job.

The web process calls ``request_dial``: it only enqueues ``dialer_dial_now(task_id)`` on the
project's Huey (``jobs.build_huey``: Redis when configured, else the embedded SQLite file). A
``callcenter worker`` runs it (``register_on_demand_tasks``, called by ``jobs.run_worker``): it
connects to AMI, claims that task with a lease (``store.dialer.claim_task``) and hands it to
the same ``Dialer._handle`` as a sweep — working hours, consent checked again right before the
Originate, operator first to the task's ``assigned_extension`` — and the outcome is recorded on
the task like any attempt.

If the job cannot run (no worker, AMI down), nothing is lost: a taken task is due now and
assigned, so the next periodic sweep dials it to the same operator.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from huey import Huey

from callcenter.config import Settings
from callcenter.dialer.worker import DialResult, build_dialer_process
from callcenter.notify import NullNotifier
from callcenter.store.callbacks import BadTaskRequest

log = logging.getLogger(__name__)

#: The Huey task's name; producers (web) and consumers (worker) register the same one.
DIAL_NOW_TASK = "dialer_dial_now"

_producers: dict[tuple[str | None, str], Any] = {}
_producers_lock = threading.Lock()


def dial_task_now(settings: Settings, task_id: int, *, ready_timeout: float = 10.0) -> DialResult:
    """Connect to AMI, dial the task now and wait for its outcome; return what happened.

    ``action`` is ``link_not_ready`` when the AMI link did not log in and re-sync in time
    (nothing was claimed: the sweep dials the task later).
    """

    async def dial() -> DialResult:
        process = build_dialer_process(settings, notifier=NullNotifier(), store_calls=False)
        await process.start()
        try:
            if not await process.wait_ready(ready_timeout):
                log.warning(
                    "dial now: AMI link not ready within %gs; task %s", ready_timeout, task_id
                )
                return DialResult(task_id=task_id, action="link_not_ready")
            return await process.dialer.dial_now(task_id)
        finally:
            await process.stop()

    result = asyncio.run(dial())
    log.info(
        "dial now: task %s %s %s %s",
        task_id,
        result.action,
        result.outcome or "",
        result.task_state or "",
    )
    return result


def _register(
    huey: Huey, settings: Settings, dial: Callable[[int], DialResult] | None = None
) -> Any:
    def dialer_dial_now(task_id: int) -> str:
        if dial is not None:
            return dial(task_id).action
        return dial_task_now(settings, task_id).action

    # Huey names a task by its function's module and name: producers and consumers must
    # register this same function, so a consumer plugs its own way of dialling in here.
    return huey.task(name=DIAL_NOW_TASK)(dialer_dial_now)


def register_on_demand_tasks(
    huey: Huey, settings: Settings, *, dial: Callable[[int], DialResult] | None = None
) -> None:
    """Register the ``dialer_dial_now`` job on ``huey`` (the worker's consumer runs it).

    ``dial`` replaces the short AMI connection per job (``serve`` dials on its live link).
    """
    _register(huey, settings, dial)


def request_dial(settings: Settings, task_id: int) -> None:
    """Enqueue a job that dials this task now, operator first to its assigned extension.

    Returns at once; the outcome is recorded on the task by the worker.

    :raises BadTaskRequest: ``task_id`` is not a positive integer.
    """
    if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 1:
        raise BadTaskRequest(f"task id must be a positive integer, got {task_id!r}")
    _producer(settings)(task_id)


def _producer(settings: Settings) -> Any:
    # Imported here: callcenter.jobs imports this module for run_worker.
    from callcenter.jobs import build_huey, huey_path

    key = (settings.redis_url, str(huey_path(settings)))
    with _producers_lock:
        task = _producers.get(key)
        if task is None:
            task = _producers[key] = _register(build_huey(settings), settings)
    return task
