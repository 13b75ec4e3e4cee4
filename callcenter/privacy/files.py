"""Deleting recording files under ``RECORDINGS_DIR``, never outside it."""

from __future__ import annotations

import logging
import os
from enum import StrEnum

log = logging.getLogger(__name__)


class FileOutcome(StrEnum):
    """What happened to one recording file."""

    DELETED = "deleted"
    MISSING = "missing"  # already gone: the reference is cleared all the same
    WOULD_DELETE = "would_delete"  # a dry run found it
    FAILED = "failed"  # could not be deleted (permissions…): the reference is kept


def recording_file(recordings_dir: str | os.PathLike[str], recording: str) -> str:
    """Return the recording's file; only its base name counts, as for the transcription job.

    >>> recording_file("/var/spool/asterisk/monitor", "../../etc/passwd")
    '/var/spool/asterisk/monitor/passwd'
    """
    return os.path.join(os.fspath(recordings_dir), os.path.basename(recording))


def delete_recording(
    recordings_dir: str | os.PathLike[str], recording: str, *, dry_run: bool = False
) -> FileOutcome:
    """Delete one recording file (or say it would be deleted)."""
    path = recording_file(recordings_dir, recording)
    if not os.path.basename(recording):
        return FileOutcome.MISSING
    if dry_run:
        return FileOutcome.WOULD_DELETE if os.path.isfile(path) else FileOutcome.MISSING
    try:
        os.remove(path)
    except FileNotFoundError:
        return FileOutcome.MISSING
    except OSError as exc:
        log.error("could not delete recording %s: %s", path, exc)
        return FileOutcome.FAILED
    return FileOutcome.DELETED
