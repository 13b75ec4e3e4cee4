"""Composition root: builds settings → clients → services → handlers for each process kind.

Nothing else wires objects together; every other module takes what it needs as keyword
arguments, so tests build the same graph with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable
from dataclasses import dataclass

from callcenter.ami.client import AmiClient
from callcenter.calls.tracker import CallTracker
from callcenter.config import Settings
from callcenter.dispatch import EffectDispatcher, StoreWriter, TrackingListener
from callcenter.notify import ConsoleNotifier, Notifier
from callcenter.store.sink import SqlCallSink, list_open_task_rows, open_call_sink

log = logging.getLogger(__name__)

#: What `callcenter demo` plays: the inbound scenarios, then the busy hour.
DEMO_TRACES = ("answered", "abandoned", "queue_timeout", "direct_noanswer", "busy", "burst")


@dataclass
class ListenerProcess:
    """The listener's parts, built once and started/stopped together."""

    client: AmiClient
    listener: TrackingListener
    writer: StoreWriter
    sink: SqlCallSink

    async def start(self) -> None:
        """Connect to AMI; returns once the first connection attempt is under way."""
        await self.client.start()

    async def stop(self) -> None:
        """Stop reading, then write every effect already received, then close."""
        await self.client.stop()
        await asyncio.to_thread(self.writer.stop)
        self.sink.close()


def build_listener(settings: Settings, *, notifier: Notifier) -> ListenerProcess:
    """Wire AMI client → tracker → dispatcher → store writer for one listener."""
    sink = open_call_sink(settings.database_url)
    writer = StoreWriter()
    dispatcher = EffectDispatcher(notifier=notifier, sink=sink, writer=writer)
    listener = TrackingListener(tracker=CallTracker(), dispatcher=dispatcher)
    client = AmiClient(
        host=settings.ami_host,
        port=settings.ami_port,
        username=settings.ami_username,
        secret=settings.ami_secret,
        listener=listener,
        ping_interval=settings.ami_ping_interval_s,
        ping_timeout=settings.ami_ping_timeout_s,
        backoff_initial=settings.ami_backoff_initial_s,
        backoff_max=settings.ami_backoff_max_s,
    )
    return ListenerProcess(client=client, listener=listener, writer=writer, sink=sink)


def run_listen(settings: Settings) -> int:
    """Run ``callcenter listen`` until SIGINT/SIGTERM (or a bug stops the client)."""
    _configure_logging(settings.log_level)

    async def main() -> None:
        process = build_listener(settings, notifier=ConsoleNotifier(sys.stdout))
        await _run_until_stopped(process, [])

    asyncio.run(main())
    return 0


def run_demo(settings: Settings, *, speed: float, duration: float | None, once: bool) -> int:
    """Run the simulator and the listener in one process, printing calls and tasks live."""
    from callcenter.ami.simulator import AmiSimulator

    # The console is the demo's screen: only warnings and errors besides the live lines.
    _configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    out = sys.stdout
    print(
        f"callcenter demo: AMI simulator playing {', '.join(DEMO_TRACES)} "
        f"({'once' if once else 'in a loop'}, speed ×{speed or 'max'}); "
        f"database {settings.database_url}. Ctrl-C stops.",
        file=out,
        flush=True,
    )

    async def main() -> None:
        async with AmiSimulator(
            traces=list(DEMO_TRACES),
            speed=speed,
            loop_forever=not once,
            host="127.0.0.1",
            port=0,
            username=settings.ami_username,
            secret=settings.ami_secret,
        ) as sim:
            process = build_listener(
                settings.with_overrides(ami_host="127.0.0.1", ami_port=sim.port),
                notifier=ConsoleNotifier(out),
            )
            ends: list[Awaitable[object]] = []
            if duration is not None:
                ends.append(asyncio.sleep(duration))
            if once:
                ends.append(sim.wait_done())
            await _run_until_stopped(process, ends)
        rows = list_open_task_rows(settings.database_url)
        print(f"callcenter demo: stopped; {len(rows)} open callback task(s).", file=out)

    asyncio.run(main())
    return 0


async def _run_until_stopped(process: ListenerProcess, ends: list[Awaitable[object]]) -> None:
    """Run a listener until a signal, one of ``ends``, or a crash; always stop it cleanly.

    :raises Exception: what stopped the AMI client (a listener bug), after the clean stop.
    """
    await process.start()
    waits = [
        asyncio.ensure_future(_wait_for_signal()),
        asyncio.ensure_future(process.client.wait_stopped()),
        *(asyncio.ensure_future(end) for end in ends),
    ]
    try:
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await process.stop()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _wait_for_signal() -> None:
    """Return when the process gets SIGINT or SIGTERM (graceful shutdown)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _configure_logging(level: str) -> None:
    logging.getLogger().setLevel(level)
