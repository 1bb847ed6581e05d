"""What the benchmark commands share: their options and guard, percentiles, and removing bench clients."""

import math

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from apps.core.db import tenant_connection

from . import schemas
from .models import SLUG_RE, Client, Domain, Partner


def to_public() -> None:
    tenant_connection().set_schema_to_public()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2; p95 of 100 values is the 95th smallest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class BenchCommand(BaseCommand):
    """A benchmark that creates real client schemas: --clients, --keep, --prefix, --force."""

    default_clients = 100
    default_prefix = "bench"
    keep_help = "Keep the bench clients (default: remove them at the end)."
    max_prefix_length = 30

    def add_arguments(self, parser):
        parser.add_argument(
            "--clients",
            type=int,
            default=self.default_clients,
            help=f"How many clients (default {self.default_clients}).",
        )
        parser.add_argument("--keep", action="store_true", help=self.keep_help)
        parser.add_argument(
            "--prefix",
            default=self.default_prefix,
            help=f"Slug of the bench partner and prefix of the client slugs (default {self.default_prefix}).",
        )
        parser.add_argument("--force", action="store_true", help="Run even though DEBUG is off.")

    def checked_prefix(self, *, clients: int, prefix: str, force: bool) -> str:
        """Refuse unsafe or invalid runs; return the normalised prefix."""
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: this creates and drops real client schemas. Run it on a development database, "
                "or pass --force if you mean it."
            )
        if clients < 1:
            raise CommandError("--clients must be at least 1.")
        prefix = prefix.strip().lower()
        # The partner slug is the prefix, client slugs are "<prefix>-<number>": all must be valid slugs.
        if (
            not SLUG_RE.match(prefix)
            or not SLUG_RE.match(f"{prefix}-99999")
            or len(prefix) > self.max_prefix_length
        ):
            raise CommandError("--prefix must be a short slug (lowercase letters, digits, hyphens).")
        return prefix


def remove_bench_clients(client_ids: list[int], *, partner: Partner | None = None) -> int:
    """Drop the bench clients' schemas and rows, and `partner` once it has no clients; returns the count.

    Removals are recorded in the audit trail like any other; nothing is erased from it.
    """
    to_public()
    names = list(Client.objects.filter(pk__in=client_ids).values_list("schema_name", flat=True))
    dropped = 0
    # One schema per transaction: hundreds of schemas' tables in one transaction exhaust
    # PostgreSQL's lock table.
    for name in names:
        with transaction.atomic(), connection.cursor() as cursor:
            # Foreign-key checks run now, not at commit: a table with checks waiting cannot be
            # dropped (they wait when this runs inside a caller's transaction).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            schemas.drop_schema(name)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        dropped += 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        Domain.objects.filter(tenant_id__in=client_ids).delete()
        Client.objects.filter(pk__in=client_ids).delete()
        if partner is not None and not partner.clients.exists():
            partner.delete()
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return dropped
