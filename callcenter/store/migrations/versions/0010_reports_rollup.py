"""Reports: indexes for the dashboard's SQL aggregation and the call list's filters.

The figures are aggregated by the database (GROUP BY local day, hour and disposition;
percentiles in SQL) over the period's calls, read from one covering index; each call-list
filter walks an index newest first. No rollup tables: the thresholds are per request and the
percentiles are exact, so pre-aggregated buckets could not give the same figures.

Revision ID: 0010_reports_rollup
Revises: 0007_reports
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_reports_rollup"
down_revision: str | Sequence[str] | None = "0007_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the covering index of the dashboard and the call list's filter indexes."""
    op.create_index(
        "ix_calls_report",
        "calls",
        ["started_at", "direction", "disposition", "start_ts", "queue_wait_s", "wait_s"],
    )
    op.create_index("ix_calls_disposition_start_ts", "calls", ["disposition", "start_ts", "id"])
    op.create_index("ix_calls_last_agent_start_ts", "calls", ["last_agent", "start_ts"])
    op.create_index("ix_calls_phone_start_ts", "calls", ["phone", "start_ts"])


def downgrade() -> None:
    """Drop the indexes."""
    op.drop_index("ix_calls_phone_start_ts", table_name="calls")
    op.drop_index("ix_calls_last_agent_start_ts", table_name="calls")
    op.drop_index("ix_calls_disposition_start_ts", table_name="calls")
    op.drop_index("ix_calls_report", table_name="calls")
