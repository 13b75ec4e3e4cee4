"""The screen-pop card: who is calling, assembled from plain views (pure).

``Card.to_dict()`` is the JSON contract of the operator panel:

``{"phone", "raw_caller", "known", "patient": {"id", "full_name", "birth_date", "doctor",
"insurance": {"company", "policy_end"} | None} | None, "last_visit": {"date", "doctor",
"service"} | None, "notes": [{"text", "author", "created_at"}], "segments": [...],
"consent": {"pd", "marketing", "do_not_call"}, "open_tasks": [{"id", "reason", "kind",
"opened_at", "due_at", "attempts"}], "recent_calls": [{"linkedid", "direction", "disposition",
"start_ts", "agent", "talk_s"}], "months_since_visit"}``, dates and times as ISO 8601 strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from callcenter.patients.consent import ConsentState
from callcenter.patients.segments import (
    DEFAULT_SLEEPING_WINDOW,
    CallView,
    Segment,
    SleepingWindow,
    VisitView,
    last_completed_visit,
    months_between,
    segments_for,
)

#: How many of the latest calls the card shows.
RECENT_CALLS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientView:
    """The patient's own fields."""

    id: int
    full_name: str
    birth_date: date | None
    doctor: str | None
    insurance_company: str | None
    policy_end: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteView:
    """A personal note on the patient."""

    text: str
    author: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """An open callback task for one of the patient's numbers."""

    id: int
    reason: str
    kind: str
    opened_at: datetime
    due_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Card:
    """Everything the administrator sees when a number rings."""

    phone: str | None  # E.164; None when withheld or not a number
    raw_caller: str | None
    patient: PatientView | None  # None: a new caller
    last_visit: VisitView | None
    notes: tuple[NoteView, ...]
    segments: tuple[Segment, ...]
    consent: ConsentState
    open_tasks: tuple[TaskView, ...]
    recent_calls: tuple[CallView, ...]
    months_since_visit: int | None

    @property
    def known(self) -> bool:
        """Return True when the number belongs to a patient."""
        return self.patient is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the card as the JSON-ready dict the operator panel reads."""
        return {
            "phone": self.phone,
            "raw_caller": self.raw_caller,
            "known": self.known,
            "patient": _patient_dict(self.patient),
            "last_visit": _visit_dict(self.last_visit),
            "notes": [
                {"text": n.text, "author": n.author, "created_at": n.created_at.isoformat()}
                for n in self.notes
            ],
            "segments": [str(segment) for segment in self.segments],
            "consent": {
                "pd": self.consent.pd_consent,
                "marketing": self.consent.marketing_consent,
                "do_not_call": self.consent.do_not_call,
            },
            "open_tasks": [
                {
                    "id": t.id,
                    "reason": t.reason,
                    "kind": t.kind,
                    "opened_at": t.opened_at.isoformat(),
                    "due_at": t.due_at.isoformat(),
                    "attempts": t.attempts,
                }
                for t in self.open_tasks
            ],
            "recent_calls": [
                {
                    "linkedid": c.linkedid,
                    "direction": c.direction,
                    "disposition": c.disposition,
                    "start_ts": c.start_ts,
                    "agent": c.agent,
                    "talk_s": c.talk_s,
                }
                for c in self.recent_calls
            ],
            "months_since_visit": self.months_since_visit,
        }


def assemble_card(
    *,
    phone: str | None,
    raw_caller: str | None,
    patient: PatientView | None,
    visits: Sequence[VisitView],
    notes: Sequence[NoteView],
    calls: Sequence[CallView],
    open_tasks: Sequence[TaskView],
    consent: ConsentState,
    today: date,
    sleeping_window: SleepingWindow = DEFAULT_SLEEPING_WINDOW,
    recent_calls: int = RECENT_CALLS,
) -> Card:
    """Assemble the card from what the store loaded for the caller.

    ``calls`` are every stored call of the patient's numbers (or of the caller's number for a new
    caller), in any order; the card shows the latest ``recent_calls`` of them, newest first.
    """
    last = last_completed_visit(visits, today=today)
    newest_first = sorted(calls, key=lambda c: c.started_at, reverse=True)
    segments = segments_for(
        visits=visits,
        calls=calls,
        policy_end=patient.policy_end if patient is not None else None,
        today=today,
        sleeping_window=sleeping_window,
    )
    return Card(
        phone=phone,
        raw_caller=raw_caller,
        patient=patient,
        last_visit=last,
        notes=tuple(sorted(notes, key=lambda n: n.created_at, reverse=True)),
        segments=segments,
        consent=consent,
        open_tasks=tuple(sorted(open_tasks, key=lambda t: (t.due_at, t.id))),
        recent_calls=tuple(newest_first[:recent_calls]),
        months_since_visit=months_between(last.visit_date, today) if last is not None else None,
    )


def _patient_dict(patient: PatientView | None) -> dict[str, Any] | None:
    if patient is None:
        return None
    insurance = None
    if patient.insurance_company is not None or patient.policy_end is not None:
        insurance = {
            "company": patient.insurance_company,
            "policy_end": _iso(patient.policy_end),
        }
    return {
        "id": patient.id,
        "full_name": patient.full_name,
        "birth_date": _iso(patient.birth_date),
        "doctor": patient.doctor,
        "insurance": insurance,
    }


def _visit_dict(visit: VisitView | None) -> dict[str, Any] | None:
    if visit is None:
        return None
    return {"date": visit.visit_date.isoformat(), "doctor": visit.doctor, "service": visit.service}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
