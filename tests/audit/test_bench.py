"""`manage.py bench_audit`: parseable figures from a scratch schema it removes. Timings are never asserted."""

import re
from io import StringIO

from django.core.management import call_command
from django.db import connection

APPEND = re.compile(r"^append: events=(\d+) concurrency=1 p50_ms=[\d.]+ p95_ms=[\d.]+ p99_ms=[\d.]+ ", re.M)


def _bench_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audit\_bench\_%'")
        return [row[0] for row in cursor.fetchall()]


def test_bench_prints_figures_and_removes_its_schema(world):
    out = StringIO()
    call_command("bench_audit", events=30, stdout=out)
    text = out.getvalue()
    assert APPEND.search(text).group(1) == "30"
    assert re.search(r"^verify: events=30 ms=[\d.]+ per_event_us=[\d.]+ ok=True$", text, re.M)
    assert re.search(r"^export: fmt=jsonl events=30 ", text, re.M)
    assert _bench_schemas() == []
