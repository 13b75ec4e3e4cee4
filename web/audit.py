"""``audit_access``: one line in the audit log for each time a page shows personal data.

Call it from a view that opens a patient card, a transcript or a recording::

    audit_access("open_card", "patient", patient_id)

It records the logged-in user, the action, the subject and the time in its own short
transaction, and logs (never raises) when that fails: a broken audit write must not break the
page. On SQLite, call it outside your own open session (every SQLite transaction takes the write
lock, so a second one would wait for the first until the busy timeout).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from callcenter.store.audit import record_access
from web.security import current_user

logger = logging.getLogger(__name__)

#: Actions the panel records; any other short name is stored as given.
ACTIONS = ("open_card", "open_transcript", "play_recording", "forget", "export")
#: Who the log names when a request has no logged-in user.
ANONYMOUS = "(аноним)"


def audit_access(action: str, subject_kind: str, subject_id: str | int) -> None:
    """Record that the current user did ``action`` on ``subject_kind`` ``subject_id`` just now."""
    from web import db

    user = current_user()
    username = user.username if user is not None else ANONYMOUS
    try:
        with db().begin() as session:
            record_access(
                session,
                user=username,
                action=action,
                subject_kind=subject_kind,
                subject_id=subject_id,
                at=datetime.now(UTC),
            )
    except Exception:
        logger.exception(
            "audit entry not stored",
            extra={"action": action, "subject_kind": subject_kind, "user": username},
        )
