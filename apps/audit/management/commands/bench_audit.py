"""Benchmark the audit trail: append latency (alone and under contention), verify and export throughput.

    python manage.py bench_audit --events 2000 --concurrency 4

Works in a scratch schema cloned from the tenant template and dropped afterwards, so no client's
trail gets benchmark events (they could never be removed from it). Each append runs in its own
transaction, as the runtime's do; the time measured is the `audit_append` call (advisory lock, last
event, insert), commit excluded, from `--concurrency` threads each on its own connection.

Output lines are meant to be parsed:

    append: events=2000 concurrency=4 p50_ms=0.41 p95_ms=0.80 p99_ms=1.90 max_ms=6.10 per_s=2100
    verify: events=2000 ms=80.1 per_event_us=40.0 ok=True
    export: fmt=jsonl events=2000 ms=60.2 bytes=812345
"""

import statistics
import threading
import time
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context

from apps.audit.services import audit_append, audit_export, audit_verify
from apps.core.db import tenant_connection


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Command(BaseCommand):
    help = "Benchmark audit appends, verify and export in a scratch schema (dropped afterwards)."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2000, help="Appends in all (default 2000).")
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Threads appending at once (default 1)."
        )

    def handle(self, *args, events: int, concurrency: int, **options):
        if events < 1 or concurrency < 1:
            raise CommandError("--events and --concurrency are at least 1.")
        schema = f"audit_bench_{uuid.uuid4().hex[:10]}"
        tenant_connection().set_schema_to_public()
        CloneSchema().clone_schema(settings.TENANT_BASE_SCHEMA, schema)
        try:
            self._run(schema, events, concurrency)
        finally:
            tenant_connection().set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def _run(self, schema: str, events: int, concurrency: int) -> None:
        timings: list[float] = []
        lock = threading.Lock()
        share = [events // concurrency + (1 if i < events % concurrency else 0) for i in range(concurrency)]

        def worker(index: int) -> None:
            mine: list[float] = []
            try:
                with schema_context(schema):
                    for i in range(share[index]):
                        with transaction.atomic():
                            started = time.perf_counter()
                            audit_append(
                                kind="tool.executed",
                                actor=f"agent:bench-{index}",
                                trace_id=f"bench-{index}-{i // 5}",
                                deployment_id=index + 1,
                                effect="allow",
                                subject=f"step {i}: db.update ticket",
                                data={"step": i, "action_hash": uuid.uuid4().hex, "duration_ms": 12.5},
                            )
                            mine.append(time.perf_counter() - started)
            finally:
                with lock:
                    timings.extend(mine)

        def in_thread(index: int) -> None:
            try:
                worker(index)
            finally:
                connections.close_all()  # the thread's own connection

        started = time.perf_counter()
        if concurrency == 1:
            worker(0)  # on this connection: it also sees a schema cloned in an open transaction
        else:
            threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
        ms = [t * 1000 for t in timings]
        self.stdout.write(
            f"append: events={len(ms)} concurrency={concurrency} p50_ms={statistics.median(ms):.2f} "
            f"p95_ms={_percentile(ms, 0.95):.2f} p99_ms={_percentile(ms, 0.99):.2f} max_ms={max(ms):.2f} "
            f"per_s={len(ms) / elapsed:.0f}"
        )
        with schema_context(schema):
            started = time.perf_counter()
            result = audit_verify()
            took = time.perf_counter() - started
            self.stdout.write(
                f"verify: events={result.checked} ms={took * 1000:.1f} "
                f"per_event_us={took * 1e6 / max(result.checked, 1):.1f} ok={result.ok}"
            )
            started = time.perf_counter()
            size = sum(len(chunk.encode()) for chunk in audit_export(fmt="jsonl"))
            took = time.perf_counter() - started
            self.stdout.write(f"export: fmt=jsonl events={result.checked} ms={took * 1000:.1f} bytes={size}")
