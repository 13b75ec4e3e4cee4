"""What `/readyz` needs to know about the AMI link: a notifier that records up/down.

The listener runs on an asyncio loop and the web server on threads; ``LinkHealth`` is written
from the loop (``link_state``) and read from request threads, so its state sits behind a lock.
A process that runs no listener passes no ``LinkHealth`` to the web app and /readyz skips AMI.
``callcenter listen`` has no panel: ``start_ops_server`` answers the same paths on
``METRICS_PORT``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callcenter.metrics import CONTENT_TYPE, Metrics
from callcenter.notify import NullNotifier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """The AMI link as last reported: logged in or not, since when, and why it went down."""

    up: bool
    since: float | None
    reason: str | None


class LinkHealth(NullNotifier):
    """Record the AMI link's state from ``link_state`` notifications (down until first up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = LinkSnapshot(up=False, since=None, reason="not connected yet")

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        with self._lock:
            self._state = LinkSnapshot(up=up, since=at, reason=None if up else reason)

    def snapshot(self) -> LinkSnapshot:
        """Return the last reported state."""
        with self._lock:
            return self._state


@dataclass
class Readiness:
    """What the web app checks for /readyz besides its database (and Redis when configured).

    ``ami`` is set only in processes that run a listener (``serve``, ``demo``).
    """

    ami: LinkHealth | None = None


class _OpsHandler(BaseHTTPRequestHandler):
    """GET /healthz, /readyz (AMI link) and /metrics for a process without the panel."""

    server: _OpsHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
        elif path == "/readyz":
            link = self.server.link.snapshot()
            check: dict[str, object] = {"ok": link.up, "since": link.since}
            if not link.up:
                check["error"] = link.reason
            body = {"status": "ready" if link.up else "not ready", "checks": {"ami": check}}
            self._send(200 if link.up else 503, "application/json", json.dumps(body).encode())
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE, self.server.metrics.render())
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Probes every few seconds would drown the log; errors still go through log_error.
        pass


class _OpsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, link: LinkHealth, metrics: Metrics) -> None:
        super().__init__(address, _OpsHandler)
        self.link = link
        self.metrics = metrics


@dataclass
class OpsServer:
    """A running health and metrics server: its port, and how to stop it."""

    port: int
    _server: _OpsHTTPServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_ops_server(*, host: str, port: int, link: LinkHealth, metrics: Metrics) -> OpsServer:
    """Serve /healthz, /readyz and /metrics from a daemon thread (``callcenter listen``)."""
    server = _OpsHTTPServer((host, port), link=link, metrics=metrics)
    thread = threading.Thread(target=server.serve_forever, name="ops-http", daemon=True)
    thread.start()
    actual = int(server.server_address[1])
    log.info("health and metrics on http://%s:%d", host, actual)
    return OpsServer(port=actual, _server=server, _thread=thread)
