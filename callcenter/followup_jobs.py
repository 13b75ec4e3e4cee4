"""The follow-up sweep on Huey, and one sweep on demand (``callcenter followups``).

``register_followup_tasks(huey, settings)`` adds a periodic task that runs
``store.followups.sweep_followups`` every ``FOLLOWUP_SWEEP_SCHEDULE`` (ten minutes: windows are
clinic days, and a sweep costs well under a second for a clinic of 100,000 patients). The sweep
opens tasks only; the dialer's own sweep calls them. Sweeps on several machines at once are
safe: they serialize on a database lock and the follow-up records are unique.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from huey import Huey, crontab

from callcenter.config import Settings
from callcenter.store.db import LazySessions
from callcenter.store.dialer import load_clinic_schedule
from callcenter.store.followups import SweepReport, sweep_followups
from callcenter.tasks.followups import DEFAULT_RULES, FollowupRules
from callcenter.tasks.schedule import ClinicSchedule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: Every ten minutes, on the tens.
FOLLOWUP_SWEEP_SCHEDULE = crontab(minute="*/10")


def run_followup_sweep(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    default_schedule: ClinicSchedule,
    rules: FollowupRules = DEFAULT_RULES,
    dry_run: bool = False,
    limit: int | None = None,
) -> SweepReport:
    """Run one sweep in its own transaction with the clinic's schedule in force; a dry run
    rolls back whatever it read."""
    with sessions() as session:
        schedule = load_clinic_schedule(session, default=default_schedule)
        report = sweep_followups(
            session, now=now, schedule=schedule, rules=rules, dry_run=dry_run, limit=limit
        )
        if dry_run:
            session.rollback()
        else:
            session.commit()
    return report


def log_report(report: SweepReport) -> None:
    """Log what a sweep did, one line (numbers only: no phone numbers in the logs)."""
    opened: dict[str, int] = {}
    for item in report.opened:
        opened[item.reason] = opened.get(item.reason, 0) + 1
    closed: dict[str, int] = {}
    for done in report.closed:
        closed[done.close_reason] = closed.get(done.close_reason, 0) + 1
    log.info(
        "followups: opened %s, closed %s, stopped %d step(s), skipped %s",
        opened or "{}",
        closed or "{}",
        report.stopped_steps,
        report.skipped_by_why or "{}",
    )


@dataclass(frozen=True, slots=True)
class FollowupTasks:
    """The Huey task ``register_followup_tasks`` registered."""

    sweep: Any  # huey.api.PeriodicTask
    close: Callable[[], None]  # dispose of the engine the task opened, if it opened one


def register_followup_tasks(
    huey: Huey,
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    limit: int | None = None,
) -> FollowupTasks:
    """Register the periodic follow-up sweep on ``huey``.

    The task opens the database from ``settings`` on first use (one engine per process), or
    uses ``session_factory`` when given (tests, one-process set-ups).
    """
    lazy = LazySessions(settings.database_url, given=session_factory)
    sessions, close = lazy, lazy.close
    running = threading.Lock()
    default_schedule = ClinicSchedule(tz=settings.timezone)

    def followup_sweep() -> dict[str, Any]:
        if not running.acquire(blocking=False):
            log.info("followup sweep still running in this process; skipped")
            return {"skipped": True}
        try:
            report = run_followup_sweep(
                sessions(), now=clock(), default_schedule=default_schedule, limit=limit
            )
        finally:
            running.release()
        log_report(report)
        return {
            "opened": len(report.opened),
            "closed": len(report.closed),
            "stopped_steps": report.stopped_steps,
            "skipped": report.skipped_by_why,
        }

    sweep = huey.periodic_task(FOLLOWUP_SWEEP_SCHEDULE, name="followup_sweep")(followup_sweep)
    return FollowupTasks(sweep=sweep, close=close)
