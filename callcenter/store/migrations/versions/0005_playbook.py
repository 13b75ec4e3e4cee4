"""Playbook: stored versions of the scripts a supervisor edits.

Revision ID: 0005_playbook
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_playbook"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, not callcenter.store.models: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the script_versions table."""
    op.create_table(
        "script_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_versions")),
        sa.UniqueConstraint(
            "script_id", "version", name=op.f("uq_script_versions_script_id_version")
        ),
    )


def downgrade() -> None:
    """Drop the script_versions table."""
    op.drop_table("script_versions")
