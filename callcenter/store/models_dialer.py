"""Tables of the dialer part of the store (registered on ``models.Base``).

``task_leases``: which dialer holds a task and until when (one row per task, kept after the
lease ends, so a re-claim can tell that a call may already have been placed).
``clinic_settings_history``: every saved ``ClinicSchedule`` as JSON, who saved it and when;
the newest row is in force.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base


class TaskLease(Base):
    """A dialer's claim on a task: nobody else dials it until ``lease_until``."""

    __tablename__ = "task_leases"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]
    lease_until: Mapped[datetime] = mapped_column(index=True)
    # The Originate sent under this lease (None until sent; cleared when the attempt is done).
    action_id: Mapped[str | None] = mapped_column(String(64))


class ClinicSettingsVersion(Base):
    """One saved version of the clinic's calling rules."""

    __tablename__ = "clinic_settings_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_json: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(index=True)
    note: Mapped[str | None] = mapped_column(String)
