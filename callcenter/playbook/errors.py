"""Errors of the playbook: a script that does not load, a situation without a script."""

from __future__ import annotations

from collections.abc import Iterable

from callcenter.errors import CallcenterError


class PlaybookInvalid(CallcenterError):
    """One or more script files are malformed; ``problems`` name each file and line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid playbook:\n" + "\n".join(f"  {p}" for p in self.problems))


class UnknownSituation(CallcenterError):
    """No script is written for this kind of call."""
