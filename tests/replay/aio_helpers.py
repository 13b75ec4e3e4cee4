"""Helpers for asyncio tests run with plain ``asyncio.run``: deadline polling, fakes, servers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.ami.events import AmiEvent


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.005, what: str = ""
) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


@dataclass
class RecordingListener:
    """An ``AmiListener`` that keeps everything it is told, in order."""

    events: list[AmiEvent] = field(default_factory=list)
    ups: list[float] = field(default_factory=list)
    downs: list[tuple[float, str]] = field(default_factory=list)
    resyncs: list[tuple[list[AmiEvent], list[AmiEvent], float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # "event:Name", "up", "down", "resync"

    def on_event(self, event: AmiEvent) -> None:
        self.events.append(event)
        self.log.append(f"event:{event.name}")

    def on_link_up(self, *, at: float) -> None:
        self.ups.append(at)
        self.log.append("up")

    def on_link_down(self, *, at: float, reason: str) -> None:
        self.downs.append((at, reason))
        self.log.append("down")

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None:
        self.resyncs.append((channels, queue_entries, at))
        self.log.append("resync")

    def named(self, name: str) -> list[AmiEvent]:
        return [e for e in self.events if e.name == name]


def split_stream(data: bytes, chunk: int | str, seed: int = 7) -> list[bytes]:
    """Cut ``data`` into pieces of ``chunk`` bytes, or of random sizes 1..4096 ("random")."""
    pieces = []
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.randint(1, 4096) if chunk == "random" else int(chunk)
        pieces.append(data[i : i + n])
        i += n
    return pieces


class ByteServer:
    """A loopback TCP server that writes fixed bytes to each client in given pieces.

    Each piece is a separate write followed by a loop turn, so the client sees the piece
    boundaries (a 1-byte piece arrives as a 1-byte read). Closes when the client closes.
    """

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()
        self.sent_all = asyncio.Event()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> ByteServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        if self.handlers:
            await asyncio.wait(self.handlers)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            for piece in self.pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            self.sent_all.set()
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass
            self.handlers.discard(task)
