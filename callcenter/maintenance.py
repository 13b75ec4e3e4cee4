"""Periodic maintenance on Huey: retention of recordings and transcripts, the sweep that
re-queues transcription jobs that failed or were lost, and (PostgreSQL) the refresh of the
dashboard's hourly rollups, so the first dashboard after a busy hour finds them computed.

``register_maintenance_tasks(huey, settings, transcribe=…)`` registers both on the worker's
Huey; ``requeue_transcriptions`` and ``callcenter.privacy.retention.run_retention`` are the
plain functions the tasks run (tests and the CLI call them directly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from huey import Huey, crontab

from callcenter.config import Settings
from callcenter.privacy.retention import run_retention
from callcenter.store import requeue
from callcenter.store.db import LazySessions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: Retention runs once a day, at night in UTC (early morning in Moscow).
RETENTION_SCHEDULE = crontab(minute="17", hour="1")
#: The re-queue sweep runs every five minutes.
REQUEUE_SCHEDULE = crontab(minute="*/5")
#: The dashboard's hourly rollups of the last ``REPORT_WARM_DAYS`` are refreshed every five
#: minutes (a dashboard refreshes its own period's stale hours anyway; this only keeps them
#: warm). The span covers a 30-day period and its win-back window.
REPORT_HOURS_SCHEDULE = crontab(minute="*/5")
REPORT_WARM_DAYS = 45
#: Calls re-queued per sweep at most (a backlog drains over several sweeps).
REQUEUE_BATCH = 200


@dataclass(frozen=True, slots=True)
class RequeueResult:
    """What one sweep did: the calls it queued again."""

    requeued: tuple[str, ...]
    failed_to_queue: tuple[str, ...] = ()


def requeue_transcriptions(
    session_factory: sessionmaker[Session],
    *,
    enqueue: Callable[[str], Any],
    after_minutes: int,
    max_requeues: int,
    now: datetime | None = None,
    batch: int = REQUEUE_BATCH,
) -> RequeueResult:
    """Queue again the transcription of recorded calls that have none finished
    ``after_minutes`` after they ended (see ``store.requeue``); idempotent.

    The re-queue is counted in the database before the job is queued, so a crash between the
    two loses one attempt, never queues twice; a failure to queue is logged and the call comes
    up again after ``after_minutes``.

    :raises ValueError: ``after_minutes`` below 1, negative ``max_requeues``, ``batch`` below 1.
    """
    if after_minutes < 1:
        raise ValueError(f"after_minutes must be at least 1, got {after_minutes}")
    if max_requeues < 0:
        raise ValueError(f"max_requeues must be 0 or more, got {max_requeues}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if max_requeues == 0:
        return RequeueResult(requeued=())
    at = now or datetime.now(UTC)
    stale_before = at - timedelta(minutes=after_minutes)
    with session_factory.begin() as session:
        candidates = requeue.requeue_candidates(
            session, ended_before=stale_before, max_requeues=max_requeues, limit=batch
        )
    claimed: list[str] = []
    for linkedid in candidates:
        with session_factory.begin() as session:
            count = requeue.claim_requeue(
                session,
                linkedid=linkedid,
                now=at,
                not_since=stale_before,
                max_requeues=max_requeues,
            )
        if count is not None:
            claimed.append(linkedid)
            log.info("transcription of %s queued again (%d of %d)", linkedid, count, max_requeues)
    failed: list[str] = []
    for linkedid in claimed:
        try:
            enqueue(linkedid)
        except Exception:
            log.exception("could not queue the transcription of %s again", linkedid)
            failed.append(linkedid)
    return RequeueResult(
        requeued=tuple(x for x in claimed if x not in failed), failed_to_queue=tuple(failed)
    )


def refresh_report_hours(
    session_factory: sessionmaker[Session], *, now: datetime | None = None
) -> int:
    """Recompute the stale and missing hours of the last ``REPORT_WARM_DAYS`` (PostgreSQL;
    nothing elsewhere); return how many."""
    from callcenter.store import report_hours

    return report_hours.refresh_recent(session_factory, days=REPORT_WARM_DAYS, now=now)


@dataclass(frozen=True, slots=True)
class MaintenanceTasks:
    """The Huey tasks ``register_maintenance_tasks`` registered."""

    retention: Any  # huey.api.PeriodicTask
    report_hours: Any  # huey.api.PeriodicTask
    requeue: Any | None  # huey.api.PeriodicTask, None without a transcription task
    close: Callable[[], None]


def register_maintenance_tasks(
    huey: Huey,
    settings: Settings,
    *,
    transcribe: Callable[[str], Any] | None = None,
    session_factory: sessionmaker[Session] | None = None,
) -> MaintenanceTasks:
    """Register the daily retention job and, given the ``transcribe`` task (``transcribe_call``
    of ``register_speech_tasks``), the re-queue sweep.

    The tasks open the database from ``settings`` on first use, or use ``session_factory``.
    """
    lazy = LazySessions(settings.database_url, given=session_factory)
    sessions, close = lazy, lazy.close

    def retention() -> dict[str, object] | None:
        report = run_retention(
            sessions(), recordings_dir=settings.recordings_dir, days=settings.retention_days
        )
        return None if report is None else report.as_dict()

    retention_task = huey.periodic_task(RETENTION_SCHEDULE, name="retention")(retention)

    def report_hours() -> int:
        return refresh_report_hours(sessions())

    report_hours_task = huey.periodic_task(REPORT_HOURS_SCHEDULE, name="report_hours")(report_hours)

    requeue_task = None
    if transcribe is not None:
        enqueue = transcribe

        def requeue_sweep() -> list[str]:
            result = requeue_transcriptions(
                sessions(),
                enqueue=enqueue,
                after_minutes=settings.transcribe_requeue_after_min,
                max_requeues=settings.transcribe_max_requeues,
            )
            return list(result.requeued)

        requeue_task = huey.periodic_task(REQUEUE_SCHEDULE, name="transcription_requeue")(
            requeue_sweep
        )
    else:
        log.warning("no transcription task given: failed transcriptions are not re-queued")
    return MaintenanceTasks(
        retention=retention_task,
        report_hours=report_hours_task,
        requeue=requeue_task,
        close=close,
    )
