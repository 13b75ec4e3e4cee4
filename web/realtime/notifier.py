"""``SocketIONotifier``: the Notifier port pushed to browsers over Socket.IO.

Rooms: each operator's extension (``ext:101``) in the ``/operator`` namespace, so a direct line
ringing 101 never reaches 102; ``supervisors`` in ``/supervisor`` sees every call; ``wallboard``
(supervisors whose page shows the wallboard) gets the whole ``LiveBoard`` after every change.

Concurrency: the port is called from the AMI listener's event loop (calls) and from the store
writer thread (tasks). The loop must never wait for the database, so every notification is
queued to one ``screen-pops`` thread, in order: it loads the card, keeps the registry of live
pops and emits. One thread also keeps a pop's withdrawal from overtaking the pop itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_socketio import SocketIO
from sqlalchemy.orm import Session, sessionmaker

from callcenter.calls.effects import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallQueued,
    CallStarted,
    OperatorStateChanged,
)
from callcenter.calls.model import CallRecord
from callcenter.dispatch import StoreWriter
from callcenter.notify import TaskNotice, call_payload
from callcenter.patients.phone import normalize_phone
from callcenter.reports.figures import CallRow, Period
from callcenter.store.reports import load_call_rows
from web.realtime.board import LiveBoard
from web.realtime.cards import ContentLoader, make_content_loader

log = logging.getLogger(__name__)

OPERATOR_NS = "/operator"
SUPERVISOR_NS = "/supervisor"
SUPERVISORS_ROOM = "supervisors"
WALLBOARD_ROOM = "wallboard"
#: How long an ended call's card stays on its operator's screen (for the outcome) if not dismissed.
ENDED_POP_TTL_S = 30 * 60

#: emit(event, payload, room or None for the whole namespace, namespace)
Emit = Callable[[str, dict[str, Any], str | None, str], None]


def ext_room(extension: str) -> str:
    """Return the room of one operator's extension.

    >>> ext_room("101")
    'ext:101'
    """
    return f"ext:{extension}"


def emitter_for(socketio: SocketIO) -> Emit:
    """Return an ``Emit`` that sends through this Socket.IO server (or its message queue)."""

    def emit(event: str, payload: dict[str, Any], room: str | None, namespace: str) -> None:
        socketio.emit(event, payload, to=room, namespace=namespace)

    return emit


@dataclass
class Pop:
    """One call's screen pop: who it rings, who answered, the card."""

    linkedid: str
    caller: str | None
    caller_name: str | None
    queue: str | None
    ringing: set[str] = field(default_factory=set)
    answered_by: str | None = None
    state: str = "ringing"  # "ringing" | "live" | "ended"
    card: dict[str, Any] | None = None
    # The playbook's suggested script, when the playbook part provides one.
    script: dict[str, Any] | None = None
    ended_at: float | None = None

    def payload(self, extension: str | None = None) -> dict[str, Any]:
        """Return what the operator panel of ``extension`` receives (the one serializer of pops).

        A phone ringing for a call someone already answered (a transfer) sees it as ringing.
        """
        state = "ringing" if extension is not None and extension in self.ringing else self.state
        return {
            "linkedid": self.linkedid,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "queue": self.queue,
            "state": state,
            "answered_by": self.answered_by,
            "card": self.card,
            "script": self.script,
        }


class PopRegistry:
    """Live pops by linkedid, so a panel reloaded mid-call gets its cards back."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._pops: dict[str, Pop] = {}
        self._clock = clock

    def get(self, linkedid: str) -> Pop | None:
        with self._lock:
            return self._pops.get(linkedid)

    def put(self, pop: Pop) -> None:
        with self._lock:
            self._prune()
            self._pops[pop.linkedid] = pop

    def remove(self, linkedid: str) -> None:
        with self._lock:
            self._pops.pop(linkedid, None)

    def mark_ended(self, pop: Pop) -> None:
        with self._lock:
            pop.state = "ended"
            pop.ringing.clear()
            pop.ended_at = self._clock()

    def for_extension(self, extension: str) -> list[dict[str, Any]]:
        """Return the pops on this extension's screen: ringing it, or answered by it."""
        with self._lock:
            self._prune()
            return [
                pop.payload(extension)
                for pop in self._pops.values()
                if extension in pop.ringing or pop.answered_by == extension
            ]

    def phone_of(self, linkedid: str) -> str | None:
        """Return the E.164 number of a popped call, if known."""
        with self._lock:
            pop = self._pops.get(linkedid)
        if pop is None:
            return None
        if pop.card and pop.card.get("phone"):
            return str(pop.card["phone"])
        return normalize_phone(pop.caller)

    def dismiss(self, linkedid: str, *, extension: str) -> bool:
        """Drop an ended call's card once its operator recorded the outcome."""
        with self._lock:
            pop = self._pops.get(linkedid)
            if pop is None or pop.answered_by != extension or pop.state != "ended":
                return False
            del self._pops[linkedid]
            return True

    def _prune(self) -> None:
        now = self._clock()
        stale = [
            k
            for k, p in self._pops.items()
            if p.ended_at is not None and now - p.ended_at > ENDED_POP_TTL_S
        ]
        for k in stale:
            del self._pops[k]


class SocketIONotifier:
    """Push screen pops to the ringing operators and live calls to supervisors."""

    def __init__(
        self,
        *,
        emit: Emit,
        session_factory: sessionmaker[Session] | None = None,
        content_loader: ContentLoader | None = None,
        registry: PopRegistry | None = None,
        board: LiveBoard | None = None,
        publish_board: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if content_loader is None and session_factory is not None:
            content_loader = make_content_loader(session_factory)
        self._emit = emit
        self._load_content = content_loader
        self.registry = registry or PopRegistry()
        self.board = board or LiveBoard(
            rows_loader=make_rows_loader(session_factory) if session_factory else None
        )
        # Where the board is also kept for a web server in another process (Redis), if any.
        self._publish_board = publish_board
        self._now = now
        self._outbound: set[str] = set()  # linkedids of live calls we placed
        self._jobs = StoreWriter(name="screen-pops")

    # -- the Notifier port (called from the event loop or the store writer) --

    def call_started(self, effect: CallStarted) -> None:
        payload = {
            "linkedid": effect.linkedid,
            "direction": str(effect.direction),
            "caller": effect.caller,
            "caller_name": effect.caller_name,
            "did": effect.did,
            "ts": effect.ts,
        }

        def send() -> None:
            if str(effect.direction) == "outbound":
                # A callback we placed: its pop suggests the script of the task it answers.
                self._outbound.add(effect.linkedid)
            self._to_supervisors("call_started", payload)
            self.board.call_started(effect)
            self._send_board()

        self._jobs.submit(send)

    def call_queued(self, effect: CallQueued) -> None:
        payload = {
            "linkedid": effect.linkedid,
            "queue": effect.queue,
            "caller": effect.caller,
            "position": effect.position,
            "ts": effect.ts,
        }

        def send() -> None:
            self._to_supervisors("call_queued", payload)
            self.board.call_queued(effect)

        self._jobs.submit(send)

    def call_ringing(self, effect: AgentRinging) -> None:
        self._jobs.submit(lambda: self._ring(effect))

    def agent_stopped_ringing(self, effect: AgentStoppedRinging) -> None:
        self._jobs.submit(lambda: self._stop_ringing(effect))

    def call_answered(self, effect: CallAnswered) -> None:
        self._jobs.submit(lambda: self._answer(effect))

    def call_ended(self, call: CallRecord) -> None:
        self._jobs.submit(lambda: self._end(call))

    def task_changed(self, notice: TaskNotice) -> None:
        payload = {
            "task_id": notice.task_id,
            "phone": notice.phone,
            "reason": notice.reason,
            "status": notice.status,
            "linkedid": notice.linkedid,
            "detail": notice.detail,
        }

        def send() -> None:
            self._to_supervisors("task_changed", payload)
            # Every operator's callback list refreshes on it (tasks are shared work).
            self._emit("task_changed", payload, None, OPERATOR_NS)

        self._jobs.submit(send)

    def operator_state(self, effect: OperatorStateChanged) -> None:
        payload = {
            "agent": effect.agent,
            "agent_name": effect.agent_name,
            "status": str(effect.status),
            "ts": effect.ts,
            "until": effect.until,
        }

        def send() -> None:
            self._to_supervisors("operator_state", payload)
            # The operator sees their own state as Asterisk reports it (paused, ringing, ...).
            self._emit("operator_state", payload, ext_room(effect.agent), OPERATOR_NS)
            self.board.operator_state(
                agent=effect.agent,
                agent_name=effect.agent_name,
                status=str(effect.status),
                ts=effect.ts,
                until=effect.until,
            )
            self._send_board()

        self._jobs.submit(send)

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        payload = {"up": up, "at": at, "reason": reason}

        def send() -> None:
            self._emit("link_state", payload, None, OPERATOR_NS)
            self._to_supervisors("link_state", payload)
            self.board.link_state(up=up, reason=reason)
            self._send_board()

        self._jobs.submit(send)

    # -- lifecycle --

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every notification queued so far has been emitted."""
        return self._jobs.flush(timeout)

    def close(self) -> None:
        """Emit what is queued, then stop the screen-pops thread."""
        self._jobs.stop()

    def dismiss(self, linkedid: str, *, extension: str) -> None:
        """Take an ended call's card off the operator's screens (outcome recorded)."""
        if self.registry.dismiss(linkedid, extension=extension):
            self._jobs.submit(
                lambda: self._emit(
                    "pop_withdrawn",
                    {"linkedid": linkedid, "reason": "done"},
                    ext_room(extension),
                    OPERATOR_NS,
                )
            )

    # -- on the screen-pops thread --

    def _ring(self, effect: AgentRinging) -> None:
        pop = self.registry.get(effect.linkedid)
        if pop is None:
            pop = Pop(
                linkedid=effect.linkedid,
                caller=effect.caller,
                caller_name=effect.caller_name,
                queue=effect.queue,
            )
            pop.card, pop.script = self._content(
                effect.caller, outbound=effect.linkedid in self._outbound
            )
            self.registry.put(pop)
        pop.ringing.add(effect.agent)
        self._emit("pop", pop.payload(effect.agent), ext_room(effect.agent), OPERATOR_NS)
        self._to_supervisors(
            "call_ringing",
            {
                "linkedid": effect.linkedid,
                "agent": effect.agent,
                "agent_name": effect.agent_name,
                "caller": effect.caller,
                "caller_name": effect.caller_name,
                "queue": effect.queue,
                "ts": effect.ts,
            },
        )
        # After the pop: the ringing phone's card never waits for the wallboard.
        self.board.call_ringing(effect)
        self._send_board()

    def _stop_ringing(self, effect: AgentStoppedRinging) -> None:
        self.board.agent_stopped_ringing(effect.linkedid, effect.agent)
        self._send_board()
        pop = self.registry.get(effect.linkedid)
        if pop is None or effect.agent not in pop.ringing:
            return  # already withdrawn (someone answered) or never popped here
        pop.ringing.discard(effect.agent)
        self._withdraw(effect.linkedid, effect.agent, reason=effect.reason)

    def _answer(self, effect: CallAnswered) -> None:
        payload = {"linkedid": effect.linkedid, "agent": effect.agent, "ts": effect.ts}
        self._to_supervisors("call_answered", payload)
        self.board.call_answered(effect.linkedid)
        self._send_board()
        pop = self.registry.get(effect.linkedid)
        if pop is None or effect.agent is None:
            return
        others = pop.ringing - {effect.agent}
        pop.ringing.clear()
        pop.answered_by = effect.agent
        pop.state = "live"
        self._emit("pop", pop.payload(), ext_room(effect.agent), OPERATOR_NS)
        # A ring-all queue rang several phones: the card leaves every other screen at once.
        for agent in sorted(others):
            self._withdraw(effect.linkedid, agent, reason="answered_elsewhere")

    def _end(self, call: CallRecord) -> None:
        self._outbound.discard(call.linkedid)
        self._to_supervisors("call_ended", call_payload(call))
        self.board.call_ended(call)
        self._send_board()
        pop = self.registry.get(call.linkedid)
        if pop is None:
            return
        for agent in sorted(pop.ringing - {pop.answered_by or ""}):
            self._withdraw(call.linkedid, agent, reason="ended")
        if pop.answered_by is None:
            self.registry.remove(call.linkedid)
            return
        self.registry.mark_ended(pop)
        payload = pop.payload()
        payload["disposition"] = str(call.disposition)
        payload["talk_s"] = call.talk_s
        self._emit("pop", payload, ext_room(pop.answered_by), OPERATOR_NS)

    def _withdraw(self, linkedid: str, agent: str, *, reason: str) -> None:
        self._emit(
            "pop_withdrawn", {"linkedid": linkedid, "reason": reason}, ext_room(agent), OPERATOR_NS
        )

    def _to_supervisors(self, event: str, payload: dict[str, Any]) -> None:
        self._emit(event, payload, SUPERVISORS_ROOM, SUPERVISOR_NS)

    def _send_board(self) -> None:
        try:
            snapshot = self.board.snapshot()
        except Exception:
            # The wallboard (today's figures come from the database) must never stop a pop.
            log.exception("building the wallboard snapshot failed")
            return
        self._emit("board", snapshot, WALLBOARD_ROOM, SUPERVISOR_NS)
        if self._publish_board is not None:
            try:
                self._publish_board(snapshot)
            except Exception:
                log.exception("sharing the wallboard through Redis failed")

    def _content(
        self, caller: str | None, *, outbound: bool = False
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if self._load_content is None:
            return None, None
        try:
            return self._load_content(caller, self._now(), outbound)
        except Exception:
            # The phone is ringing: pop the number now rather than nothing; the card's failure
            # is logged with its traceback for the fix.
            log.exception("loading the card for %r failed", caller)
            return None, None


def make_rows_loader(factory: sessionmaker[Session]) -> Callable[[Period], list[CallRow]]:
    """Return ``period -> stored calls`` for the wallboard's figures, in its own session."""

    def load(period: Period) -> list[CallRow]:
        with factory() as session:
            return load_call_rows(session, period=period)

    return load


def build_queue_notifier(
    *, redis_url: str, session_factory: sessionmaker[Session], timezone: str | None = None
) -> SocketIONotifier:
    """Return a notifier for a process without the web server: emits go through Redis.

    Such a process keeps its own pop registry, so a panel reloaded mid-call gets its cards
    back only when the listener runs in the web server's process (the embedded default). Its
    wallboard is also saved in Redis after every change, for the web server to start
    wallboards from. ``timezone``: the clinic's (today's figures); by default the one the
    environment configures (``CLINIC_TIMEZONE``).
    """
    from callcenter.config import Settings
    from web.realtime.board_store import RedisBoardStore

    return SocketIONotifier(
        emit=emitter_for(SocketIO(message_queue=redis_url)),
        session_factory=session_factory,
        board=LiveBoard(
            rows_loader=make_rows_loader(session_factory),
            timezone=timezone or Settings.from_env().timezone,
        ),
        publish_board=RedisBoardStore(redis_url).save,
    )
