"""Speech: transcripts of call recordings, call tags, flagged phone numbers.

Revision ID: 0006_speech
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_speech"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as in 0001: later model changes must never rewrite history.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the transcripts, call_tags and phone_flags tables."""
    op.create_table(
        "transcripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("recording", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'done', 'no_audio', 'failed')",
            name=op.f("ck_transcripts_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcripts")),
        sa.UniqueConstraint("linkedid", name=op.f("uq_transcripts_linkedid")),
    )
    op.create_table(
        "call_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("source IN ('tagger', 'supervisor')", name=op.f("ck_call_tags_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_tags")),
        sa.UniqueConstraint(
            "linkedid", "tag", "source", name=op.f("uq_call_tags_linkedid_tag_source")
        ),
    )
    op.create_index(op.f("ix_call_tags_linkedid"), "call_tags", ["linkedid"])
    op.create_index(op.f("ix_call_tags_tag"), "call_tags", ["tag"])
    op.create_table(
        "phone_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("flag", sa.String(length=32), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_flags")),
        sa.UniqueConstraint("phone", "flag", name=op.f("uq_phone_flags_phone_flag")),
    )


def downgrade() -> None:
    """Drop the speech tables."""
    op.drop_table("phone_flags")
    op.drop_index(op.f("ix_call_tags_tag"), table_name="call_tags")
    op.drop_index(op.f("ix_call_tags_linkedid"), table_name="call_tags")
    op.drop_table("call_tags")
    op.drop_table("transcripts")
