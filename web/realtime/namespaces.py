"""Socket.IO handlers: operators join their extension's room, supervisors join ``supervisors``.

A connection is accepted only with a logged-in session cookie of the right role; the room comes
from the stored user, never from what the browser sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, session
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room

from web.realtime.notifier import SUPERVISORS_ROOM, WALLBOARD_ROOM, ext_room
from web.security import load_user

if TYPE_CHECKING:
    from web.realtime.notifier import SocketIONotifier


def _db() -> Any:
    from web import db

    return db()


class OperatorNamespace(Namespace):
    """``/operator``: screen pops for one extension."""

    def __init__(self, namespace: str, *, notifier: SocketIONotifier) -> None:
        super().__init__(namespace)
        self.notifier = notifier

    def on_connect(self, auth: Any = None) -> None:
        user = load_user(_db())
        if user is None or user.role != "operator" or not user.extension:
            raise ConnectionRefusedError("login as an operator first")
        # Kept in this connection's Socket.IO session for later events.
        session["ext"] = user.extension
        join_room(ext_room(user.extension))

    def on_sync(self, data: Any = None) -> dict[str, Any]:
        """Return the calls ringing or live on this extension (a reloaded panel asks)."""
        extension = session.get("ext")
        if not isinstance(extension, str):
            return {"pops": []}
        return {"extension": extension, "pops": self.notifier.registry.for_extension(extension)}


class SupervisorNamespace(Namespace):
    """``/supervisor``: every call, task and operator state as it happens.

    A wallboard connects with ``auth={"board": true}``: it joins ``wallboard`` and gets the
    board's snapshot at once, so a page loaded mid-traffic shows who waits and who talks.
    """

    def on_connect(self, auth: Any = None) -> None:
        user = load_user(_db())
        if user is None or user.role != "supervisor":
            raise ConnectionRefusedError("login as a supervisor first")
        join_room(SUPERVISORS_ROOM)
        if isinstance(auth, dict) and auth.get("board"):
            join_room(WALLBOARD_ROOM)
            emit("board", _board_snapshot())


def _board_snapshot() -> dict[str, Any]:
    from web import notifier_for, settings
    from web.realtime.board_store import wallboard_snapshot

    return wallboard_snapshot(notifier_for(current_app).board, redis_url=settings().redis_url)
