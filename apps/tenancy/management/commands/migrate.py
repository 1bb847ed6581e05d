"""`migrate` is `migrate_schemas` in a schema-per-tenant project."""

from .migrate_schemas import Command

__all__ = ["Command"]
