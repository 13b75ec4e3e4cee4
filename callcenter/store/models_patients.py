"""Tables of the patients part of the store (registered on ``models.Base``).

Patients with their phones, visits, personal notes and consent history, plus the do-not-call
list. The card query reads one patient's rows by ``patient_id``, so every child table leads with
that column in an index (a patient with 200 visits and 500 calls still assembles in a few ms).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.store.models import Base

VISIT_STATUSES = ("scheduled", "completed", "no_show", "cancelled")
CONSENT_KINDS = ("pd", "marketing")
CONSENT_ACTIONS = ("given", "withdrawn")


def _in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({listed})"


class Patient(Base):
    """A clinic's patient."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    doctor: Mapped[str | None] = mapped_column(String(200))  # the attending doctor
    insurance_company: Mapped[str | None] = mapped_column(String(200))  # ДМС insurer
    policy_end: Mapped[date | None] = mapped_column(Date)  # last day the ДМС policy covers

    phones: Mapped[list[PatientPhone]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientPhone.id"
    )


class PatientPhone(Base):
    """One of a patient's numbers, E.164; a number belongs to one patient only."""

    __tablename__ = "patient_phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    phone: Mapped[str] = mapped_column(String(20), unique=True)

    patient: Mapped[Patient] = relationship(back_populates="phones")


class Visit(Base):
    """A booked, completed, missed or cancelled visit."""

    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(_in("status", VISIT_STATUSES), name="status"),
        # The card reads a patient's visits newest first.
        Index("ix_visits_patient_id_visit_date", "patient_id", "visit_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    visit_date: Mapped[date] = mapped_column(Date)
    doctor: Mapped[str | None] = mapped_column(String(200))
    service: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    # When the appointment was made: a booking after a missed call wins the patient back.
    booked_at: Mapped[datetime | None]


class PatientNote(Base):
    """A personal note an administrator left on a patient («боится анестезии»)."""

    __tablename__ = "patient_notes"
    __table_args__ = (Index("ix_patient_notes_patient_id_created_at", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]


class ConsentRecord(Base):
    """One consent given or withdrawn (152-ФЗ); the history is kept, never overwritten."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint(_in("kind", CONSENT_KINDS), name="kind"),
        CheckConstraint(_in("action", CONSENT_ACTIONS), name="action"),
        Index("ix_consent_records_patient_id_at", "patient_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "pd" | "marketing"
    action: Mapped[str] = mapped_column(String(16))  # "given" | "withdrawn"
    at: Mapped[datetime]
    by: Mapped[str | None] = mapped_column(String(100))  # who recorded it
    channel: Mapped[str | None] = mapped_column(String(32))  # how: "paper", "phone", "import"…


class DoNotCall(Base):
    """A number that asked never to be called, kept as a SHA-256 of its E.164 form.

    The hash, not the number, so the entry can outlive the patient's "forget me" request.
    """

    __tablename__ = "do_not_call"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime]
    by: Mapped[str | None] = mapped_column(String(100))
