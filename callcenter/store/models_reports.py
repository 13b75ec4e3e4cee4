"""Indexes the supervisor reports need on existing tables (registered on ``models.Base``).

Declared here, next to migrations ``0007_reports`` and ``0010_reports_rollup``, so the schema
test sees them in the models.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base, Call, Task

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


# 0013_report_hours: hourly rollups of the dashboard's figures (PostgreSQL fills and reads
# them; see ``callcenter.store.report_hours``). A row per UTC hour that has been computed;
# triggers on the source tables mark an hour stale when a row of it changes.


class ReportHour(Base):
    """One computed UTC hour: its rollup rows below are current unless the hour is stale."""

    __tablename__ = "report_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    tagged: Mapped[int] = mapped_column(Integer)  # the hour's calls with any tag
    # The hour's dropped inbound calls that opened or joined a callback task, with each such
    # task's opening: packed big-endian float64 pairs (call id, opened_at as a UNIX time).
    drop_tasks: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[datetime]


class ReportStaleHour(Base):
    """An hour whose source rows changed after it was computed (written by triggers)."""

    __tablename__ = "report_stale_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)


def _hour_key() -> Mapped[datetime]:
    return mapped_column(ForeignKey("report_hours.hour", ondelete="CASCADE"), primary_key=True)


class ReportHourCalls(Base):
    """An hour's inbound calls of one disposition and their waits.

    ``waits``: the calls' queue waits (those that have one), ``sl_waits``: the answered calls'
    waits as the service level reads them (queue wait, else the wait); both packed big-endian
    float64 values in ascending order, so any threshold or percentile is exact.
    """

    __tablename__ = "report_hour_calls"

    hour: Mapped[datetime] = _hour_key()
    disposition: Mapped[str] = mapped_column(String(24), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    waits: Mapped[bytes] = mapped_column(LargeBinary)
    sl_waits: Mapped[bytes] = mapped_column(LargeBinary)


class ReportHourTasks(Base):
    """The callback tasks of dropped callers opened in an hour.

    ``to_attempt`` and ``to_contact``: seconds from the opening to the first attempt and to
    the first contact (those that have one), packed big-endian float64 values.
    """

    __tablename__ = "report_hour_tasks"

    hour: Mapped[datetime] = _hour_key()
    tasks: Mapped[int] = mapped_column(Integer)
    to_attempt: Mapped[bytes] = mapped_column(LargeBinary)
    to_contact: Mapped[bytes] = mapped_column(LargeBinary)
    still_open: Mapped[int] = mapped_column(Integer)
    unreachable: Mapped[int] = mapped_column(Integer)


class ReportHourAgents(Base):
    """An hour's inbound calls rung to one administrator, and their callbacks placed.

    ``talks``: each answered leg's talk time, packed big-endian float64 values.
    """

    __tablename__ = "report_hour_agents"

    hour: Mapped[datetime] = _hour_key()
    agent: Mapped[str] = mapped_column(String(32), primary_key=True)
    offered: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    missed: Mapped[int] = mapped_column(Integer)
    talks: Mapped[bytes] = mapped_column(LargeBinary)
    callbacks: Mapped[int] = mapped_column(Integer)


class ReportHourTags(Base):
    """An hour's calls with one tag."""

    __tablename__ = "report_hour_tags"

    hour: Mapped[datetime] = _hour_key()
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class ReportHourObjections(Base):
    """An hour's calls with an objection tag: what the objection figures start from."""

    __tablename__ = "report_hour_objections"

    hour: Mapped[datetime] = _hour_key()
    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    start_ts: Mapped[float] = mapped_column(Float)
    last_agent: Mapped[str | None] = mapped_column(String(32))
    agent: Mapped[str | None] = mapped_column(String(32))
    booked: Mapped[bool]
