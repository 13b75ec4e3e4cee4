"""Prometheus metrics: what a clinic's monitoring scrapes from ``/metrics``.

Counters that events drive (calls by disposition, AMI link changes) are fed by
``MetricsNotifier``, one more target of the listener's ``FanoutNotifier``. Values that already
live elsewhere are read on each scrape instead of being copied: the AMI client's counters
(``AmiClient.stats``), the open callback tasks (the store), the Socket.IO clients (the web
server). Each ``Metrics`` has its own registry, so several apps in one process (tests) never
clash over metric names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.calls.model import CallRecord
from callcenter.notify import NullNotifier

log = logging.getLogger(__name__)

#: The content type of ``Metrics.render`` (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AmiStatsLike(Protocol):
    """The counters of ``callcenter.ami.client.ClientStats`` that are exported."""

    @property
    def messages(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def logins(self) -> int: ...
    @property
    def login_failures(self) -> int: ...
    @property
    def link_downs(self) -> int: ...


class Metrics:
    """A registry with the call-center's metrics; sources are attached as processes wire up."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "callcenter_calls",
            "Finished calls seen by this process's AMI listener, by disposition.",
            ["disposition"],
            registry=self.registry,
        )
        self.link_changes = Counter(
            "callcenter_ami_link_changes",
            "AMI link state changes reported by the listener (up = logged in).",
            ["state"],
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._ami_stats: Callable[[], AmiStatsLike] | None = None
        self._open_tasks: Callable[[], int] | None = None
        self._socketio_clients: Callable[[], int] | None = None
        self.registry.register(_ScrapeCollector(self))

    def watch_ami(self, stats: Callable[[], AmiStatsLike]) -> None:
        """Export the AMI client's counters, read from ``stats()`` on each scrape."""
        with self._lock:
            self._ami_stats = stats

    def watch_open_tasks(self, count: Callable[[], int]) -> None:
        """Export the number of open callback tasks, counted by ``count()`` on each scrape."""
        with self._lock:
            self._open_tasks = count

    def watch_socketio_clients(self, count: Callable[[], int]) -> None:
        """Export the number of connected Socket.IO clients, read on each scrape."""
        with self._lock:
            self._socketio_clients = count

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def sources(
        self,
    ) -> tuple[
        Callable[[], AmiStatsLike] | None, Callable[[], int] | None, Callable[[], int] | None
    ]:
        """Return the attached scrape-time sources (AMI stats, open tasks, Socket.IO clients)."""
        with self._lock:
            return self._ami_stats, self._open_tasks, self._socketio_clients


class _ScrapeCollector(Collector):
    """Read the attached sources when Prometheus scrapes; a failing source is skipped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        # Names depend on which sources are attached: let collect() define them.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        ami_stats, open_tasks, socketio_clients = self._metrics.sources()
        if ami_stats is not None:
            stats = ami_stats()
            for name, doc, value in (
                ("callcenter_ami_messages", "AMI messages parsed.", stats.messages),
                ("callcenter_ami_malformed_frames", "Malformed AMI frames.", stats.malformed),
                ("callcenter_ami_reconnects", "AMI connection attempts after the first.",
                 stats.reconnects),
                ("callcenter_ami_logins", "Successful AMI logins.", stats.logins),
                ("callcenter_ami_login_failures", "Rejected or unanswered AMI logins.",
                 stats.login_failures),
                ("callcenter_ami_link_downs", "Logged-in AMI links that went down.",
                 stats.link_downs),
            ):  # fmt: skip
                yield CounterMetricFamily(name, doc, value=value)
        if open_tasks is not None:
            tasks = _read(open_tasks, "open tasks")
            if tasks is not None:
                yield GaugeMetricFamily(
                    "callcenter_open_tasks", "Open callback tasks in the store.", value=tasks
                )
        if socketio_clients is not None:
            clients = _read(socketio_clients, "Socket.IO clients")
            if clients is not None:
                yield GaugeMetricFamily(
                    "callcenter_socketio_clients",
                    "Socket.IO clients connected to this web process.",
                    value=clients,
                )


def _read(source: Callable[[], int], what: str) -> int | None:
    try:
        return source()
    except Exception:
        # A scrape must still report the rest (and /readyz says what is down).
        log.warning("metrics: cannot read %s", what, exc_info=True)
        return None


class MetricsNotifier(NullNotifier):
    """Count finished calls by disposition and AMI link changes."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def call_ended(self, call: CallRecord) -> None:
        self.metrics.calls.labels(disposition=str(call.disposition)).inc()

    def link_state(self, *, up: bool, at: float, reason: str | None) -> None:
        self.metrics.link_changes.labels(state="up" if up else "down").inc()
