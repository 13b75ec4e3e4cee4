"""Tables of the follow-up part of the store (registered on ``models.Base``).

``followups``: which follow-up was opened (or stopped) for which patient, reason, anchor visit
and step of a series. The unique key (patient, reason, anchor visit, step) makes the sweep
idempotent: a follow-up is opened at most once, ever, even after its task was closed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base
from callcenter.store.models_patients import ConsentRecord, Visit

# Indexes the sweep needs on the patients part's tables (declared here, created by migration
# 0012_followups, so the patients part's files stay untouched):
# visits by day across all patients (reminders, recent visits, the sleeping window), covering;
IX_VISITS_VISIT_DATE_STATUS = Index(
    "ix_visits_visit_date_status",
    Visit.__table__.c.visit_date,
    Visit.__table__.c.status,
    Visit.__table__.c.patient_id,
)
# a patient's completed visits after a day ("is this the last one?"), covering;
IX_VISITS_PATIENT_ID_STATUS_VISIT_DATE = Index(
    "ix_visits_patient_id_status_visit_date",
    Visit.__table__.c.patient_id,
    Visit.__table__.c.status,
    Visit.__table__.c.visit_date,
)
# whether a patient ever gave a consent of a kind (the sleeping patients' pre-filter), covering.
IX_CONSENT_RECORDS_PATIENT_ID_KIND_ACTION = Index(
    "ix_consent_records_patient_id_kind_action",
    ConsentRecord.__table__.c.patient_id,
    ConsentRecord.__table__.c.kind,
    ConsentRecord.__table__.c.action,
)

FOLLOWUP_OPENED = "opened"  # a task was opened for it
FOLLOWUP_STOPPED = "stopped"  # a series step that will not happen (a booking appeared)


class FollowupRecord(Base):
    """One follow-up of a patient: opened once as a task, or stopped before it was due."""

    __tablename__ = "followups"
    __table_args__ = (
        CheckConstraint("status IN ('opened', 'stopped')", name="status"),
        UniqueConstraint("patient_id", "reason", "anchor_visit_id", "step"),
        # The sweep reads the records of recent anchors and those opened on the current day.
        Index("ix_followups_anchor_date", "anchor_date"),
        Index("ix_followups_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    anchor_visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    anchor_date: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(Integer)  # 1.. for the first-visit series, else 0
    status: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime]
