"""Serve the web app from a thread, next to the asyncio listener in the same process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)


@dataclass
class WebServer:
    """A running web server: where it listens and how to stop it."""

    host: str
    port: int
    _server: BaseWSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting requests and wait for the serving thread to end."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


def start_web_in_thread(app: Flask, *, host: str, port: int) -> WebServer:
    """Serve ``app`` (HTTP + Socket.IO over WebSocket) on a daemon thread; port 0 picks one.

    Werkzeug's threaded server, one thread per connection: the Socket.IO threading mode with
    simple-websocket needs nothing else, and no monkey patching touches the asyncio listener.
    """
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    actual_port = server.server_port
    log.info("web panel on http://%s:%d", host, actual_port)
    return WebServer(host=host, port=actual_port, _server=server, _thread=thread)
