"""Follow-ups: the record of which follow-up call was opened for which patient and visit, and
the indexes the sweep reads visits and consent records by.

Revision ID: 0012_followups
Revises: 0002_patients
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_followups"
down_revision: str | Sequence[str] | None = "0002_patients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, not callcenter.store.models: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the followups table and the indexes the sweep reads visits and consents by."""
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("anchor_visit_id", sa.Integer(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("status IN ('opened', 'stopped')", name=op.f("ck_followups_status")),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_followups_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["anchor_visit_id"],
            ["visits.id"],
            name=op.f("fk_followups_anchor_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_followups_task_id_tasks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
        sa.UniqueConstraint(
            "patient_id",
            "reason",
            "anchor_visit_id",
            "step",
            name=op.f("uq_followups_patient_id_reason_anchor_visit_id_step"),
        ),
    )
    op.create_index("ix_followups_anchor_date", "followups", ["anchor_date"])
    op.create_index("ix_followups_created_at", "followups", ["created_at"])
    op.create_index(op.f("ix_followups_task_id"), "followups", ["task_id"])
    # What the sweep reads on the patients part's tables (see models_followups).
    op.create_index("ix_visits_visit_date_status", "visits", ["visit_date", "status", "patient_id"])
    op.create_index(
        "ix_visits_patient_id_status_visit_date", "visits", ["patient_id", "status", "visit_date"]
    )
    op.create_index(
        "ix_consent_records_patient_id_kind_action",
        "consent_records",
        ["patient_id", "kind", "action"],
    )


def downgrade() -> None:
    """Drop the followups table and the sweep's indexes."""
    op.drop_index("ix_consent_records_patient_id_kind_action", table_name="consent_records")
    op.drop_index("ix_visits_patient_id_status_visit_date", table_name="visits")
    op.drop_index("ix_visits_visit_date_status", table_name="visits")
    op.drop_index(op.f("ix_followups_task_id"), table_name="followups")
    op.drop_index("ix_followups_created_at", table_name="followups")
    op.drop_index("ix_followups_anchor_date", table_name="followups")
    op.drop_table("followups")
