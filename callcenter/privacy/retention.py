"""Retention: delete recordings and transcripts older than ``RETENTION_DAYS``.

A recording is a file under ``RECORDINGS_DIR`` named by a call; a transcript is a row with its
text and words, plus the call's tags. Both go once the call is older than the retention period;
the call stays with its counts and disposition (its ``recording`` is cleared). A dry run deletes
nothing and reports what would go. Runs are idempotent: a second run finds nothing to do.
Files are deleted before the transaction that clears their references commits, so a crash
leaves at worst a reference to a missing file, which the next run clears.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from callcenter.privacy.files import FileOutcome, delete_recording
from callcenter.store import audit, privacy

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: Calls (and transcripts) handled per transaction.
BATCH = 500
#: Who the audit log names for a retention run.
SYSTEM_USER = "system:retention"


@dataclass(slots=True)
class RetentionReport:
    """What one run deleted (or, in a dry run, would delete)."""

    cutoff: datetime
    dry_run: bool
    recordings_deleted: list[str] = field(default_factory=list)
    recordings_missing: list[str] = field(default_factory=list)
    recordings_failed: list[str] = field(default_factory=list)
    calls_cleared: int = 0
    transcripts_deleted: int = 0
    tags_deleted: int = 0

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain data (the CLI prints it as JSON)."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "recordings_deleted": len(self.recordings_deleted),
            "recordings_missing": len(self.recordings_missing),
            "recordings_failed": len(self.recordings_failed),
            "calls_cleared": self.calls_cleared,
            "transcripts_deleted": self.transcripts_deleted,
            "tags_deleted": self.tags_deleted,
            "files": sorted(self.recordings_deleted),
        }

    @property
    def anything(self) -> bool:
        return bool(
            self.recordings_deleted
            or self.recordings_missing
            or self.calls_cleared
            or self.transcripts_deleted
        )


def run_retention(
    session_factory: sessionmaker[Session],
    *,
    recordings_dir: str | os.PathLike[str],
    days: int,
    now: datetime | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    user: str = SYSTEM_USER,
) -> RetentionReport | None:
    """Delete recordings and transcripts of calls older than ``days`` days.

    Returns None when ``days`` is 0 (keep forever). Logs every deleted file name and the
    totals, and records a real run that deleted anything in the audit log.

    :raises ValueError: negative ``days`` or a batch below 1.
    """
    if days < 0:
        raise ValueError(f"retention days must be 0 (keep forever) or more, got {days}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if days == 0:
        log.info("retention: RETENTION_DAYS is 0, everything is kept")
        return None
    at = now or datetime.now(UTC)
    report = RetentionReport(cutoff=at - timedelta(days=days), dry_run=dry_run)
    _recordings(session_factory, report, recordings_dir=recordings_dir, batch=batch)
    _transcripts(session_factory, report, batch=batch)
    verb = "would delete" if dry_run else "deleted"
    log.info(
        "retention: %s %d recording(s), %d transcript(s), %d tag(s) of calls before %s"
        " (%d file(s) already missing, %d not deletable)",
        verb,
        len(report.recordings_deleted),
        report.transcripts_deleted,
        report.tags_deleted,
        report.cutoff.isoformat(),
        len(report.recordings_missing),
        len(report.recordings_failed),
    )
    if not dry_run and report.anything:
        with session_factory.begin() as session:
            audit.record_access(
                session,
                user=user,
                action="retention",
                subject_kind="retention",
                subject_id=report.cutoff.date().isoformat(),
                at=at,
                detail={
                    "days": days,
                    "recordings": len(report.recordings_deleted),
                    "transcripts": report.transcripts_deleted,
                    "tags": report.tags_deleted,
                },
            )
    return report


def _recordings(
    session_factory: sessionmaker[Session],
    report: RetentionReport,
    *,
    recordings_dir: str | os.PathLike[str],
    batch: int,
) -> None:
    after_id = 0
    verb = "would delete" if report.dry_run else "deleted"
    while True:
        with session_factory() as session:
            refs = privacy.recordings_before(
                session, before=report.cutoff, after_id=after_id, limit=batch
            )
            if not refs:
                return
            after_id = refs[-1].call_id
            cleared: list[int] = []
            for ref in refs:
                outcome = delete_recording(recordings_dir, ref.recording, dry_run=report.dry_run)
                name = os.path.basename(ref.recording)
                if outcome in (FileOutcome.DELETED, FileOutcome.WOULD_DELETE):
                    report.recordings_deleted.append(name)
                    log.info("retention: %s recording %s (call %s)", verb, name, ref.linkedid)
                    cleared.append(ref.call_id)
                elif outcome is FileOutcome.MISSING:
                    report.recordings_missing.append(name)
                    cleared.append(ref.call_id)
                else:
                    report.recordings_failed.append(name)
            if report.dry_run:
                report.calls_cleared += len(cleared)
                session.rollback()
            else:
                report.calls_cleared += privacy.clear_recordings(session, call_ids=cleared)
                session.commit()


def _transcripts(
    session_factory: sessionmaker[Session], report: RetentionReport, *, batch: int
) -> None:
    after_id = 0
    while True:
        with session_factory() as session:
            rows = privacy.transcripts_before(
                session, before=report.cutoff, after_id=after_id, limit=batch
            )
            if not rows:
                return
            after_id = rows[-1][0]
            linkedids = [linkedid for _, linkedid in rows]
            if report.dry_run:
                transcripts, tags = privacy.count_transcripts(session, linkedids=linkedids)
            else:
                transcripts, tags = privacy.delete_transcripts(session, linkedids=linkedids)
                session.commit()
            report.transcripts_deleted += transcripts
            report.tags_deleted += tags
