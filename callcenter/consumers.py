"""Huey consumers for our processes: how they start and stop.

``callcenter worker`` runs ``WorkerConsumer`` as its main loop; ``serve`` and ``demo`` run an
``EmbeddedConsumer`` from threads next to their asyncio loop.
"""

from __future__ import annotations

from types import FrameType

from huey.consumer import Consumer


class WorkerConsumer(Consumer):
    """The consumer of ``callcenter worker``.

    SIGTERM (``docker stop``, systemd, Kubernetes) stops gracefully, like SIGINT: the jobs that
    are running finish and are stored, no new job starts. Huey's own SIGTERM stops at once,
    which would throw away a transcription that was almost done (its row stays ``queued``
    until the re-queue sweep runs it again).
    """

    def _handle_stop_signal(self, sig_num: int, frame: FrameType | None) -> None:
        super()._handle_stop_signal(sig_num, frame)
        self._graceful = True


class EmbeddedConsumer(Consumer):
    """A consumer run from threads of a process whose signals asyncio already handles
    (``serve``, ``demo``): same workers and scheduler as ``callcenter worker``; the process
    stops it with ``stop(graceful=True)``."""

    def _set_signal_handlers(self) -> None:
        """Leave SIGINT/SIGTERM to the process's event loop."""
