"""Redis state beside the database: rate counters and circuit breakers outlive a rolled-back test."""

import redis
from django.conf import settings


def forget_counters() -> None:
    """Delete every rate counter and circuit breaker (tests reuse client schema names, hence keys)."""
    connection = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("triplane:rate:*", "triplane:breaker:*"):
        keys = list(connection.scan_iter(pattern))
        if keys:
            connection.delete(*keys)
