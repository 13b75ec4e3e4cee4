"""Dialer tasks: an operator's extension on a taken task, and the ``refused`` status.

Revision ID: 0008_dialer_tasks
Revises: 0003_dialer
Create Date: 2026-11-23

SQLite cannot alter a CHECK constraint, and rebuilding ``tasks`` (Alembic's batch mode) would
drop the old table with foreign keys on, which cascades into ``task_events``, ``task_attempts``
and ``task_leases``. The status constraint is only widened, which every stored row already
satisfies, so on SQLite the table's stored SQL is edited in place: the procedure SQLite
documents for changing CHECK constraints ("Making Other Kinds Of Table Schema Changes",
lang_altertable.html), with ``schema_version`` bumped so every connection re-reads the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_dialer_tasks"
down_revision: str | Sequence[str] | None = "0003_dialer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHECK = "status IN ('open', 'closed')"
NEW_CHECK = "status IN ('open', 'closed', 'refused')"


def _sqlite_replace_check(old: str, new: str) -> None:
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'"
    ).scalar_one()
    if old not in sql:
        raise RuntimeError(f"tasks: constraint {old!r} not found in the stored schema")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'tasks'",
            (sql.replace(old, new),),
        )
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"tasks: integrity check failed after the schema edit: {problems}")


def _replace_check(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_replace_check(old, new)
        return
    op.drop_constraint(op.f("ck_tasks_status"), "tasks", type_="check")
    op.create_check_constraint(op.f("ck_tasks_status"), "tasks", sa.text(new))


def upgrade() -> None:
    """Add tasks.assigned_extension; allow status 'refused'."""
    op.add_column("tasks", sa.Column("assigned_extension", sa.String(length=32), nullable=True))
    _replace_check(OLD_CHECK, NEW_CHECK)


def downgrade() -> None:
    """Refused tasks become closed ``refused`` again; drop the extension."""
    op.execute(
        "UPDATE tasks SET status = 'closed', close_reason = 'refused' WHERE status = 'refused'"
    )
    _replace_check(NEW_CHECK, OLD_CHECK)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("tasks", recreate="never") as batch:
            batch.drop_column("assigned_extension")
    else:
        op.drop_column("tasks", "assigned_extension")
