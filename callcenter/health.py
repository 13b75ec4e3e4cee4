"""What `/readyz` needs to know about the AMI link: a notifier that records up/down.

The listener runs on an asyncio loop and the web server on threads; ``LinkHealth`` is written
from the loop (``link_state``) and read from request threads, so its state sits behind a lock.
A process that runs no listener passes no ``LinkHealth`` to the web app and /readyz skips AMI.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from callcenter.notify import NullNotifier


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """The AMI link as last reported: logged in or not, since when, and why it went down."""

    up: bool
    since: float | None
    reason: str | None


class LinkHealth(NullNotifier):
    """Record the AMI link's state from ``link_state`` notifications (down until first up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = LinkSnapshot(up=False, since=None, reason="not connected yet")

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        with self._lock:
            self._state = LinkSnapshot(up=up, since=at, reason=None if up else reason)

    def snapshot(self) -> LinkSnapshot:
        """Return the last reported state."""
        with self._lock:
            return self._state


@dataclass
class Readiness:
    """What the web app checks for /readyz besides its database (and Redis when configured).

    ``ami`` is set only in processes that run a listener (``serve``, ``demo``).
    """

    ami: LinkHealth | None = None
