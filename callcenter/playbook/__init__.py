"""The playbook: which script to suggest for a call, and the answers to objections.

Scripts are TOML data files in ``scripts/``; ``select_script`` is a pure function of the situation.
"""

from __future__ import annotations

from callcenter.playbook.errors import PlaybookInvalid, UnknownSituation
from callcenter.playbook.loader import SCRIPTS_DIR, Source, build_playbook, load_playbook
from callcenter.playbook.model import (
    OBJECTION_KEYS,
    SITUATION_KINDS,
    Line,
    Objection,
    Playbook,
    Script,
)
from callcenter.playbook.select import (
    Situation,
    SuggestedObjection,
    SuggestedScript,
    select_script,
    situation_for,
)

__all__ = [
    "OBJECTION_KEYS",
    "SCRIPTS_DIR",
    "SITUATION_KINDS",
    "Line",
    "Objection",
    "Playbook",
    "PlaybookInvalid",
    "Script",
    "Situation",
    "Source",
    "SuggestedObjection",
    "SuggestedScript",
    "UnknownSituation",
    "build_playbook",
    "load_playbook",
    "select_script",
    "situation_for",
]
