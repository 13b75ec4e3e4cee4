"""Extension objects, created unbound and bound to an app in ``create_app`` (no app at import)."""

from __future__ import annotations

from flask import Flask
from flask_socketio import SocketIO

from callcenter.config import Settings

#: The one Socket.IO server. Threading mode (simple-websocket): no eventlet/gevent monkey
#: patching ever runs under the asyncio AMI listener (STYLE.md point 11).
socketio = SocketIO()


def init_socketio(app: Flask, settings: Settings) -> SocketIO:
    """Bind ``socketio`` to the app; with REDIS_URL, emits from other processes arrive too."""
    # NOTE: init_app keeps the message-queue manager of an earlier call in server_options; an app
    # built without REDIS_URL after one built with it (tests) must not inherit that queue.
    socketio.server_options.pop("client_manager", None)
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=settings.redis_url,
        # Same-origin only: the panel is served by this app.
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
    )
    return socketio
