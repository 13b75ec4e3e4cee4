"""AMI messages as frozen, protocol-free objects handed from the AMI edge to the domain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MessageKind = Literal["event", "response", "banner"]


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI message exactly as Asterisk sent it.

    ``headers`` maps each header name (case as sent) to its value; empty values are kept
    (``AppData: `` gives ``""``). When a header repeats (``Variable``, ``ChanVariable``),
    ``headers`` keeps the last value and ``fields`` keeps them all in order. (Only such
    messages store their pairs in ``repeated``; for the rest ``fields`` is read off
    ``headers``, which keeps the order: the parser's hot path builds no second copy.)
    ``received_at`` is our clock when the frame was complete (or the trace's receive time).

    >>> e = AmiEvent.from_fields([("Event", "Hangup"), ("Uniqueid", "1.2"), ("AppData", "")], 5.0)
    >>> e.name, e["Uniqueid"], e.get("AppData"), e.get("Missing", "-")
    ('Hangup', '1.2', '', '-')
    >>> e.timestamp  # no Timestamp header: falls back to the receive time
    5.0
    """

    name: str
    headers: Mapping[str, str]
    received_at: float
    kind: MessageKind = "event"
    repeated: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    raw: str = field(default="", compare=False, repr=False)

    @classmethod
    def from_fields(
        cls, fields: list[tuple[str, str]], received_at: float, raw: str = ""
    ) -> AmiEvent:
        """Build an event or response from ordered header pairs."""
        headers = dict(fields)
        repeated = tuple(fields) if len(headers) != len(fields) else ()
        if "Event" in headers:
            return cls(headers["Event"], headers, received_at, "event", repeated, raw)
        return cls(headers.get("Response", ""), headers, received_at, "response", repeated, raw)

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        """Return every header pair in the order sent, repeated headers included."""
        return self.repeated or tuple(self.headers.items())

    def __getitem__(self, key: str) -> str:
        return self.headers[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return a header value, or ``default`` when the header is absent."""
        return self.headers.get(key, default)

    @property
    def timestamp(self) -> float:
        """Asterisk's event time (``Timestamp`` header) or, without one, the receive time."""
        ts = self.headers.get("Timestamp")
        if ts:
            try:
                return float(ts)
            except ValueError:
                return self.received_at
        return self.received_at

    @property
    def action_id(self) -> str | None:
        """Return the ActionID this message answers, if any."""
        return self.headers.get("ActionID")

    def values(self, key: str) -> list[str]:
        """Return every value of a header that may repeat (``Variable``, ``ChanVariable``)."""
        return [v for k, v in self.fields if k == key]
