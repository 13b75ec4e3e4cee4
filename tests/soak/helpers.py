"""Helpers of the soak tests: a simulator on its own thread, subprocess environments, polling."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.ami.traces import trace_path
from callcenter.store.db import create_db_engine, create_session_factory
from callcenter.store.models import Call

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    """GET a URL; return (status, body), or (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, repr(exc)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def process_env(**overrides: str) -> dict[str, str]:
    """The environment of a `callcenter` subprocess: ours without the app's variables."""
    prefixes = ("AMI_", "DATABASE_", "LOG_", "REDIS_", "WEB_", "METRICS_", "HUEY_", "SECRET_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(overrides)
    return env


def stored_calls(url: str) -> list[tuple[str, str | None, str]]:
    """Return (linkedid, caller, disposition) of every stored call."""
    engine = create_db_engine(url)
    try:
        with create_session_factory(engine)() as session:
            rows = session.execute(select(Call.linkedid, Call.caller, Call.disposition))
            return [(linkedid, caller, disposition) for linkedid, caller, disposition in rows]
    finally:
        engine.dispose()


def expected_calls(trace: str) -> list[dict[str, Any]]:
    """The calls of a recorded trace, from its ``.expected.json``."""
    path = trace_path(trace)
    expected = path.with_name(path.name.removesuffix(".jsonl") + ".expected.json")
    return list(json.loads(expected.read_text(encoding="utf-8"))["calls"])
