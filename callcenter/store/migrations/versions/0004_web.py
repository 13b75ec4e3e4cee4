"""Web: users who log in to the panel, and the outcomes operators record after calls.

Revision ID: 0004_web
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_web"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as in 0001: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the users and call_outcomes tables."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("extension", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("role IN ('operator', 'supervisor')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "call_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('booked', 'callback_requested', 'not_interested', 'do_not_call',"
            " 'wrong_number')",
            name=op.f("ck_call_outcomes_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_outcomes")),
    )
    op.create_index(op.f("ix_call_outcomes_linkedid"), "call_outcomes", ["linkedid"])
    op.create_index(op.f("ix_call_outcomes_at"), "call_outcomes", ["at"])


def downgrade() -> None:
    """Drop the web tables."""
    op.drop_index(op.f("ix_call_outcomes_at"), table_name="call_outcomes")
    op.drop_index(op.f("ix_call_outcomes_linkedid"), table_name="call_outcomes")
    op.drop_table("call_outcomes")
    op.drop_table("users")
