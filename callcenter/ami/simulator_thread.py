"""The AMI simulator served from a thread of its own, for synchronous code (scripts, tests
that drive subprocesses): ``start()``/``stop()`` or a ``with`` block; ``call`` runs a failure
mode on the simulator's event loop (they are not thread-safe)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from callcenter.ami.simulator import AmiSimulator


class SimulatorThread:
    """An ``AmiSimulator`` (``port=0`` plus ``options``) on its own thread and event loop."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.sim: AmiSimulator | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with AmiSimulator(port=0, **self.options) as sim:
            self.sim = sim
            self._ready.set()
            await self._stop.wait()

    def start(self, timeout: float = 30.0) -> AmiSimulator:
        """Start serving; return the simulator once it listens.

        :raises RuntimeError: it did not start within ``timeout`` seconds.
        """
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the AMI simulator did not start")
        assert self.sim is not None
        return self.sim

    def stop(self) -> None:
        """Stop serving and wait for the thread (at most 15 s)."""
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def call(self, fn: Callable[[], object], timeout: float = 10.0) -> None:
        """Run ``fn`` on the simulator's loop and wait until it ran (at most ``timeout``)."""
        assert self.loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(timeout)

    def __enter__(self) -> AmiSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
