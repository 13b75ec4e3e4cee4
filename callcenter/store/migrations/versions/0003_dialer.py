"""Dialer: task leases and the clinic settings history.

Revision ID: 0003_dialer
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dialer"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as in 0001: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create task_leases and clinic_settings_history."""
    op.create_table(
        "task_leases",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", UTC_DATETIME, nullable=False),
        sa.Column("lease_until", UTC_DATETIME, nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_leases_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_leases")),
    )
    op.create_index(op.f("ix_task_leases_lease_until"), "task_leases", ["lease_until"])
    op.create_table(
        "clinic_settings_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_json", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("changed_at", UTC_DATETIME, nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_settings_history")),
    )
    op.create_index(
        op.f("ix_clinic_settings_history_changed_at"), "clinic_settings_history", ["changed_at"]
    )


def downgrade() -> None:
    """Drop the dialer's tables."""
    op.drop_table("clinic_settings_history")
    op.drop_table("task_leases")
