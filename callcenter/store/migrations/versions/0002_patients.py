"""Patients: patients, their phones, visits, notes, consent records; the do-not-call list.

Revision ID: 0002_patients
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_patients"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, not callcenter.store.models: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def _patient_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["patient_id"],
        ["patients.id"],
        name=op.f(f"fk_{table}_patient_id_patients"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the patient tables."""
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("doctor", sa.String(length=200), nullable=True),
        sa.Column("insurance_company", sa.String(length=200), nullable=True),
        sa.Column("policy_end", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )

    op.create_table(
        "patient_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        _patient_fk("patient_phones"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_phones")),
        sa.UniqueConstraint("phone", name=op.f("uq_patient_phones_phone")),
    )
    op.create_index(op.f("ix_patient_phones_patient_id"), "patient_phones", ["patient_id"])

    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("doctor", sa.String(length=200), nullable=True),
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("booked_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('scheduled', 'completed', 'no_show', 'cancelled')",
            name=op.f("ck_visits_status"),
        ),
        _patient_fk("visits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    op.create_index("ix_visits_patient_id_visit_date", "visits", ["patient_id", "visit_date"])

    op.create_table(
        "patient_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        _patient_fk("patient_notes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_notes")),
    )
    op.create_index(
        "ix_patient_notes_patient_id_created_at", "patient_notes", ["patient_id", "created_at"]
    )

    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "action IN ('given', 'withdrawn')", name=op.f("ck_consent_records_action")
        ),
        sa.CheckConstraint("kind IN ('pd', 'marketing')", name=op.f("ck_consent_records_kind")),
        _patient_fk("consent_records"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index("ix_consent_records_patient_id_at", "consent_records", ["patient_id", "at"])

    op.create_table(
        "do_not_call",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_do_not_call")),
    )


def downgrade() -> None:
    """Drop the patient tables."""
    for table in (
        "do_not_call",
        "consent_records",
        "patient_notes",
        "visits",
        "patient_phones",
        "patients",
    ):
        op.drop_table(table)
