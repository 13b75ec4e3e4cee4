"""Indexes the supervisor reports need on existing tables (registered on ``models.Base``).

Declared here, next to migration ``0007_reports``, so the schema test sees them in the models.
"""

from __future__ import annotations

from sqlalchemy import Index

from callcenter.store.models import Call, Task

#: The dropped-caller figures read tasks opened in a period.
IX_TASKS_OPENED_AT = Index("ix_tasks_opened_at", Task.opened_at)
#: The call list pages newest first by (start_ts, id) and filters by administrator.
IX_CALLS_START_TS_ID = Index("ix_calls_start_ts_id", Call.start_ts, Call.id)
IX_CALLS_AGENT_START_TS = Index("ix_calls_agent_start_ts", Call.agent, Call.start_ts)
