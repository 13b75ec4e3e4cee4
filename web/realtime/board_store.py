"""The wallboard shared through Redis, when the listener runs in another process than the web.

The listener's notifier saves its board after every change; the web process, whose own board
no listener feeds, starts a wallboard that connects from the saved one (aged to now), so a page
opened mid-traffic shows who waits and who talks in the split deployment too.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

import redis

from web.realtime.board import LiveBoard, age_snapshot

log = logging.getLogger(__name__)

BOARD_KEY = "callcenter:wallboard"
#: A board not saved for this long is forgotten (the listener is gone).
BOARD_TTL_S = 12 * 3600


class RedisBoardStore:
    """Save and load the wallboard's snapshot under one Redis key."""

    def __init__(self, url: str, *, key: str | None = None, ttl_s: int = BOARD_TTL_S) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.key = key or BOARD_KEY
        self.ttl_s = ttl_s

    def save(self, snapshot: dict[str, Any]) -> None:
        """Keep the listener's latest board."""
        self._redis.set(self.key, json.dumps(snapshot, ensure_ascii=False), ex=self.ttl_s)

    def load(self) -> dict[str, Any] | None:
        """Return the latest saved board, or None."""
        raw = self._redis.get(self.key)
        if not isinstance(raw, bytes | str):
            return None  # no board saved (the sync client never returns an awaitable)
        value = json.loads(raw)
        return value if isinstance(value, dict) else None


@functools.lru_cache(maxsize=4)
def store_for(url: str) -> RedisBoardStore:
    """Return the board store on ``url`` (one connection pool per URL and process)."""
    return RedisBoardStore(url)


def wallboard_snapshot(board: LiveBoard, *, redis_url: str | None) -> dict[str, Any]:
    """Return the board a wallboard starts from.

    This process's board when a listener feeds it; otherwise (``callcenter web`` next to a
    ``callcenter listen``) the listener's board from Redis, aged to now, with today's figures
    read from the store here.
    """
    local = board.snapshot()
    if board.fed or not redis_url:
        return local
    try:
        saved = store_for(redis_url).load()
    except (redis.RedisError, ValueError) as exc:
        # The page still opens; the next change brings the whole board over Socket.IO.
        log.warning("the listener's wallboard could not be read from Redis: %s", exc)
        return local
    if saved is None:
        return local
    shared = age_snapshot(saved, now=time.time())
    if local["today"] is not None:
        shared["today"] = local["today"]
    return shared
