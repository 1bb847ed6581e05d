"""A circuit breaker in Redis, shared by every worker: stop calling something that keeps failing.

    breaker = CircuitBreaker(f"outbound:{schema}:{host}")
    if not breaker.allow():
        ...  # refuse at once: "… is failing; calls paused"
    try:
        call()
    except TransientError:
        breaker.failure()
        raise
    breaker.success()

Closed: calls go through; `failure_threshold` failures in a row open it. Open: `allow()` is False
for `reset_after` seconds. Half-open: then one trial call is let through (the others still wait);
its success closes the breaker, its failure opens it for another `reset_after`. The runtime keeps
one per outbound host (`outbound:<schema>:<host>`) and one per data source (`datasource:<schema>:<key>`).

The breaker protects the failing service and our workers' time, not security: if Redis itself is
unreachable it lets calls through (and logs) rather than stopping every agent.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

PREFIX = "triplane:breaker:"

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# KEYS: state hash, trial key. ARGV: now, reset_after (s). 1: closed, 0: refused, 2: the half-open trial.
_ALLOW = """
local opened = redis.call('HGET', KEYS[1], 'opened_at')
if not opened then return 1 end
if tonumber(ARGV[1]) - tonumber(opened) < tonumber(ARGV[2]) then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', math.max(1, math.floor(tonumber(ARGV[2]) * 1000))) then
  return 2
end
return 0
"""

# KEYS: state hash, trial key. ARGV: now, reset_after (s), threshold, ttl (ms).
_FAILURE = """
local opened = redis.call('HGET', KEYS[1], 'opened_at')
if opened then
  if tonumber(ARGV[1]) - tonumber(opened) >= tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
    redis.call('DEL', KEYS[2])
  end
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


@lru_cache(maxsize=8)
def _redis(url: str) -> redis.Redis:
    # One client (and connection pool) per URL for the process; redis-py resets pools after a fork.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class CircuitBreaker:
    """A named breaker (`closed` / `open` / `half_open`) whose state all workers share through Redis."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        url: str | None = None,
    ):
        if failure_threshold < 1 or reset_after <= 0:
            raise ValueError("A breaker needs failure_threshold ≥ 1 and reset_after > 0.")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after = float(reset_after)
        self.key = PREFIX + name
        self.trial_key = self.key + ":trial"
        self._client = _redis(url or settings.REDIS_URL)
        # Failures that never reach the threshold are forgotten after a quiet while.
        self._ttl_ms = int(max(3600.0, self.reset_after * 10) * 1000)

    def allow(self) -> bool:
        """May a call go out now? In half-open state only the first caller gets True (the trial)."""
        try:
            verdict = self._client.eval(_ALLOW, 2, self.key, self.trial_key, time.time(), self.reset_after)
        except redis.RedisError as exc:
            log.warning(
                "Circuit breaker %s: Redis unavailable (%s); letting the call through.", self.name, exc
            )
            return True
        return bool(verdict)

    def success(self) -> None:
        """A call succeeded: the breaker closes and the failure count starts again from zero."""
        try:
            self._client.delete(self.key, self.trial_key)
        except redis.RedisError as exc:
            log.warning("Circuit breaker %s: Redis unavailable (%s).", self.name, exc)

    def failure(self) -> None:
        """A call failed (transiently): count it; open at the threshold or after a failed trial."""
        try:
            self._client.eval(
                _FAILURE,
                2,
                self.key,
                self.trial_key,
                time.time(),
                self.reset_after,
                self.failure_threshold,
                self._ttl_ms,
            )
        except redis.RedisError as exc:
            log.warning("Circuit breaker %s: Redis unavailable (%s).", self.name, exc)

    def reset(self) -> None:
        """Forget everything about this breaker (closed, no failures)."""
        self.success()

    @property
    def failures(self) -> int:
        """Failures counted since the last success."""
        try:
            value = self._client.hget(self.key, "failures")
        except redis.RedisError:
            return 0
        return int(value or 0)

    @property
    def state(self) -> str:
        """`closed`, `open` (calls refused) or `half_open` (a trial call may go, or is under way)."""
        try:
            opened = self._client.hget(self.key, "opened_at")
        except redis.RedisError:
            return CLOSED
        if opened is None:
            return CLOSED
        if time.time() - float(opened) < self.reset_after:
            return OPEN
        return HALF_OPEN

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r})"
