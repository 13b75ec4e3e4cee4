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
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.calls.model import CallRecord
from callcenter.notify import NullNotifier

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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


class StoreFiguresLike(Protocol):
    """What ``callcenter.store.queries.store_figures`` returns."""

    @property
    def open_tasks(self) -> int: ...
    @property
    def originates_by_outcome(self) -> dict[str, int]: ...
    @property
    def transcripts_by_status(self) -> dict[str, int]: ...
    @property
    def transcribed_audio_s(self) -> float: ...


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
        self._store: Callable[[], StoreFiguresLike] | None = None
        self._socketio_clients: Callable[[], int] | None = None
        self.registry.register(_ScrapeCollector(self))

    def watch_ami(self, stats: Callable[[], AmiStatsLike]) -> None:
        """Export the AMI client's counters, read from ``stats()`` on each scrape."""
        with self._lock:
            self._ami_stats = stats

    def watch_store(self, figures: Callable[[], StoreFiguresLike]) -> None:
        """Export what the store knows, read by ``figures()`` on each scrape: open tasks,
        callback originates by outcome (every dialer process's, as stored) and transcription
        jobs by status with the audio seconds transcribed."""
        with self._lock:
            self._store = figures

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
        Callable[[], AmiStatsLike] | None,
        Callable[[], StoreFiguresLike] | None,
        Callable[[], int] | None,
    ]:
        """Return the attached scrape-time sources (AMI stats, store, Socket.IO clients)."""
        with self._lock:
            return self._ami_stats, self._store, self._socketio_clients


class _ScrapeCollector(Collector):
    """Read the attached sources when Prometheus scrapes; a failing source is skipped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        # Names depend on which sources are attached: let collect() define them.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        ami_stats, store, socketio_clients = self._metrics.sources()
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
        if store is not None:
            figures = _read(store, "store figures")
            if figures is not None:
                yield from _store_metrics(figures)
        if socketio_clients is not None:
            clients = _read(socketio_clients, "Socket.IO clients")
            if clients is not None:
                yield GaugeMetricFamily(
                    "callcenter_socketio_clients",
                    "Socket.IO clients connected to this web process.",
                    value=clients,
                )


def _store_metrics(figures: StoreFiguresLike) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "callcenter_open_tasks", "Open callback tasks in the store.", value=figures.open_tasks
    )
    originates = CounterMetricFamily(
        "callcenter_originates",
        "Callback Originates (task attempts) by outcome, as stored by every dialer.",
        labels=["outcome"],
    )
    for outcome, count in sorted(figures.originates_by_outcome.items()):
        originates.add_metric([outcome], count)
    yield originates
    jobs = GaugeMetricFamily(
        "callcenter_transcriptions",
        "Transcription jobs by status (queued, done, no_audio, failed).",
        labels=["status"],
    )
    for status, count in sorted(figures.transcripts_by_status.items()):
        jobs.add_metric([status], count)
    yield jobs
    yield GaugeMetricFamily(
        "callcenter_transcribed_audio_seconds",
        "Seconds of recorded audio transcribed (stored transcripts).",
        value=figures.transcribed_audio_s,
    )


def _read(source: Callable[[], _T], what: str) -> _T | None:
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
