"""Our asyncio protocol for panoramisk's ``Manager``: our parser, panoramisk's action futures.

panoramisk 1.4's ``AMIProtocol.data_received`` damages real Asterisk traffic: it decodes each
network chunk on its own with ``errors='ignore'`` (a Cyrillic letter split across two reads
vanishes), strips each frame before splitting it (a last header with an empty value such as
``AppData: `` is lost) and drops frames without ``Event``/``Response`` silently.

``AmiProtocol`` keeps everything else of panoramisk (login, ``send_action`` futures, the
``forgetable_actions`` bookkeeping on close) and replaces only the reading side:

* one ``FrameParser`` per connection frames raw bytes and decodes each whole frame once;
* every message goes to ``sink`` as an ``AmiEvent`` (fast path: no panoramisk ``Message`` for
  plain events);
* a panoramisk ``Message`` is built only where panoramisk needs one: responses, and events that
  carry the ActionID of a pending action (list items up to ``*Complete``, OriginateResponse), so
  ``send_action`` futures resolve as usual;
* ``Shutdown`` closes the connection, as panoramisk does;
* malformed frames are counted and logged by the parser, and the stream goes on.

Use it with ``Manager(protocol_factory=functools.partial(AmiProtocol, sink=...))``. Without a
sink, events that answer no action go to panoramisk's ``Manager.dispatch`` as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.ami.events import AmiEvent
from callcenter.ami.parser import FrameParser, ParserStats

log = logging.getLogger(__name__)

EventSink = Callable[[AmiEvent], None]


class ServerShutdown(ConnectionError):
    """Asterisk announced ``Event: Shutdown``; the connection is treated as lost."""


class AmiMessage(Message):
    """A panoramisk ``Message`` that remembers the exact ``AmiEvent`` it was built from."""

    def __init__(self, event: AmiEvent) -> None:
        headers: dict[str, Any] = {}
        for key, value in event.fields:
            if key in headers:
                # panoramisk keeps repeated headers (ChanVariable, Variable) as a list.
                prev = headers[key]
                headers[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                headers[key] = value
        super().__init__(headers)
        # Not ``event``: panoramisk reads ``message.event`` as the Event header.
        self.ami_event = event


def describe_shutdown(event: AmiEvent) -> str:
    """Return a one-line reason for a Shutdown event.

    >>> describe_shutdown(AmiEvent.from_fields(
    ...     [("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "True")], 0.0))
    'Asterisk sent Shutdown (Shutdown: Cleanly, Restart: True)'
    """
    return (
        f"Asterisk sent Shutdown (Shutdown: {event.get('Shutdown', '?')}, "
        f"Restart: {event.get('Restart', '?')})"
    )


class AmiProtocol(AMIProtocol):
    """panoramisk ``AMIProtocol`` with our byte-framed parser and an ``AmiEvent`` sink."""

    def __init__(
        self,
        *,
        sink: EventSink | None = None,
        stats: ParserStats | None = None,
        on_malformed: Callable[[str, bytes], None] | None = None,
    ) -> None:
        super().__init__()
        self.sink = sink
        self.parser = FrameParser(on_malformed=on_malformed)
        if stats is not None:
            # Shared across connections, so the client's counters survive reconnects.
            self.parser.stats = stats
        # Set again by AMIProtocol.connection_made and by Manager.connection_made.
        self.factory: Any = None
        self.responses: dict[str, Any] = {}
        self.closed = False

    def data_received(self, data: bytes) -> None:
        """Frame ``data``, hand every message to the sink and pending replies to panoramisk."""
        for message in self.parser.feed(data):
            if self.sink is not None:
                self.sink(message)
            if message.kind == "banner":
                self.version = message.name.partition("/")[2].strip()
                log.info("AMI banner %r", message.name)
                continue
            action_id = message.action_id
            if message.kind == "response" or (
                action_id is not None and action_id in self.responses
            ):
                self._handle_reply(message)
            elif self.sink is None and self.factory is not None:
                self.factory.dispatch(AmiMessage(message))
            if message.kind == "event" and message.name == "Shutdown":
                log.warning("%s; closing the connection", describe_shutdown(message))
                self.connection_lost(ServerShutdown(describe_shutdown(message)))
                # Asterisk closes right after Shutdown: anything else in this read is moot.
                return

    def _handle_reply(self, message: AmiEvent) -> None:
        pending = self.responses.get(message.action_id or "")
        if pending is None:
            # A reply to an action panoramisk already forgot (a Ping that timed out, or one
            # sent on an earlier connection). Nothing waits for it.
            log.debug("AMI reply to no pending action: %s %s", message.name, message.action_id)
            return
        self.handle_message(AmiMessage(message))

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a frame cut short by the disconnect, then let panoramisk clean up."""
        self.parser.finish()
        if self.closed:
            return
        if self.factory is None:
            self.close()
            return
        super().connection_lost(exc)

    def close(self) -> None:
        """Close the transport; panoramisk forgets or queues the pending actions."""
        if getattr(self, "transport", None) is None:
            self.closed = True
            return
        super().close()
