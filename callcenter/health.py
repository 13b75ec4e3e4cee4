"""What `/readyz` needs to know about the AMI link: a notifier that records up/down.

The listener runs on an asyncio loop and the web server on threads; ``LinkHealth`` is written
from the loop (``link_state``) and read from request threads, so its state sits behind a lock.
A process that runs no listener passes no ``LinkHealth`` to the web app and /readyz skips AMI.
``callcenter listen`` has no panel: ``start_ops_server`` answers the same paths on
``METRICS_PORT``; its /readyz also reports the store writer (503 while the database is
unreachable and writes are held) and Redis when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.dispatch import StoreWriter, WriterStats
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


#: Seconds a Redis check may take; a probe must answer quickly either way.
REDIS_TIMEOUT_S = 2.0


def check_redis(url: str) -> dict[str, Any]:
    """Ping Redis; return ``{"ok": True}`` or ``{"ok": False, "error": ...}``."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
    except Exception as exc:
        log.warning("readyz: Redis unreachable: %s", exc)
        text = str(exc).strip()
        return {"ok": False, "error": f"Redis: {type(exc).__name__}: {text[:200]}"}
    finally:
        client.close()
    return {"ok": True}


def check_store_writer(stats: WriterStats, *, now: float | None = None) -> dict[str, Any]:
    """Say whether the store writer is writing (not holding writes for an unreachable store)."""
    check: dict[str, Any] = {"ok": stats.unavailable_since is None, "backlog": stats.backlog}
    if stats.unavailable_since is not None:
        held = (now if now is not None else time.time()) - stats.unavailable_since
        check["error"] = f"database unreachable for {held:.1f}s; {stats.backlog} write(s) held"
    return check


class _WriterCollector(Collector):
    """Export a ``StoreWriter``'s backlog and counters on each scrape."""

    def __init__(self, stats: Callable[[], WriterStats]) -> None:
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        yield GaugeMetricFamily(
            "callcenter_store_backlog",
            "Store writes queued or held (database unreachable), not yet done.",
            value=stats.backlog,
        )
        yield GaugeMetricFamily(
            "callcenter_store_unavailable",
            "1 while the store writer holds writes because the database is unreachable.",
            value=0 if stats.unavailable_since is None else 1,
        )
        for name, doc, value in (
            ("callcenter_store_retries", "Store writes retried after a lost connection.",
             stats.retries),
            ("callcenter_store_failures", "Store writes that failed for good (logged).",
             stats.failures),
            ("callcenter_store_dropped", "Held store writes given up at shutdown.",
             stats.dropped),
        ):  # fmt: skip
            yield CounterMetricFamily(name, doc, value=value)


def watch_store_writer(metrics: Metrics, writer: StoreWriter) -> None:
    """Export ``writer``'s backlog, retries, failures and drops in ``metrics``."""
    metrics.registry.register(_WriterCollector(lambda: writer.stats))


class _OpsHandler(BaseHTTPRequestHandler):
    """GET /healthz, /readyz (AMI link, store, Redis) and /metrics without the panel."""

    server: _OpsHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
        elif path == "/readyz":
            checks = self.server.checks()
            ready = all(check["ok"] for check in checks.values())
            body = {"status": "ready" if ready else "not ready", "checks": checks}
            self._send(200 if ready else 503, "application/json", json.dumps(body).encode())
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

    def __init__(
        self,
        address: tuple[str, int],
        *,
        link: LinkHealth,
        metrics: Metrics,
        writer: StoreWriter | None,
        redis_url: str | None,
    ) -> None:
        super().__init__(address, _OpsHandler)
        self.link = link
        self.metrics = metrics
        self.writer = writer
        self.redis_url = redis_url

    def checks(self) -> dict[str, dict[str, Any]]:
        """Run the readiness checks: AMI link, store writer, Redis (what is configured)."""
        link = self.link.snapshot()
        ami: dict[str, Any] = {"ok": link.up, "since": link.since}
        if not link.up:
            ami["error"] = link.reason
        checks = {"ami": ami}
        if self.writer is not None:
            checks["store"] = check_store_writer(self.writer.stats)
        if self.redis_url:
            checks["redis"] = check_redis(self.redis_url)
        return checks


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


def start_ops_server(
    *,
    host: str,
    port: int,
    link: LinkHealth,
    metrics: Metrics,
    writer: StoreWriter | None = None,
    redis_url: str | None = None,
) -> OpsServer:
    """Serve /healthz, /readyz and /metrics from a daemon thread (``callcenter listen``).

    /readyz checks the AMI link, and also the store writer (``writer``) and Redis
    (``redis_url``) when given.
    """
    server = _OpsHTTPServer(
        (host, port), link=link, metrics=metrics, writer=writer, redis_url=redis_url
    )
    thread = threading.Thread(target=server.serve_forever, name="ops-http", daemon=True)
    thread.start()
    actual = int(server.server_address[1])
    log.info("health and metrics on http://%s:%d", host, actual)
    return OpsServer(port=actual, _server=server, _thread=thread)
