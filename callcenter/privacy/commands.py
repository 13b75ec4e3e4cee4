"""``callcenter retention`` and ``callcenter forget``: the command-line side of the privacy jobs.

Both print one JSON object (what was deleted) on standard output and return the exit code.
"""

from __future__ import annotations

import getpass
import json
from typing import TextIO

from callcenter.config import Settings
from callcenter.privacy.forget import BadPhone, forget_phone
from callcenter.privacy.retention import run_retention
from callcenter.store.db import create_db_engine, create_session_factory


def cli_user() -> str:
    """Return who the audit log names for a command run from a shell (``cli:<login>``)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"cli:{login}"[:64]


def run_retention_command(
    settings: Settings, *, dry_run: bool, days: int | None, out: TextIO, err: TextIO
) -> int:
    """Delete (or with ``dry_run`` list) recordings and transcripts older than the setting."""
    keep = settings.retention_days if days is None else days
    if keep < 0:
        print(f"callcenter retention: --days must be 0 or more, got {keep}", file=err)
        return 2
    if keep == 0:
        print(
            "callcenter retention: RETENTION_DAYS is 0 (keep forever); nothing to do"
            " (pass --days N to run once with another period)",
            file=err,
        )
        return 0
    engine = create_db_engine(settings.database_url)
    try:
        report = run_retention(
            create_session_factory(engine),
            recordings_dir=settings.recordings_dir,
            days=keep,
            dry_run=dry_run,
            user=cli_user(),
        )
    finally:
        engine.dispose()
    assert report is not None
    print(json.dumps(report.as_dict(), ensure_ascii=False), file=out)
    return 1 if report.recordings_failed else 0


def run_forget_command(
    settings: Settings, *, phone: str, add_do_not_call: bool, out: TextIO, err: TextIO
) -> int:
    """Forget the person with this number; print the counts (never the number)."""
    engine = create_db_engine(settings.database_url)
    try:
        report = forget_phone(
            create_session_factory(engine),
            phone=phone,
            recordings_dir=settings.recordings_dir,
            by=cli_user(),
            add_do_not_call=add_do_not_call,
        )
    except BadPhone as exc:
        print(f"callcenter forget: {exc}", file=err)
        return 2
    finally:
        engine.dispose()
    print(json.dumps({"phone_hash": report.phone_hash, **report.counts()}), file=out)
    return 1 if report.recordings_failed else 0
