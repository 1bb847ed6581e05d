"""Appends from several connections at once keep one gap-free chain.

The appends must really commit on their own connections, so they run in a scratch schema cloned
from the template by another connection and dropped afterwards: no world client keeps them.
Every database statement of this test runs on a thread's own connection; the test's connection
touches nothing there (a lock it held would block the final DROP SCHEMA).
"""

import threading
import uuid

from django.conf import settings
from django.db import connection, connections
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context

from apps.audit.models import AuditEvent
from apps.audit.services import audit_append, audit_verify

PER_THREAD = 40


def _on_own_connection(work, *args):
    """Run `work(*args)` in a new thread (so on a new database connection), return its result or raise."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = work(*args)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "a database thread hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _clone(schema: str) -> None:
    CloneSchema().clone_schema(settings.TENANT_BASE_SCHEMA, schema)


def _drop(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _append_from_threads(schema: str, threads: int) -> list[list[int]]:
    barrier = threading.Barrier(threads)
    seqs: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with schema_context(schema):
                barrier.wait()
                for i in range(PER_THREAD):
                    event = audit_append(kind="tool.executed", actor=f"agent:worker-{index}", data={"i": i})
                    seqs[index].append(event.seq)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not errors, errors
    return seqs


def _read_chain(schema: str):
    with schema_context(schema):
        return audit_verify(), list(AuditEvent.objects.order_by("seq").values_list("seq", "actor"))


def test_concurrent_appends_keep_a_gap_free_chain(db):
    schema = f"audit_race_{uuid.uuid4().hex[:8]}"
    _on_own_connection(_clone, schema)
    try:
        seqs = _append_from_threads(schema, threads=2)
        result, rows = _on_own_connection(_read_chain, schema)
    finally:
        _on_own_connection(_drop, schema)
    total = 2 * PER_THREAD
    assert result.ok and result.checked == total, result
    assert [seq for seq, _actor in rows] == list(range(1, total + 1))
    # Every append got its own place, and each connection saw its appends in increasing order.
    assert sorted(seqs[0] + seqs[1]) == list(range(1, total + 1))
    assert all(s == sorted(s) for s in seqs)
    assert {actor for _seq, actor in rows} == {"agent:worker-0", "agent:worker-1"}
