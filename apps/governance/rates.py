"""Redis-backed counters behind the CEL function `rate(key, window)` (sliding windows per client).

The engine takes any `counter(key, window_seconds) -> int`; this is the production one. The runtime
calls `hit(key)` when an action runs, so rules can limit how often a tool is used.
"""

from __future__ import annotations

import time
import uuid

import redis
from django.conf import settings

# Events older than this are dropped; rate() windows longer than it are capped.
MAX_WINDOW_SECONDS = 24 * 3600


class RedisRateCounter:
    """Sliding-window event counts in one sorted set per key, namespaced by client schema."""

    def __init__(self, schema_name: str, *, url: str | None = None):
        self.prefix = f"triplane:rate:{schema_name}:"
        self.redis = redis.Redis.from_url(url or settings.REDIS_URL)

    def hit(self, key: str, *, now: float | None = None) -> None:
        """Record one event for `key`."""
        now = time.time() if now is None else now
        name = self.prefix + key
        pipe = self.redis.pipeline()
        pipe.zadd(name, {f"{now}:{uuid.uuid4().hex}": now})
        pipe.zremrangebyscore(name, 0, now - MAX_WINDOW_SECONDS)
        pipe.expire(name, MAX_WINDOW_SECONDS)
        pipe.execute()

    def __call__(self, key: str, window: int) -> int:
        """How many events `key` had in the last `window` seconds."""
        now = time.time()
        return int(self.redis.zcount(self.prefix + key, now - min(window, MAX_WINDOW_SECONDS), "+inf"))
