"""Tag corrections: supervisors' additions and removals, kept apart from the tagger's tags.

Revision ID: 0009_tag_corrections
Revises: 0006_speech
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tag_corrections"
down_revision: str | Sequence[str] | None = "0006_speech"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as in 0001: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tag_corrections table."""
    op.create_table(
        "tag_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("action IN ('add', 'remove')", name=op.f("ck_tag_corrections_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_corrections")),
    )
    op.create_index(op.f("ix_tag_corrections_linkedid"), "tag_corrections", ["linkedid"])
    op.create_index(op.f("ix_tag_corrections_tag"), "tag_corrections", ["tag"])


def downgrade() -> None:
    """Drop the tag_corrections table."""
    op.drop_index(op.f("ix_tag_corrections_tag"), table_name="tag_corrections")
    op.drop_index(op.f("ix_tag_corrections_linkedid"), table_name="tag_corrections")
    op.drop_table("tag_corrections")
