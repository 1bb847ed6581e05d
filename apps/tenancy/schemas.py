"""PostgreSQL schema operations for client projects, with identifiers quoted by psycopg."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from psycopg import sql

# First key of the two-key advisory locks taken while a client's schema is provisioned.
PROVISIONING_LOCK = 7331
PROTECTED = frozenset({"public", "information_schema"})


def existing_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        return {row[0] for row in cursor.fetchall()}


def create_schema(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))


def drop_schema(name: str) -> None:
    """Drop a client schema and everything in it (never public or the template)."""
    if name in PROTECTED or name == settings.TENANT_BASE_SCHEMA:
        raise ValueError(f"refusing to drop schema {name}")
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def schema_owner_marker(name: str) -> str | None:
    """The comment that names the client a schema was provisioned for, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", [name]
        )
        row = cursor.fetchone()
    return row[0] if row else None


def mark_schema_owner(name: str, marker: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(sql.Identifier(name), sql.Literal(marker))
        )


@contextmanager
def provisioning_lock(client_id: int) -> Iterator[None]:
    """Serialise provisioning runs of one client (a redelivered task, a seed beside a worker)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [PROVISIONING_LOCK, client_id])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [PROVISIONING_LOCK, client_id])
