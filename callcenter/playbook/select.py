"""Which script fits the call, filled in from the caller's card (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.playbook.errors import UnknownSituation
from callcenter.playbook.model import SITUATION_KINDS, Line, Playbook
from callcenter.playbook.text import fill, months_phrase, placeholders_in, spoken_name

# What the caller of situation_for may call a kind of call: the situation itself, the reason of
# the callback task it comes from (glossary), or just "inbound" (the card tells known/unknown).
_KIND_BY_CALL = {
    **{kind: kind for kind in SITUATION_KINDS},
    "missed_call": "callback_missed",
    "abandoned_call": "callback_abandoned",
    "sleeping": "sleeping_care",
    "dms": "dms_reminder",
}
_INBOUND = frozenset({"inbound", "inbound_known", "inbound_unknown"})
# Task reasons whose callback has a script of its own (the others fall back to the caller's).
_KIND_BY_CALL_REASON = {
    "missed_call": "callback_missed",
    "abandoned_call": "callback_abandoned",
    "sleeping": "sleeping_care",
    "nps_followup": "nps_followup",
    "care": "care_after_treatment",
    "no_show": "no_show",
    "dms_reminder": "dms_reminder",
}


def callback_call_kind(card: Mapping[str, Any]) -> str:
    """Return the call kind of a callback we placed to this card's patient: the situation of
    the open task it answers (the first one with a script), else the caller's own script.

    >>> callback_call_kind({"open_tasks": [{"reason": "abandoned_call"}]})
    'callback_abandoned'
    >>> callback_call_kind({"open_tasks": [{"reason": "click_to_call"}]})
    'inbound'
    """
    for task in card.get("open_tasks") or ():
        kind = _KIND_BY_CALL_REASON.get(str(task.get("reason")))
        if kind is not None:
            return kind
    return "inbound"


@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    """Everything the choice of script and its wording depend on."""

    kind: str
    marketing_consent: bool = False
    segments: tuple[str, ...] = ()
    name: str | None = None  # how to address the patient: «Мария Петровна»
    doctor: str | None = None
    months_since_visit: int | None = None
    clinic: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SITUATION_KINDS:
            raise UnknownSituation(
                f"no script for situation {self.kind!r} (known: {', '.join(SITUATION_KINDS)})"
            )

    def placeholder_values(self) -> dict[str, str]:
        """Return the placeholders this situation can fill, as they are said aloud."""
        values = {
            "name": self.name,
            "doctor": self.doctor,
            "clinic": self.clinic,
            "months_since_visit": (
                months_phrase(self.months_since_visit)
                if self.months_since_visit is not None
                else None
            ),
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestedObjection:
    """The answer to suggest for one objection, and the key that shows it."""

    key: str
    title: str
    shortcut: str
    answer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestedScript:
    """The script to show the administrator, ready to read aloud."""

    id: str
    title: str
    lines: tuple[str, ...]
    objections: tuple[SuggestedObjection, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape the operator panel renders."""
        return {
            "id": self.id,
            "title": self.title,
            "lines": list(self.lines),
            "objections": [
                {"key": o.key, "title": o.title, "shortcut": o.shortcut, "answer": o.answer}
                for o in self.objections
            ],
        }


def situation_for(
    *, card: Mapping[str, Any], call_kind: str, clinic: str | None = None
) -> Situation:
    """Return the situation of a call of ``call_kind`` with the caller whose card this is.

    ``clinic`` is the clinic's name as administrators say it (a setting; the card has none).

    :raises UnknownSituation: ``call_kind`` names no situation.
    """
    if call_kind in _INBOUND:
        kind = "inbound_known" if card.get("known") else "inbound_unknown"
    elif call_kind in _KIND_BY_CALL:
        kind = _KIND_BY_CALL[call_kind]
    else:
        known = ", ".join(sorted({*_KIND_BY_CALL, *_INBOUND}))
        raise UnknownSituation(f"no script for call kind {call_kind!r} (known: {known})")
    patient = card.get("patient") or {}
    last_visit = card.get("last_visit") or {}
    consent = card.get("consent") or {}
    doctor = last_visit.get("doctor") or patient.get("doctor")
    months = card.get("months_since_visit")
    return Situation(
        kind=kind,
        # «Do not call» withdraws more than marketing consent, never less.
        marketing_consent=bool(consent.get("marketing")) and not consent.get("do_not_call"),
        segments=tuple(card.get("segments") or ()),
        name=spoken_name(patient.get("full_name")),
        doctor=(spoken_name(doctor) or doctor) if doctor else None,
        months_since_visit=months if isinstance(months, int) else None,
        clinic=clinic,
    )


def select_script(situation: Situation, *, playbook: Playbook) -> SuggestedScript:
    """Return the situation's script and objection answers, filled in and consent-filtered.

    :raises UnknownSituation: the playbook has no script for the situation.
    """
    script = playbook.scripts.get(situation.kind)
    if script is None:
        raise UnknownSituation(f"the playbook has no script for {situation.kind!r}")
    values = situation.placeholder_values()
    lines = tuple(
        _render(line, values=values) for line in script.lines if _allowed(line, situation=situation)
    )
    objections = []
    for objection in playbook.objections:
        answer = next(a for a in objection.answers if _allowed(a, situation=situation))
        objections.append(
            SuggestedObjection(
                key=objection.key,
                title=objection.title,
                shortcut=objection.shortcut,
                answer=_render(answer, values=values),
            )
        )
    return SuggestedScript(
        id=script.id, title=script.title, lines=lines, objections=tuple(objections)
    )


def _allowed(line: Line, *, situation: Situation) -> bool:
    # 152-ФЗ: an offer needs the separate marketing consent; service lines need none.
    if line.marketing and not situation.marketing_consent:
        return False
    return not line.segments or any(s in situation.segments for s in line.segments)


def _render(line: Line, *, values: Mapping[str, str]) -> str:
    if placeholders_in(line.text) <= values.keys():
        return fill(line.text, values=values)
    # The loader guarantees a placeholder-free fallback for every line with placeholders.
    return line.fallback or ""
