"""What a loaded playbook is: scripts per situation and the objection answers (plain data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Every kind of call a script can be written for.
SITUATION_KINDS = (
    "inbound_known",
    "inbound_unknown",
    "callback_missed",
    "callback_abandoned",
    "sleeping_care",
    "nps_followup",
    "care_after_treatment",
    "no_show",
    "dms_reminder",
)

#: The objections, in the order the panel offers them: «дорого» first, it is the commonest.
#: The keys are the speech tagger's outcome tags, so a tagged call points at its answer.
OBJECTION_KEYS = ("price_objection", "no_time", "fear", "thinking")

#: Patient segments a line may be limited to (patients/segments.py computes them).
SEGMENTS = frozenset({"sleeping", "dropped", "dms"})

#: The script id (and file name) that holds the objection answers rather than a script.
OBJECTIONS_ID = "objections"


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One thing to say; ``fallback`` is said when the card lacks a placeholder's value."""

    text: str
    fallback: str | None = None
    marketing: bool = False  # an offer or discount: only with the patient's marketing consent
    segments: tuple[str, ...] = ()  # said only to patients in one of these segments; () = all


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What to say in one situation, line by line."""

    id: str
    title: str
    situation: str
    lines: tuple[Line, ...]
    source: str  # the file (or stored version) it was loaded from, for error messages


@dataclass(frozen=True, slots=True, kw_only=True)
class Objection:
    """An objection and its answers, best first; the first one allowed is suggested."""

    key: str
    title: str
    shortcut: str
    answers: tuple[Line, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Playbook:
    """Every script by situation, and the objection answers in panel order."""

    scripts: Mapping[str, Script]  # situation kind → script
    objections: tuple[Objection, ...]
    texts: Mapping[str, str]  # script id → the TOML text it was loaded from
