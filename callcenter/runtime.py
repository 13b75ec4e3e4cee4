"""Composition root: builds settings → clients → services → handlers for each process kind.

Nothing else wires objects together; every other module takes what it needs as keyword
arguments, so tests build the same graph with fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from huey.consumer import Consumer

from callcenter.ami.client import AmiClient
from callcenter.calls.tracker import CallTracker
from callcenter.config import Settings
from callcenter.consumers import EmbeddedConsumer
from callcenter.dialer.worker import DialerProcess
from callcenter.dispatch import EffectDispatcher, StoreWriter, TrackingListener
from callcenter.health import LinkHealth, Readiness, start_ops_server, watch_store_writer
from callcenter.logging_setup import configure_logging
from callcenter.metrics import Metrics, MetricsNotifier
from callcenter.notify import ConsoleNotifier, FanoutNotifier, Notifier
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.sink import SqlCallSink, list_open_task_rows, open_call_sink

if TYPE_CHECKING:
    from web.operator.live import LivePanel

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
    listener = TrackingListener(
        tracker=CallTracker(wrapup_s=settings.queue_wrapup_s), dispatcher=dispatcher
    )
    client = AmiClient.from_settings(settings, listener=listener)
    return ListenerProcess(client=client, listener=listener, writer=writer, sink=sink)


def run_listen(settings: Settings) -> int:
    """Run ``callcenter listen`` until SIGINT/SIGTERM (or a bug stops the client).

    With ``REDIS_URL`` set, screen pops reach the browsers of a separate ``callcenter web``
    process through Flask-SocketIO's Redis message queue.
    """
    from callcenter.jobs import build_huey
    from callcenter.speech.jobs import TranscriptionNotifier, register_speech_tasks

    configure_logging(settings)
    link, metrics = LinkHealth(), Metrics()
    # Recorded calls are queued for transcription on the same Huey storage `callcenter worker`
    # consumes (Redis with REDIS_URL, else the SQLite file next to the database).
    speech = register_speech_tasks(build_huey(settings), settings)
    targets: list[Notifier] = [
        ConsoleNotifier(sys.stdout),
        link,
        MetricsNotifier(metrics),
        TranscriptionNotifier(speech),
    ]
    if settings.redis_url:
        from web.realtime.notifier import build_queue_notifier

        engine = create_db_engine(settings.database_url)
        targets.append(
            build_queue_notifier(
                redis_url=settings.redis_url,
                session_factory=create_session_factory(engine),
                timezone=settings.timezone,
            )
        )

    async def main() -> None:
        process = build_listener(settings, notifier=FanoutNotifier(*targets))
        metrics.watch_ami(lambda: process.client.stats)
        watch_store_writer(metrics, process.writer)
        ops = None
        if settings.metrics_port is not None:
            ops = start_ops_server(
                host=settings.web_host,
                port=settings.metrics_port,
                link=link,
                metrics=metrics,
                writer=process.writer,
                redis_url=settings.redis_url,
            )
        try:
            await _run_until_stopped(process, [])
        finally:
            if ops is not None:
                ops.stop()
            speech.close()

    asyncio.run(main())
    return 0


def run_web(settings: Settings) -> int:
    """Run ``callcenter web``: the panel alone (listeners elsewhere emit through Redis)."""
    from web import create_app
    from web.server import start_web_in_thread

    configure_logging(settings)
    upgrade(settings.database_url)
    app = create_app(settings, secure_cookies=settings.web_https)
    server = start_web_in_thread(app, host=settings.web_host, port=settings.web_port)
    print(f"callcenter web: panel on {server.url}", flush=True)
    try:
        asyncio.run(_wait_for_signal())
    finally:
        server.stop()
    return 0


def run_serve(settings: Settings) -> int:
    """Run ``callcenter serve``: web panel, AMI link (listener + dialer) and the Huey worker
    in one process, for a single clinic."""
    configure_logging(settings)
    upgrade(settings.database_url)

    async def main() -> None:
        async with _clinic(settings, out=sys.stdout, with_web=True, transcribe=True) as clinic:
            await _run_until_stopped(clinic.process, [], before_stop=clinic.stop_worker)

    asyncio.run(main())
    return 0


@dataclass
class _Clinic:
    """One process running the whole clinic: the AMI link, the panel and the Huey worker."""

    process: DialerProcess
    panel: _Panel | None
    consumer: Consumer
    #: Queue one callback sweep now on the embedded worker (the scheduler runs it each minute).
    sweep_now: Callable[[], object]

    async def stop_worker(self) -> None:
        """Stop the Huey consumer, letting a running job finish (it may need the AMI link,
        so this runs before the link stops and never blocks the event loop)."""
        await asyncio.to_thread(self.consumer.stop, graceful=True)


@contextlib.asynccontextmanager
async def _clinic(
    settings: Settings,
    *,
    out: TextIO,
    with_web: bool,
    transcribe: bool,
) -> AsyncIterator[_Clinic]:
    """Build one AMI link that stores calls, pops cards and dials callbacks, with the panel
    and an embedded Huey consumer (periodic callback sweeps on this link, transcriptions).

    One link, because Asterisk sends every event to every AMI session: a second session would
    see each call twice, and the dialer needs the listener's view of the operators anyway.
    """
    from callcenter.dialer.on_demand import register_on_demand_tasks
    from callcenter.dialer.worker import DialResult, build_dialer_process, run_sweep
    from callcenter.followup_jobs import register_followup_tasks
    from callcenter.jobs import SWEEP_SCHEDULE, build_huey
    from callcenter.maintenance import register_maintenance_tasks
    from callcenter.speech.jobs import TranscriptionNotifier, register_speech_tasks

    link, metrics = LinkHealth(), Metrics()
    huey = build_huey(settings)
    speech = register_speech_tasks(huey, settings)
    notifiers: list[Notifier] = [ConsoleNotifier(out), link, MetricsNotifier(metrics)]
    if transcribe:
        notifiers.append(TranscriptionNotifier(speech))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(speech.close)
        panel = None
        if with_web:
            panel = await stack.enter_async_context(
                _web_panel(settings, readiness=Readiness(ami=link), metrics=metrics)
            )
            notifiers.append(panel.notifier)
        process = build_dialer_process(
            settings, notifier=FanoutNotifier(*notifiers), store_calls=True
        )
        metrics.watch_ami(lambda: process.client.stats)
        if process.writer is not None:
            watch_store_writer(metrics, process.writer)  # backlog while the database is away
        if panel is not None and panel.live is not None:
            panel.live.commands.bind(process.client)  # the panel's QueuePause uses this link
        loop = asyncio.get_running_loop()
        running = threading.Lock()

        def dialer_sweep() -> int:
            """Dial what is due on this process's live link (one sweep at a time)."""
            if not running.acquire(blocking=False):
                return 0
            try:
                done = asyncio.run_coroutine_threadsafe(run_sweep(process), loop)
                return len(done.result())
            finally:
                running.release()

        sweep = huey.periodic_task(SWEEP_SCHEDULE, name="dialer_sweep")(dialer_sweep)

        async def dial_now(task_id: int) -> DialResult:
            if not await process.wait_ready(10.0):
                return DialResult(task_id=task_id, action="link_not_ready")
            return await process.dialer.dial_now(task_id)

        def dial_on_this_link(task_id: int) -> DialResult:
            """An operator's take or click-to-call (``request_dial``), on this live link."""
            return asyncio.run_coroutine_threadsafe(dial_now(task_id), loop).result()

        register_on_demand_tasks(huey, settings, dial=dial_on_this_link)
        register_maintenance_tasks(
            huey, settings, transcribe=speech.transcribe_call if transcribe else None
        )
        register_followup_tasks(huey, settings)
        consumer = EmbeddedConsumer(
            huey, workers=settings.worker_threads, worker_type="thread", periodic=True
        )
        consumer.start()
        clinic = _Clinic(process=process, panel=panel, consumer=consumer, sweep_now=sweep)
        try:
            yield clinic
        finally:
            await clinic.stop_worker()  # a no-op when already stopped


#: Demo accounts: (username, password, role, extension). Printed when the demo starts.
DEMO_ACCOUNTS = (
    ("operator101", "demo", "operator", "101"),
    ("operator102", "demo", "operator", "102"),
    ("operator103", "demo", "operator", "103"),
    ("supervisor", "demo", "supervisor", None),
)


def prepare_demo_database(url: str, *, now: datetime) -> int:
    """Migrate, seed the demo clinic's patients and the demo accounts; return patients added."""
    from callcenter.patients.demo_data import seed_demo_patients
    from callcenter.store.users import UserError, create_user

    upgrade(url)
    engine = create_db_engine(url)
    try:
        with create_session_factory(engine).begin() as session:
            added = seed_demo_patients(session, now=now)
            for username, password, role, extension in DEMO_ACCOUNTS:
                try:
                    create_user(
                        session,
                        username=username,
                        password=password,
                        role=role,
                        extension=extension,
                    )
                except UserError:
                    pass  # kept from an earlier demo run
        return added
    finally:
        engine.dispose()


def run_demo(
    settings: Settings,
    *,
    speed: float,
    duration: float | None,
    once: bool,
    with_web: bool = True,
) -> int:
    """Run the simulator, the listener and the panel in one process, printing calls live."""
    from callcenter.ami.simulator import AmiSimulator

    # The console is the demo's screen: only warnings and errors besides the live lines.
    configure_logging(settings, level="WARNING" if settings.log_level == "INFO" else None)
    out = sys.stdout
    added = prepare_demo_database(settings.database_url, now=datetime.now(UTC))
    print(
        f"callcenter demo: AMI simulator playing {', '.join(DEMO_TRACES)} "
        f"({'once' if once else 'in a loop'}, speed ×{speed or 'max'}); "
        f"database {settings.database_url} ({added} demo patients added). Ctrl-C stops.",
        file=out,
        flush=True,
    )

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            sim = await stack.enter_async_context(
                AmiSimulator(
                    traces=list(DEMO_TRACES),
                    speed=speed,
                    loop_forever=not once,
                    host="127.0.0.1",
                    port=0,
                    username=settings.ami_username,
                    secret=settings.ami_secret,
                    # Calls happen now, from the first play on: the pages' «Сегодня» shows them.
                    rewrite_first_play=True,
                )
            )
            clinic = await stack.enter_async_context(
                _clinic(
                    settings.with_overrides(ami_host="127.0.0.1", ami_port=sim.port),
                    out=out,
                    with_web=with_web,
                    # Transcripts only when a speech model is there (models/README.md).
                    transcribe=Path(settings.vosk_model_path).is_dir(),
                )
            )
            if clinic.panel is not None:
                accounts = ", ".join(f"{u}/{p}" for u, p, _, _ in DEMO_ACCOUNTS)
                print(
                    f"callcenter demo: panel on {clinic.panel.url} — accounts {accounts}", file=out
                )
            ends: list[Awaitable[object]] = []
            if duration is not None:
                ends.append(asyncio.sleep(duration))
            if once:
                ends.append(sim.wait_done())
            await _run_until_stopped(clinic.process, ends, before_stop=clinic.stop_worker)
        rows = list_open_task_rows(settings.database_url)
        print(f"callcenter demo: stopped; {len(rows)} open callback task(s).", file=out)

    asyncio.run(main())
    return 0


@dataclass
class _Panel:
    url: str
    notifier: Notifier
    live: LivePanel | None = None  # the panel's AMI command port and operator states


@contextlib.asynccontextmanager
async def _web_panel(
    settings: Settings, *, readiness: Readiness | None = None, metrics: Metrics | None = None
) -> AsyncIterator[_Panel]:
    """Serve the panel from a thread of this process; its notifier pushes the screen pops.

    ``readiness`` and ``metrics`` let /readyz and /metrics report this process's listener.
    """
    from web import create_app, notifier_for
    from web.operator.live import install_live_panel
    from web.server import start_web_in_thread

    settings.require_production_secrets(need_web=True, need_ami=False)
    app = create_app(
        settings, secure_cookies=settings.web_https, readiness=readiness, metrics=metrics
    )
    notifier = notifier_for(app)
    live = install_live_panel(app)
    server = start_web_in_thread(app, host=settings.web_host, port=settings.web_port)
    try:
        yield _Panel(url=server.url, notifier=FanoutNotifier(notifier, live.states), live=live)
    finally:
        # Stop order: the listener is already stopped; flush pops, then stop serving.
        notifier.flush()
        notifier.close()
        await asyncio.to_thread(server.stop)


async def _run_until_stopped(
    process: ListenerProcess | DialerProcess,
    ends: list[Awaitable[object]],
    *,
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run a listener until a signal, one of ``ends``, or a crash; always stop it cleanly.

    ``before_stop`` runs first when stopping (e.g. the embedded worker, which uses the link).

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
        if before_stop is not None:
            await before_stop()
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
