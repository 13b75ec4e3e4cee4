"""What a screen pop shows: the caller's card (patients) and the suggested script (playbook)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from callcenter.errors import CallcenterError
from callcenter.playbook.select import callback_call_kind, select_script, situation_for
from callcenter.store.patients import load_card
from callcenter.store.playbook import current_playbook

log = logging.getLogger(__name__)

#: (card, script or None) for a caller ID at a moment.
PopContent = tuple[dict[str, Any], dict[str, Any] | None]
#: ``(caller, now, outbound)``: ``outbound`` for a callback we placed (its task's script).
ContentLoader = Callable[[str | None, datetime, bool], PopContent]


def load_pop_content(
    session: Session, *, caller: str | None, now: datetime, outbound: bool = False
) -> PopContent:
    """Return the caller's card and the script to suggest: the caller's own for an inbound
    call, the open task's (a callback after a missed call, «Забота», …) for one we placed."""
    card = load_card(session, caller=caller, now=now).to_dict()
    kind = callback_call_kind(card) if outbound else "inbound"
    return card, suggest_script(session, card=card, call_kind=kind)


def suggest_script(
    session: Session, *, card: dict[str, Any], call_kind: str = "inbound"
) -> dict[str, Any] | None:
    """Return the playbook's script for this caller, or None when the playbook has none."""
    try:
        playbook = current_playbook(session)
        situation = situation_for(card=card, call_kind=call_kind)
        return select_script(situation, playbook=playbook).to_dict()
    except CallcenterError as exc:
        # A bad or incomplete playbook must not stop the pop: the card matters more.
        log.warning("no script for the screen pop: %s", exc)
        return None


def make_content_loader(factory: sessionmaker[Session]) -> ContentLoader:
    """Return ``(caller, now) -> (card, script)``, each load in its own session."""

    def load(caller: str | None, now: datetime, outbound: bool = False) -> PopContent:
        with factory() as session:
            return load_pop_content(session, caller=caller, now=now, outbound=outbound)

    return load
