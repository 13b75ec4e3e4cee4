"""Background work on Huey: the instance built from settings, the periodic sweeps, the worker.

Embedded default: ``SqliteHuey`` in a file next to the SQLite database (or ``HUEY_PATH``).
Distributed: ``RedisHuey`` when ``REDIS_URL`` is set; consumers on any number of machines.

Huey carries *when* to sweep, never *what* to call: a callback task is a database row, claimed
by the dialer with the database's row lock (``store.dialer.claim_due_tasks``), so sweeps running
at once on several machines never ring one patient twice. Nothing runs at import time: the
instance and its tasks are built by ``build_huey`` + ``register_dialer_tasks``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from callcenter.ami.commands import register_command_tasks
from callcenter.config import Settings
from callcenter.consumers import WorkerConsumer
from callcenter.dialer.on_demand import register_on_demand_tasks
from callcenter.dialer.worker import DialResult, build_dialer_process, run_sweep
from callcenter.followup_jobs import register_followup_tasks
from callcenter.maintenance import register_maintenance_tasks
from callcenter.notify import NullNotifier
from callcenter.speech.jobs import register_speech_tasks
from callcenter.store.dialer import sqlite_database_path

log = logging.getLogger(__name__)

HUEY_NAME = "callcenter"
HUEY_FILENAME = "callcenter-huey.db"
#: Periodic tasks fire on the minute: the sweep's cadence (retry gaps are minutes long).
SWEEP_SCHEDULE = crontab(minute="*")


def huey_path(settings: Settings) -> Path:
    """Return the SqliteHuey file: ``huey_path`` if set, else next to the SQLite database.

    >>> str(huey_path(Settings(database_url="sqlite:////var/lib/cc/callcenter.db")))
    '/var/lib/cc/callcenter-huey.db'
    >>> str(huey_path(Settings(database_url="postgresql+psycopg://db/cc", huey_path="/tmp/h.db")))
    '/tmp/h.db'
    """
    configured = settings.huey_path
    if configured:
        return Path(configured)
    database = sqlite_database_path(settings.database_url)
    if database is not None:
        return database.parent / HUEY_FILENAME
    return Path(HUEY_FILENAME)


def build_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    """Build the Huey instance: Redis when ``redis_url`` is set, else SQLite (embedded)."""
    if settings.redis_url:
        return RedisHuey(HUEY_NAME, url=settings.redis_url, immediate=immediate)
    return SqliteHuey(HUEY_NAME, filename=str(huey_path(settings)), immediate=immediate)


def sweep_due_callbacks(settings: Settings, *, ready_timeout: float = 10.0) -> list[DialResult]:
    """Run one dialer sweep: connect to AMI, dial what is due, wait for outcomes, disconnect.

    The link does not store calls: the listener process does (and closes answered tasks).
    """

    async def sweep() -> list[DialResult]:
        process = build_dialer_process(settings, notifier=NullNotifier(), store_calls=False)
        await process.start()
        try:
            return await run_sweep(process, ready_timeout=ready_timeout)
        finally:
            await process.stop()

    return asyncio.run(sweep())


@dataclass(frozen=True, slots=True)
class DialerTasks:
    """The Huey tasks ``register_dialer_tasks`` registered."""

    sweep: Any  # huey.api.PeriodicTask


def register_dialer_tasks(huey: Huey, settings: Settings) -> DialerTasks:
    """Register the periodic due-callback sweep on ``huey``."""
    # One sweep at a time per process; other processes sweep in parallel, the row locks keep
    # them apart (a Huey lock would be global over Redis and serialize every machine).
    running = threading.Lock()

    def dialer_sweep() -> int:
        if not running.acquire(blocking=False):
            log.info("dialer sweep still running in this process; skipped")
            return 0
        try:
            results = sweep_due_callbacks(settings)
        finally:
            running.release()
        for result in results:
            log.info(
                "dialer: task %s %s %s %s",
                result.task_id,
                result.action,
                result.outcome or "",
                result.task_state or "",
            )
        return len(results)

    sweep = huey.periodic_task(SWEEP_SCHEDULE, name="dialer_sweep")(dialer_sweep)
    return DialerTasks(sweep=sweep)


def run_worker(settings: Settings, *, workers: int | None = None) -> int:
    """Run ``callcenter worker``: a Huey consumer with the periodic sweeps and the
    transcription jobs, until stopped."""
    huey = build_huey(settings)
    register_dialer_tasks(huey, settings)
    register_on_demand_tasks(huey, settings)
    register_command_tasks(huey, settings)  # the panel's QueuePause when it runs alone
    speech = register_speech_tasks(huey, settings)
    register_maintenance_tasks(huey, settings, transcribe=speech.transcribe_call)
    register_followup_tasks(huey, settings)  # first-visit series, reminders, care, NPS, …
    count = workers if workers is not None else settings.worker_threads
    log.info("worker: Huey %s, %d thread(s)", type(huey).__name__, count)
    consumer = WorkerConsumer(huey, workers=count, worker_type="thread", periodic=True)
    consumer.run()
    return 0
