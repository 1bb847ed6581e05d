"""Helpers for audit-trail tests: events appended in a client's schema, rows tampered with as a superuser."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import GENESIS_HASH, AuditEvent
from apps.audit.services import audit_append, event_hash
from apps.tenancy.models import Client


def append_many(client: Client, count: int, **fields) -> list[AuditEvent]:
    """`count` events appended through the service in the client's schema (kinds event.1, event.2…)."""
    with tenant_context(client):
        return [
            audit_append(**{"kind": f"event.{i}", "subject": f"Event {i}", "data": {"i": i}, **fields})
            for i in range(1, count + 1)
        ]


def write_chain(client: Client, events: list[dict]) -> list[AuditEvent]:
    """Events with chosen timestamps, chained like the service chains them, after the client's last event.

    For filters by date: the service always stamps the current time.
    """
    written = []
    with tenant_context(client):
        last = AuditEvent.objects.order_by("-seq").first()
        seq, prev = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        for fields in events:
            seq += 1
            values = {
                "seq": seq,
                "trace_id": "",
                "actor": "system",
                "actor_id": None,
                "deployment_id": None,
                "effect": "",
                "subject": "",
                "data": {},
                **fields,
            }
            event = AuditEvent(**values, prev_hash=prev)
            event.hash = event_hash(prev, values)
            event.save(force_insert=True)
            prev = event.hash
            written.append(event)
    return written


@contextmanager
def triggers_disabled(client: Client) -> Iterator[None]:
    """Inside the client's schema with the append-only triggers off, as a database superuser could.

    DDL is transactional in PostgreSQL: the test's rollback restores the triggers anyway.
    """
    with tenant_context(client), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            yield
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
