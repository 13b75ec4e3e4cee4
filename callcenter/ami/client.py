"""The AMI link: connect, log in, watch the link, re-sync, reconnect; events out to a listener.

Built on panoramisk's ``Manager`` (login, ``send_action`` futures) with our ``AmiProtocol``
(byte-exact parsing). What panoramisk does not do, ``AmiClient`` does:

* **Reconnect with capped exponential backoff** (``backoff_initial`` doubling up to
  ``backoff_max``, with jitter unless switched off) after a lost connection, a ``Shutdown``
  event, a rejected or unanswered Login, or a stalled link. panoramisk retries every 2 s.
* **Ping watchdog.** Every ``ping_interval`` a Ping is sent; no reply within ``ping_timeout``
  while nothing else arrives either means the link is stalled: it is closed and re-opened.
  panoramisk pings but never checks. A busy link (the Pong queued behind a burst of events we
  are still reading) gets more time, up to ``PING_BUSY_FACTOR`` × ``ping_timeout``.
* **Re-sync after each login.** ``CoreShowChannels`` and ``QueueStatus`` are sent, and
  ``listener.on_resync`` gets their list items right after the last ``*Complete`` arrives,
  before any later event reaches ``listener.on_event``.
* **No action is re-sent after a reconnect.** Every action we send is "forgetable" for
  panoramisk; re-sending an Originate would ring a patient twice. A caller waiting for a reply
  gets ``AmiNoReply`` instead and decides.
* **Every task is kept and its failure logged** (panoramisk's fire-and-forget ``dispatch``
  is the anti-example). A listener that raises is a bug: the client logs it, stops, and
  ``wait_stopped()`` re-raises it.

Listener calls run on the client's event loop, in stream order: ``on_link_up`` comes right
after the Login reply, before any event of that link; ``on_link_down`` after its last event.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from panoramisk.manager import Manager

from callcenter.ami.actions import (
    OriginateStyle,
    build_core_show_channels,
    build_originate,
    build_queue_status,
    new_action_id,
)
from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import ParserStats
from callcenter.ami.protocol import AmiMessage, AmiProtocol, ServerShutdown

log = logging.getLogger(__name__)

#: Actions panoramisk must never queue for re-sending after a reconnect. (panoramisk re-sends
#: on FullyBooted, a dispatch our sink bypasses; the client also empties that queue.)
FORGETABLE_ACTIONS = (
    "login",
    "logoff",
    "ping",
    "originate",
    "queuestatus",
    "coreshowchannels",
    "status",
    "hangup",
    "command",
)

#: How many ``ping_timeout`` periods a Ping may wait while other messages keep arriving.
PING_BUSY_FACTOR = 6

#: List items ``on_resync`` gets, by the action that asked for them.
CHANNEL_ITEMS = frozenset({"CoreShowChannel"})
QUEUE_ITEMS = frozenset({"QueueParams", "QueueMember", "QueueEntry"})


class AmiListener(Protocol):
    """What the AMI client tells the rest of the application (all on the client's loop)."""

    def on_event(self, event: AmiEvent) -> None: ...

    def on_link_up(self, *, at: float) -> None: ...  # logged in

    def on_link_down(self, *, at: float, reason: str) -> None: ...

    def on_resync(
        self, *, channels: list[AmiEvent], queue_entries: list[AmiEvent], at: float
    ) -> None: ...


class AmiError(Exception):
    """An AMI action could not be carried out."""


class AmiNotConnected(AmiError):
    """There is no logged-in AMI link to send the action on."""


class AmiNoReply(AmiError):
    """No reply came (timeout or link lost); the action may or may not have run."""


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of the client's counters (all since ``start()``)."""

    messages: int  # complete AMI messages parsed (events, responses)
    events: int  # events handed to the listener
    malformed: int  # malformed frames counted by the parser
    connects: int  # TCP connections opened
    reconnects: int  # connection attempts after the first
    logins: int  # successful logins
    login_failures: int  # rejected or unanswered logins
    link_downs: int  # logged-in links that went down
    last_error: str | None


def backoff_delay(attempt: int, *, initial: float, maximum: float, rand: float | None) -> float:
    """Return the wait before reconnect ``attempt`` (0-based): doubling, capped, with jitter.

    ``rand`` in [0, 1) spreads the delay over its upper half so that many listeners do not
    reconnect in step; ``None`` means no jitter.

    >>> [backoff_delay(n, initial=0.5, maximum=3.0, rand=None) for n in range(5)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    >>> backoff_delay(2, initial=0.5, maximum=30.0, rand=0.0)
    1.0
    """
    base = min(maximum, initial * 2.0 ** min(attempt, 60))
    if rand is None:
        return base
    return base * (0.5 + rand / 2.0)


class _LinkManager(Manager):
    """panoramisk ``Manager`` whose reconnect and ping belong to ``AmiClient``.

    Overrides only the hooks that would schedule panoramisk's own fixed 2-second reconnect or
    its unchecked pinger; login and ``send_action`` stay panoramisk's.
    """

    pinger: asyncio.TimerHandle | None

    def __init__(self, *, on_lost: Callable[[Exception | None], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        super().connection_made(f)  # attaches the protocol and sends Login
        # AmiClient's watchdog replaces panoramisk's pinger, which never checks the reply.
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None

    def login(self, future: asyncio.Future[Any]) -> bool:
        self.authenticated_future = None
        if future.cancelled() or future.exception() is not None:
            self.authenticated = False
        else:
            self.authenticated = bool(future.result().success)
        return bool(self.authenticated)

    def ping(self) -> None:
        """Never scheduled: see ``AmiClient`` (the watchdog pings and checks the reply)."""

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.authenticated = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        self._on_lost(exc)


class _ResyncCollector:
    """Collect the list items of the re-sync actions, in arrival order."""

    def __init__(self, *, channels_id: str, queue_id: str, done: asyncio.Future[None]) -> None:
        self.channels_id = channels_id
        self.queue_id = queue_id
        self.items: dict[str, list[AmiEvent]] = {channels_id: [], queue_id: []}
        self.open = {channels_id, queue_id}
        self.done = done
        # Asterisk takes the channel snapshot when it answers CoreShowChannels. Events after
        # that answer happened after the snapshot, so they are held back and delivered after
        # on_resync: otherwise the tracker would see a call that began (or ended) after the
        # snapshot and wrongly lose (or resurrect) it.
        self.snapshot_taken = False
        self.held: list[AmiEvent] = []

    def hold(self, message: AmiEvent) -> bool:
        """Keep an event that came after the snapshot; return False if it may pass now."""
        if not self.snapshot_taken or message.action_id in self.items:
            return False
        self.held.append(message)
        return True

    def feed(self, message: AmiEvent) -> bool:
        """Take one message; return True when it completes the re-sync."""
        action_id = message.action_id
        if action_id is None or action_id not in self.open:
            return False
        if action_id == self.channels_id:
            self.snapshot_taken = True
        if message.kind == "response":
            if message.name not in ("Success", "Follows"):
                log.warning(
                    "AMI re-sync: %s answered %s (%s); its list stays empty",
                    action_id,
                    message.name,
                    message.get("Message", ""),
                )
                self.open.discard(action_id)
        elif message.name.endswith("Complete"):
            self.open.discard(action_id)
        else:
            self.items[action_id].append(message)
        return not self.open


class AmiSettings(Protocol):
    """The ``AMI_*`` part of ``callcenter.config.Settings``."""

    @property
    def ami_host(self) -> str: ...
    @property
    def ami_port(self) -> int: ...
    @property
    def ami_username(self) -> str: ...
    @property
    def ami_secret(self) -> str: ...
    @property
    def ami_ping_interval_s(self) -> float: ...
    @property
    def ami_ping_timeout_s(self) -> float: ...
    @property
    def ami_backoff_initial_s(self) -> float: ...
    @property
    def ami_backoff_max_s(self) -> float: ...


class AmiClient:
    """One AMI connection to Asterisk, kept alive; see the module docstring."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        listener: AmiListener,
        loop: asyncio.AbstractEventLoop | None = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 10.0,
        action_timeout: float = 10.0,
        jitter: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
            ("backoff_initial", backoff_initial),
            ("connect_timeout", connect_timeout),
            ("action_timeout", action_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if backoff_max < backoff_initial:
            raise ValueError(f"backoff_max ({backoff_max}) < backoff_initial ({backoff_initial})")
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self._listener = listener
        self._loop = loop
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self._rng: random.Random | None = random.Random() if jitter else None
        self._clock = clock

        self._parser_stats = ParserStats()
        self._manager: _LinkManager | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_event: asyncio.Event | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self._link_down: asyncio.Future[str] | None = None
        self._protocol: AmiProtocol | None = None
        self._link_up = False
        self._resync_collector: _ResyncCollector | None = None
        self._login_ids: set[str] = set()
        self._events = 0
        self._connects = 0
        self._connects_attempted = 0
        self._logins = 0
        self._login_failures = 0
        self._link_downs = 0
        self._last_error: str | None = None

    @classmethod
    def from_settings(
        cls, settings: AmiSettings, *, listener: AmiListener, **overrides: Any
    ) -> AmiClient:
        """Build a client from the deployment settings (``AMI_*``); ``overrides`` win."""
        config: dict[str, Any] = {
            "host": settings.ami_host,
            "port": settings.ami_port,
            "username": settings.ami_username,
            "secret": settings.ami_secret,
            "ping_interval": settings.ami_ping_interval_s,
            "ping_timeout": settings.ami_ping_timeout_s,
            "backoff_initial": settings.ami_backoff_initial_s,
            "backoff_max": settings.ami_backoff_max_s,
        }
        config.update(overrides)
        return cls(listener=listener, **config)

    # -- state --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a TCP connection to Asterisk is open (logged in or not)."""
        return self._protocol is not None and not self._protocol.closed

    @property
    def logged_in(self) -> bool:
        """True while the link is logged in and usable for actions."""
        return self._link_up

    @property
    def stats(self) -> ClientStats:
        """Return a snapshot of the counters."""
        return ClientStats(
            messages=self._parser_stats.messages,
            events=self._events,
            malformed=self._parser_stats.malformed,
            connects=self._connects,
            reconnects=max(0, self._connects_attempted - 1),
            logins=self._logins,
            login_failures=self._login_failures,
            link_downs=self._link_downs,
            last_error=self._last_error or self._parser_stats.last_error,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see ``logged_in``).

        :raises RuntimeError: when called twice.
        """
        if self._runner is not None:
            raise RuntimeError("AmiClient.start() called twice")
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._stop_event = asyncio.Event()
        self._manager = _LinkManager(
            on_lost=self._on_connection_lost,
            loop=loop,
            host=self.host,
            port=self.port,
            username=self._username,
            secret=self._secret,
            events="on",
            protocol_factory=functools.partial(
                AmiProtocol, sink=self._on_message, stats=self._parser_stats
            ),
            forgetable_actions=FORGETABLE_ACTIONS,
        )
        self._runner = self._spawn(self._run(), name="ami-client")

    async def stop(self) -> None:
        """Log off, close the connection and cancel every timer and task we started."""
        if self._runner is None:
            return
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self._link_up:
            try:
                # Goodbye comes after everything Asterisk sent before it, so waiting for it
                # also lets the listener take the events already on their way.
                await self.send_action({"Action": "Logoff"})
            except AmiError as exc:
                log.info("AMI Logoff not confirmed: %s", exc)
        self._end_link(self._link_down, "stopped")
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        # Let the closed transports run their connection_lost callbacks.
        await asyncio.sleep(0)

    async def wait_stopped(self) -> None:
        """Wait until the client stops; re-raise the error (a listener bug) that stopped it.

        :raises Exception: whatever a listener call or a client task raised.
        """
        if self._runner is None:
            return
        await asyncio.wait({self._runner})
        if self._failure is not None:
            raise self._failure

    # -- actions --------------------------------------------------------------------------

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> AmiEvent:
        """Send one action and return its first response (list items go to the listener).

        :raises AmiNotConnected: when no logged-in link exists.
        :raises AmiNoReply: when no response comes within ``timeout`` (default
            ``action_timeout``) or the link goes down first; the action is never re-sent.
        """
        link = self._link_down
        manager = self._manager
        if not self._link_up or link is None or link.done() or manager is None:
            raise AmiNotConnected(f"no logged-in AMI link for {action.get('Action')}")
        name = action.get("Action", "?")
        limit = self.action_timeout if timeout is None else timeout
        reply = manager.send_action(dict(action), as_list=False)
        await asyncio.wait({reply, link}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if reply.done() and not reply.cancelled():
            message = reply.result()
            if isinstance(message, AmiMessage):
                return message.ami_event
            raise AmiError(f"unexpected reply object for {name}: {message!r}")
        if link.done():
            raise AmiNoReply(f"{name}: AMI link lost before the reply ({link.result()})")
        raise AmiNoReply(f"{name}: no reply within {limit:g}s")

    async def originate(
        self,
        *,
        style: OriginateStyle,
        extension: str,
        patient_number: str,
        task_id: str,
        caller_id: str | None = None,
        timeout_s: float = 30.0,
        action_id: str | None = None,
        **channel_options: str,
    ) -> AmiEvent:
        """Send an asynchronous Originate and return Asterisk's first response.

        The outcome follows later as an ``OriginateResponse`` event with the same ActionID
        (``Reason: 4`` answered, ``3`` no answer, ``5`` busy); it reaches
        ``listener.on_event`` like every event. ``channel_options`` are passed to
        ``build_originate`` (channel templates and contexts).

        :raises ValueError: for values ``build_originate`` refuses (nothing is sent).
        :raises AmiNotConnected: when no logged-in link exists (nothing is sent).
        :raises AmiNoReply: when the first response does not come; the Originate is not
            re-sent, because the patient's phone may already be ringing.
        """
        action = build_originate(
            style=style,
            extension=extension,
            patient_number=patient_number,
            task_id=task_id,
            action_id=action_id or new_action_id(f"cb-{task_id}"),
            caller_id=caller_id,
            timeout_s=timeout_s,
            **channel_options,
        )
        return await self.send_action(action)

    # -- the link -------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            self._connects_attempted += 1
            logged_in = await self._session()
            if self._stopping:
                break
            if logged_in:
                attempt = 0
            delay = backoff_delay(
                attempt,
                initial=self.backoff_initial,
                maximum=self.backoff_max,
                rand=self._rng.random() if self._rng is not None else None,
            )
            attempt += 1
            log.info("AMI: reconnecting to %s:%d in %.2fs", self.host, self.port, delay)
            assert self._stop_event is not None
            try:
                await asyncio.wait_for(self._stop_event.wait(), delay)
            except TimeoutError:
                pass

    async def _session(self) -> bool:
        """Run one connection from connect to link down; return whether it logged in."""
        assert self._loop is not None and self._manager is not None
        loop, manager = self._loop, self._manager
        link: asyncio.Future[str] = loop.create_future()
        self._link_down = link
        side_tasks: list[asyncio.Task[Any]] = []
        try:
            try:
                transport, protocol = await asyncio.wait_for(
                    loop.create_connection(
                        manager.config["protocol_factory"], self.host, self.port
                    ),
                    self.connect_timeout,
                )
            except OSError as exc:  # TimeoutError is an OSError
                self._note_error(f"cannot connect to {self.host}:{self.port}: {exc!r}")
                log.warning("AMI: %s", self._last_error)
                return False
            self._connects += 1
            self._protocol = protocol
            made: asyncio.Future[Any] = loop.create_future()
            made.set_result((transport, protocol))
            manager.connection_made(made)  # panoramisk sends Login (Events: on)
            login: asyncio.Future[Any] = cast("asyncio.Future[Any]", manager.authenticated_future)
            self._login_ids = {
                aid for aid, act in protocol.responses.items() if act.future is login
            }
            await asyncio.wait(
                {login, link}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not self._check_login(login, link):
                return False
            # Normally already done by _on_message, in order with the events that follow.
            self._mark_link_up()
            side_tasks.append(self._spawn(self._resync(link), name="ami-resync"))
            side_tasks.append(self._spawn(self._watchdog(link), name="ami-ping-watchdog"))
            reason = await asyncio.shield(link)
            log.warning("AMI link down: %s", reason)
            return True
        finally:
            for task in side_tasks:
                task.cancel()
            self._end_link(link, "stopped")
            self._resync_collector = None
            self._protocol = None
            manager.close()
            if manager.awaiting_actions:
                # Never re-send (see FORGETABLE_ACTIONS); should not happen, say so if it does.
                log.warning("AMI: dropping %d unsent action(s)", len(manager.awaiting_actions))
                manager.awaiting_actions.clear()
            self._login_ids = set()
            if self._link_up:
                self._link_up = False
                self._link_downs += 1
                reason = link.result()
                if reason != "stopped":
                    self._note_error(f"link down: {reason}")
                self._call_listener(self._listener.on_link_down, at=self._clock(), reason=reason)
            self._link_down = None

    def _mark_link_up(self) -> None:
        """Report the link up once per login, before any event that follows the Login reply."""
        link = self._link_down
        if self._link_up or link is None or link.done():
            return
        self._link_up = True
        self._logins += 1
        log.info("AMI: logged in to %s:%d as %r", self.host, self.port, self._username)
        self._call_listener(self._listener.on_link_up, at=self._clock())

    def _check_login(self, login: asyncio.Future[Any], link: asyncio.Future[str]) -> bool:
        """Say whether the Login succeeded; log why not."""
        if login.done() and not login.cancelled() and login.exception() is None:
            reply = login.result()
            if reply.success:
                return True
            self._login_failures += 1
            self._note_error(
                f"login as {self._username!r} rejected: {reply.get('Message') or reply.response}"
            )
            log.error("AMI %s; check AMI_USERNAME/AMI_SECRET; retrying", self._last_error)
            return False
        self._login_failures += 1
        if link.done():
            self._note_error(f"connection lost before the Login reply ({link.result()})")
        else:
            self._note_error(f"no reply to Login within {self.connect_timeout:g}s")
        log.warning("AMI: %s", self._last_error)
        return False

    async def _watchdog(self, link: asyncio.Future[str]) -> None:
        """Ping every ``ping_interval``; end the link when a Ping goes unanswered."""
        assert self._manager is not None
        while not link.done():
            await asyncio.sleep(self.ping_interval)
            if link.done():
                return
            pong = self._manager.send_action({"Action": "Ping"}, as_list=False)
            for _ in range(PING_BUSY_FACTOR):
                seen = self._parser_stats.messages
                await asyncio.wait(
                    {pong, link}, timeout=self.ping_timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if pong.done() or link.done() or self._parser_stats.messages == seen:
                    break
                # Messages still arrive: the Pong is queued behind them, the link is alive.
            if not pong.done() and not link.done():
                if self._parser_stats.messages == seen:
                    self._end_link(link, f"no reply to Ping within {self.ping_timeout:g}s")
                else:
                    limit = PING_BUSY_FACTOR * self.ping_timeout
                    self._end_link(link, f"no reply to Ping within {limit:g}s of busy link")

    async def _resync(self, link: asyncio.Future[str]) -> None:
        """Ask for live channels and queue state; ``_on_message`` delivers the answer."""
        assert self._loop is not None and self._manager is not None
        done: asyncio.Future[None] = self._loop.create_future()
        collector = _ResyncCollector(
            channels_id=new_action_id("coreshowchannels"),
            queue_id=new_action_id("queuestatus"),
            done=done,
        )
        self._resync_collector = collector
        # The futures resolve through panoramisk; the items are collected in arrival order
        # by _on_message, so nobody needs to await these.
        self._manager.send_action(build_core_show_channels(action_id=collector.channels_id))
        self._manager.send_action(build_queue_status(action_id=collector.queue_id))
        waits: list[asyncio.Future[Any]] = [done, link]
        await asyncio.wait(waits, timeout=self.action_timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done.done() and not link.done():
            self._end_link(link, f"no complete re-sync reply within {self.action_timeout:g}s")

    # -- callbacks from the protocol ------------------------------------------------------

    def _on_message(self, message: AmiEvent) -> None:
        """Sink of AmiProtocol: events to the listener, re-sync lists collected in order."""
        link = self._link_down
        if link is None or link.done():
            return  # the link was declared down; its transport is closing
        if (
            message.kind == "response"
            and message.action_id in self._login_ids
            and message.name == "Success"
        ):
            self._mark_link_up()
        collector = self._resync_collector
        if message.kind == "event":
            self._events += 1
            if collector is None or not collector.hold(message):
                self._call_listener(self._listener.on_event, message)
        if collector is not None and collector.feed(message):
            self._resync_collector = None
            items = collector.items
            channels = [e for e in items[collector.channels_id] if e.name in CHANNEL_ITEMS]
            queue = [e for e in items[collector.queue_id] if e.name in QUEUE_ITEMS]
            log.info("AMI re-sync: %d channel(s), %d queue item(s)", len(channels), len(queue))
            self._call_listener(
                self._listener.on_resync, channels=channels, queue_entries=queue, at=self._clock()
            )
            for held in collector.held:
                self._call_listener(self._listener.on_event, held)
            if not collector.done.done():
                collector.done.set_result(None)

    def _on_connection_lost(self, exc: Exception | None) -> None:
        if self._stopping:
            reason = "stopped"
        elif isinstance(exc, ServerShutdown):
            reason = str(exc)
        elif exc is None:
            reason = "connection closed by Asterisk"
        else:
            reason = f"connection lost: {exc!r}"
        self._end_link(self._link_down, reason)

    # -- helpers --------------------------------------------------------------------------

    def _end_link(self, link: asyncio.Future[str] | None, reason: str) -> None:
        if link is None or link.done():
            return
        link.set_result(reason)
        if link is self._link_down and self._manager is not None:
            # Close now, so that no event arrives between "down" and on_link_down.
            self._manager.close()

    def _note_error(self, text: str) -> None:
        self._last_error = text

    def _call_listener(self, method: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:
            # A listener bug: say it loudly and stop, rather than drop events one by one.
            log.exception("AMI listener %s failed; stopping the AMI client", method.__name__)
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        self._end_link(self._link_down, f"stopped by an error: {exc!r}")

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("AMI client task %s failed", task.get_name(), exc_info=exc)
            self._fail(exc)
