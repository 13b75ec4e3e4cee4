"""Tables of the playbook part of the store (registered on ``models.Base``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base


class ScriptVersion(Base):
    """One saved edit of a playbook script: the whole TOML text, never a diff."""

    __tablename__ = "script_versions"
    # Two supervisors saving at once must not both get the same version number.
    __table_args__ = (UniqueConstraint("script_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    script_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text)
