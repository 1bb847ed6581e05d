"""The default database connection, typed as the django-tenants backend the settings configure."""

from typing import TYPE_CHECKING, cast

from django.db import connection

if TYPE_CHECKING:
    from django_tenants.postgresql_backend.base import DatabaseWrapper


def tenant_connection() -> "DatabaseWrapper":
    """`django.db.connection`: its schema switching (`set_schema_to_public`, `schema_name`) is typed."""
    return cast("DatabaseWrapper", connection)
