"""Indexes the supervisor reports need on existing tables (registered on ``models.Base``).

Declared here, next to migrations ``0007_reports`` and ``0010_reports_rollup``, so the schema
test sees them in the models.
"""

from __future__ import annotations

from sqlalchemy import Index

from callcenter.store.models import Call, Task

#: The dropped-caller figures read tasks opened in a period.
IX_TASKS_OPENED_AT = Index("ix_tasks_opened_at", Task.opened_at)
#: The call list pages newest first by (start_ts, id) and filters by administrator.
IX_CALLS_START_TS_ID = Index("ix_calls_start_ts_id", Call.start_ts, Call.id)
IX_CALLS_AGENT_START_TS = Index("ix_calls_agent_start_ts", Call.agent, Call.start_ts)

# 0010_reports_rollup: the dashboard's GROUP BY reads the period's calls from one index alone
# (an index-only scan on PostgreSQL, a covering index on SQLite), and each call-list filter
# has an index that walks its calls newest first, so a first page stops after 50 rows.
IX_CALLS_REPORT = Index(
    "ix_calls_report",
    Call.started_at,
    Call.direction,
    Call.disposition,
    Call.start_ts,
    Call.queue_wait_s,
    Call.wait_s,
)
IX_CALLS_DISPOSITION_START_TS = Index(
    "ix_calls_disposition_start_ts", Call.disposition, Call.start_ts, Call.id
)
IX_CALLS_LAST_AGENT_START_TS = Index("ix_calls_last_agent_start_ts", Call.last_agent, Call.start_ts)
IX_CALLS_PHONE_START_TS = Index("ix_calls_phone_start_ts", Call.phone, Call.start_ts)
