"""Initial schema: calls, call legs, callback tasks with events and attempts, AMI gaps.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations spell out plain types instead of importing callcenter.store.models, so later model
# changes can never rewrite history. UtcDateTime is a DateTime(timezone=True) underneath.
UTC_DATETIME = sa.DateTime(timezone=True)
OPEN_TASK_WHERE = sa.text("status = 'open'")


def upgrade() -> None:
    """Create all tables."""
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("disposition", sa.String(length=24), nullable=False),
        sa.Column("caller", sa.String(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("caller_name", sa.String(), nullable=True),
        sa.Column("did", sa.String(length=32), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=32), nullable=True),
        sa.Column("agent_name", sa.String(), nullable=True),
        sa.Column("last_agent", sa.String(length=32), nullable=True),
        sa.Column("wait_s", sa.Float(), nullable=False),
        sa.Column("talk_s", sa.Float(), nullable=False),
        sa.Column("queue_wait_s", sa.Float(), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=False),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=False),
        sa.Column("recording", sa.String(), nullable=True),
        sa.Column("callback_task", sa.String(length=32), nullable=True),
        sa.Column("style", sa.String(length=24), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("transfers", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("linkedid", name=op.f("uq_calls_linkedid")),
    )
    op.create_index(op.f("ix_calls_phone"), "calls", ["phone"])
    op.create_index(op.f("ix_calls_started_at"), "calls", ["started_at"])

    op.create_table(
        "call_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=32), nullable=False),
        sa.Column("agent_name", sa.String(), nullable=True),
        sa.Column("rang_at", UTC_DATETIME, nullable=True),
        sa.Column("answered_at", UTC_DATETIME, nullable=True),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_legs_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_legs")),
    )
    op.create_index(op.f("ix_call_legs_call_id"), "call_legs", ["call_id"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("first_call_linkedid", sa.String(length=64), nullable=True),
        sa.Column("dropped_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_drop_started_ts", sa.Float(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('service', 'marketing')", name=op.f("ck_tasks_kind")),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_tasks_status")),
        sa.ForeignKeyConstraint(
            ["first_call_linkedid"],
            ["calls.linkedid"],
            name=op.f("fk_tasks_first_call_linkedid_calls"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_status_due_at", "tasks", ["status", "due_at"])
    # One open task per number: a partial unique index, which SQLite and PostgreSQL both support.
    op.create_index(
        "uq_tasks_open_phone",
        "tasks",
        ["phone"],
        unique=True,
        sqlite_where=OPEN_TASK_WHERE,
        postgresql_where=OPEN_TASK_WHERE,
    )

    op.create_table(
        "task_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("call_linkedid", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_linkedid"],
            ["calls.linkedid"],
            name=op.f("fk_task_events_call_linkedid_calls"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_events_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    op.create_index(op.f("ix_task_events_task_id"), "task_events", ["task_id"])

    op.create_table(
        "task_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("action_id", sa.String(length=64), nullable=True),
        sa.Column("call_linkedid", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_attempts_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_attempts")),
        sa.UniqueConstraint("action_id", name=op.f("uq_task_attempts_action_id")),
    )
    op.create_index(op.f("ix_task_attempts_task_id"), "task_attempts", ["task_id"])

    op.create_table(
        "ami_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("recovered_calls", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ami_gaps")),
    )
    op.create_index(op.f("ix_ami_gaps_started_at"), "ami_gaps", ["started_at"])


def downgrade() -> None:
    """Drop all tables."""
    for table in ("ami_gaps", "task_attempts", "task_events", "tasks", "call_legs", "calls"):
        # Dropping a table drops its indexes on both back-ends.
        op.drop_table(table)
