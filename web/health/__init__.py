"""Operations endpoints, no login: ``/healthz`` (alive), ``/readyz`` (can serve), ``/metrics``.

``/readyz`` checks what this process depends on: the database always, the AMI link when this
process runs a listener (``Readiness.ami`` is set), Redis when ``REDIS_URL`` is configured. It
answers 200 with each check's result, or 503 when one fails, so a load balancer or an
orchestrator stops sending work to a process that cannot do it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response

from callcenter.health import Readiness
from callcenter.metrics import CONTENT_TYPE, Metrics
from callcenter.store import queries

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

_READINESS_KEY = "callcenter.readiness"
_METRICS_KEY = "callcenter.metrics"

#: Seconds a Redis check may take; a probe must answer quickly either way.
REDIS_TIMEOUT_S = 2.0


def init_health(
    app: Flask,
    *,
    readiness: Readiness,
    metrics: Metrics,
    session_factory: sessionmaker[Session],
) -> None:
    """Register the endpoints and attach what they report on."""
    app.extensions[_READINESS_KEY] = readiness
    app.extensions[_METRICS_KEY] = metrics

    def store_figures() -> queries.StoreFigures:
        with session_factory() as session:
            return queries.store_figures(session)

    metrics.watch_store(store_figures)
    metrics.watch_socketio_clients(_socketio_client_count)
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Check the database, the AMI link (listener processes) and Redis (when configured)."""
    from web import settings

    readiness: Readiness = current_app.extensions[_READINESS_KEY]
    checks: dict[str, dict[str, Any]] = {"database": _check_database()}
    if readiness.ami is not None:
        link = readiness.ami.snapshot()
        checks["ami"] = {"ok": link.up, "since": link.since}
        if not link.up:
            checks["ami"]["error"] = link.reason
    redis_url = settings().redis_url
    if redis_url:
        checks["redis"] = _check_redis(redis_url)
    ready = all(check["ok"] for check in checks.values())
    body = jsonify(status="ready" if ready else "not ready", checks=checks)
    return body, 200 if ready else 503


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric in the Prometheus text format."""
    registry: Metrics = current_app.extensions[_METRICS_KEY]
    return Response(registry.render(), content_type=CONTENT_TYPE)


def _check_database() -> dict[str, Any]:
    from web import db

    try:
        with db()() as session:
            queries.ping(session)
    except Exception as exc:
        log.warning("readyz: database unreachable: %s", exc)
        return {"ok": False, "error": _short(exc)}
    return {"ok": True}


def _check_redis(url: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
    except Exception as exc:
        log.warning("readyz: Redis unreachable: %s", exc)
        return {"ok": False, "error": _short(exc)}
    finally:
        client.close()
    return {"ok": True}


def _socketio_client_count() -> int:
    from web.extensions import socketio

    server = socketio.server
    if server is None:
        return 0
    return len(server.eio.sockets)


def _short(exc: Exception) -> str:
    """Return the first line of an error, with its type (no stack, no connection secrets)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]
