"""The whole schema: importing this module registers every table on ``Base.metadata``.

Each part of the product keeps its tables in its own module (``models`` for calls and tasks,
``models_patients``, ``models_dialer``, ``models_playbook``, ``models_web``), so parallel work
never edits one file; migrations and schema tests use ``metadata`` from here.
"""

from __future__ import annotations

from callcenter.store import (
    models,
    models_audit,
    models_corrections,
    models_dialer,
    models_followups,
    models_patients,
    models_playbook,
    models_reports,
    models_speech,
    models_web,
)

metadata = models.Base.metadata

__all__ = [
    "metadata",
    "models",
    "models_audit",
    "models_corrections",
    "models_dialer",
    "models_followups",
    "models_patients",
    "models_playbook",
    "models_reports",
    "models_speech",
    "models_web",
]
