"""Reports: hourly rollups of the dashboard's figures, kept current by triggers.

``report_hours`` holds one row per computed UTC hour and ``report_hour_*`` that hour's calls
by disposition (with their waits, exactly), administrators, tags, objection calls and the
callback tasks opened in it. On PostgreSQL, row triggers on ``calls``, ``call_legs``,
``call_tags``, ``call_outcomes``, ``tasks``, ``task_events`` and ``task_attempts`` add the
hour of every changed call or task to ``report_stale_hours``; the dashboard recomputes stale
and missing hours before it reads (``callcenter.store.report_hours``). SQLite gets the tables but
no triggers: it computes the dashboard from the calls themselves.

Revision ID: 0013_report_hours
Revises: 0010_reports_rollup, 0004_web
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013_report_hours"
# Triggers go on call_outcomes (0004_web, merged here) and call_tags (0006_speech).
down_revision: str | Sequence[str] | None = ("0010_reports_rollup", "0004_web")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0006_speech"

# Plain types, not callcenter.store.models: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)

# The hour of a call, by its start, in UTC whatever the session's TimeZone.
_MARK_FUNCTION = """
CREATE FUNCTION report_mark_hour(started timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO report_stale_hours (hour)
    SELECT date_trunc('hour', started, 'UTC') WHERE started IS NOT NULL
    ON CONFLICT DO NOTHING
$$
"""

# Each trigger function marks the hour of the call(s) a changed row belongs to, before and
# after the change (an update may move a row from one call or hour to another).
_TRIGGER_FUNCTIONS = {
    "calls": """
        IF TG_OP <> 'INSERT' THEN PERFORM report_mark_hour(OLD.started_at); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM report_mark_hour(NEW.started_at); END IF;
    """,
    "call_legs": """
        IF TG_OP <> 'INSERT' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE id = OLD.call_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE id = NEW.call_id;
        END IF;
    """,
    "call_tags": """
        IF TG_OP <> 'INSERT' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE linkedid = OLD.linkedid;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE linkedid = NEW.linkedid;
        END IF;
    """,
}
_TRIGGER_FUNCTIONS["call_outcomes"] = _TRIGGER_FUNCTIONS["call_tags"]
_TRIGGER_FUNCTIONS["tasks"] = """
        IF TG_OP <> 'INSERT' THEN PERFORM report_mark_hour(OLD.opened_at); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM report_mark_hour(NEW.opened_at); END IF;
        -- The dropped calls that opened or joined the task count it by its opening.
        IF TG_OP = 'UPDATE' THEN
            PERFORM report_mark_hour(c.started_at)
            FROM task_events e JOIN calls c ON c.linkedid = e.call_linkedid
            WHERE e.task_id = NEW.id;
        END IF;
"""
_TRIGGER_FUNCTIONS["task_events"] = """
        IF TG_OP <> 'INSERT' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE linkedid = OLD.call_linkedid;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM report_mark_hour(started_at) FROM calls WHERE linkedid = NEW.call_linkedid;
        END IF;
"""
_TRIGGER_FUNCTIONS["task_attempts"] = """
        IF TG_OP <> 'INSERT' THEN
            PERFORM report_mark_hour(opened_at) FROM tasks WHERE id = OLD.task_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM report_mark_hour(opened_at) FROM tasks WHERE id = NEW.task_id;
        END IF;
"""

# Updates of columns no figure reads (a recording's path, a transcript's status) mark nothing.
_UPDATE_COLUMNS = {
    "calls": "linkedid, direction, disposition, phone, agent, last_agent, wait_s, "
    "queue_wait_s, started_at, start_ts, callback_task",
    "call_legs": "call_id, agent, answered_at, ended_at, outcome",
    "call_tags": "linkedid, tag",
    "call_outcomes": "linkedid, outcome",
    "tasks": "reason, status, opened_at, closed_at, close_reason",
    "task_events": "task_id, kind, call_linkedid",
    "task_attempts": "task_id, started_at, outcome",
}


def _hour_key() -> sa.Column[datetime]:
    return sa.Column("hour", UTC_DATETIME, nullable=False)


def _hour_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["hour"],
        ["report_hours.hour"],
        name=op.f(f"fk_{table}_hour_report_hours"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the rollup tables and, on PostgreSQL, the functions and triggers."""
    op.create_table(
        "report_hours",
        _hour_key(),
        sa.Column("tagged", sa.Integer(), nullable=False),
        sa.Column("drop_tasks", sa.LargeBinary(), nullable=False),
        sa.Column("computed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_report_hours")),
    )
    op.create_table(
        "report_stale_hours",
        _hour_key(),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_report_stale_hours")),
    )
    op.create_table(
        "report_hour_calls",
        _hour_key(),
        sa.Column("disposition", sa.String(length=24), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("waits", sa.LargeBinary(), nullable=False),
        sa.Column("sl_waits", sa.LargeBinary(), nullable=False),
        _hour_fk("report_hour_calls"),
        sa.PrimaryKeyConstraint("hour", "disposition", name=op.f("pk_report_hour_calls")),
    )
    op.create_table(
        "report_hour_tasks",
        _hour_key(),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("to_attempt", sa.LargeBinary(), nullable=False),
        sa.Column("to_contact", sa.LargeBinary(), nullable=False),
        sa.Column("still_open", sa.Integer(), nullable=False),
        sa.Column("unreachable", sa.Integer(), nullable=False),
        _hour_fk("report_hour_tasks"),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_report_hour_tasks")),
    )
    op.create_table(
        "report_hour_agents",
        _hour_key(),
        sa.Column("agent", sa.String(length=32), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("talks", sa.LargeBinary(), nullable=False),
        sa.Column("callbacks", sa.Integer(), nullable=False),
        _hour_fk("report_hour_agents"),
        sa.PrimaryKeyConstraint("hour", "agent", name=op.f("pk_report_hour_agents")),
    )
    op.create_table(
        "report_hour_tags",
        _hour_key(),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        _hour_fk("report_hour_tags"),
        sa.PrimaryKeyConstraint("hour", "tag", name=op.f("pk_report_hour_tags")),
    )
    op.create_table(
        "report_hour_objections",
        _hour_key(),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("last_agent", sa.String(length=32), nullable=True),
        sa.Column("agent", sa.String(length=32), nullable=True),
        sa.Column("booked", sa.Boolean(), nullable=False),
        _hour_fk("report_hour_objections"),
        sa.PrimaryKeyConstraint("hour", "linkedid", "tag", name=op.f("pk_report_hour_objections")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_MARK_FUNCTION)
    for table, body in _TRIGGER_FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION report_mark_{table}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body}\n    RETURN NULL;\nEND\n$$"
        )
        op.execute(
            f"CREATE TRIGGER report_mark_{table} "
            f"AFTER INSERT OR DELETE OR UPDATE OF {_UPDATE_COLUMNS[table]} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION report_mark_{table}()"
        )


def downgrade() -> None:
    """Drop the triggers, functions and tables."""
    if op.get_bind().dialect.name == "postgresql":
        for table in _TRIGGER_FUNCTIONS:
            op.execute(f"DROP TRIGGER IF EXISTS report_mark_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS report_mark_{table}()")
        op.execute("DROP FUNCTION IF EXISTS report_mark_hour(timestamptz)")
    for table in (
        "report_hour_objections",
        "report_hour_tags",
        "report_hour_agents",
        "report_hour_tasks",
        "report_hour_calls",
        "report_stale_hours",
        "report_hours",
    ):
        op.drop_table(table)
