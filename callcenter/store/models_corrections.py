"""Tables of the supervisor's tag corrections (registered on ``models.Base``).

``tag_corrections``: each time a supervisor adds a tag the tagger missed or removes one it got
wrong, with who and when. The tagger's own tags (``call_tags``, source ``tagger``) are never
changed, so the corrections can later measure the tagger against what people decided.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.models import Base

CORRECTION_ACTIONS = ("add", "remove")


class TagCorrection(Base):
    """One supervisor's change to a call's tags: add or remove one tag."""

    __tablename__ = "tag_corrections"
    __table_args__ = (CheckConstraint("action IN ('add', 'remove')", name="action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key, as for call_tags: the tags are keyed by the call's linkedid.
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(8))
    by: Mapped[str] = mapped_column(String(64))  # the supervisor's username
    at: Mapped[datetime]
