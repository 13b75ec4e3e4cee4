"""Reports: indexes for the supervisor's figures and call list.

Revision ID: 0007_reports
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_reports"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index tasks by opening time and calls for keyset paging and per-administrator filters."""
    op.create_index("ix_tasks_opened_at", "tasks", ["opened_at"])
    op.create_index("ix_calls_start_ts_id", "calls", ["start_ts", "id"])
    op.create_index("ix_calls_agent_start_ts", "calls", ["agent", "start_ts"])


def downgrade() -> None:
    """Drop the report indexes."""
    op.drop_index("ix_calls_agent_start_ts", table_name="calls")
    op.drop_index("ix_calls_start_ts_id", table_name="calls")
    op.drop_index("ix_tasks_opened_at", table_name="tasks")
