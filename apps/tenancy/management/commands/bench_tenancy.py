"""Benchmark client provisioning and a no-op `migrate_schemas` over many clients.

    python manage.py bench_tenancy --clients 100

Creates N client projects for a bench partner through the real provisioning
path (`services.client_create` + the `provision_client` Celery task body, run
synchronously), timing each create+provision, then times a no-op
`migrate_schemas` over every schema (public, the template and all clients).
Unless `--keep` is given, the bench clients' schemas and rows (and the bench
partner) are removed at the end, also when the run fails half-way.

Output lines are meant to be parsed:

    provision: n=100 p50=0.31s p95=0.42s max=0.55s mean=0.33s
    migrate_schemas (no-op): schemas=102 total=12.3s per_schema=0.121s
"""

import math
import statistics
import time

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from apps.core.db import tenant_connection
from apps.tenancy import services
from apps.tenancy.models import SLUG_RE, Client, Domain, Partner
from apps.tenancy.tasks import provision_client


def _to_public() -> None:
    tenant_connection().set_schema_to_public()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2; p95 of 100 values is the 95th smallest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Command(BaseCommand):
    help = (
        "Provision N bench clients through the real provisioning path, print p50/p95 seconds per client, "
        "then time a no-op migrate_schemas across all schemas. Creates real schemas: refuses to run with "
        "DEBUG off unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--clients", type=int, default=100, help="How many clients to provision (default 100)."
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="Keep the bench clients and partner (default: drop them at the end).",
        )
        parser.add_argument(
            "--prefix",
            default="bench",
            help="Slug of the bench partner and prefix of the client slugs (default bench).",
        )
        parser.add_argument("--force", action="store_true", help="Run even though DEBUG is off.")

    def handle(self, *args, clients: int, keep: bool, prefix: str, force: bool, **options):
        self.verbosity = options["verbosity"]
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: this creates and drops real client schemas. Run it on a development database, "
                "or pass --force if you mean it."
            )
        if clients < 1:
            raise CommandError("--clients must be at least 1.")
        prefix = prefix.strip().lower()
        # The partner slug is the prefix, client slugs are "<prefix>-<number>": all must be valid slugs.
        if not SLUG_RE.match(prefix) or not SLUG_RE.match(f"{prefix}-99999"):
            raise CommandError("--prefix must be a short slug (lowercase letters, digits, hyphens).")

        _to_public()
        partner, created_partner = self._bench_partner(prefix)
        created: list[int] = []
        try:
            durations = self._provision(partner, prefix, clients, created)
            self._report_provisioning(durations)
            self._migrate_noop()
        finally:
            _to_public()
            if keep:
                self.stdout.write(f"kept: clients={len(created)} partner={partner.slug}")
            else:
                removed = self._cleanup(partner, created, drop_partner=created_partner)
                self.stdout.write(f"cleanup: dropped_schemas={removed} clients={len(created)}")

    # --- steps -----------------------------------------------------------------

    def _bench_partner(self, prefix: str) -> tuple[Partner, bool]:
        partner = Partner.objects.filter(slug=prefix).first()
        if partner is not None:
            if not partner.is_active:
                raise CommandError(f"Partner {prefix!r} exists but is inactive.")
            return partner, False
        partner = services.partner_create(
            name=f"Benchmark ({prefix})", slug=prefix, contact_email=f"{prefix}@bench.invalid", actor=None
        )
        return partner, True

    def _provision(self, partner: Partner, prefix: str, count: int, created: list[int]) -> list[float]:
        # Continue after clients an earlier `--keep` run left behind, so slugs never collide.
        start = Client.objects.filter(slug__startswith=f"{prefix}-").count() + 1
        number = start
        durations: list[float] = []
        progress_every = max(1, count // 10)
        while len(durations) < count:
            slug = f"{prefix}-{number:04d}"
            number += 1
            if Client.objects.filter(slug=slug).exists():
                continue
            began = time.perf_counter()
            client = services.client_create(
                partner=partner, name=f"Bench client {slug}", slug=slug, actor=None, schedule=False
            )
            created.append(client.pk)
            # The real Celery task body, run in this process: the same path the worker takes.
            result = provision_client.apply(args=[client.pk], headers={"_schema_name": "public"})
            elapsed = time.perf_counter() - began
            _to_public()
            if result.failed():
                raise CommandError(f"Provisioning task for {slug} raised: {result.result!r}")
            client.refresh_from_db()
            if result.result != Client.Status.READY or client.status != Client.Status.READY:
                raise CommandError(f"Client {slug} is {client.status}: {client.provisioning_error}")
            durations.append(elapsed)
            if self.verbosity >= 2 and len(durations) % progress_every == 0:
                self.stdout.write(f"  provisioned {len(durations)}/{count} (last {elapsed:.2f}s)")
        return durations

    def _report_provisioning(self, durations: list[float]) -> None:
        self.stdout.write(
            f"provision: n={len(durations)} p50={percentile(durations, 50):.2f}s "
            f"p95={percentile(durations, 95):.2f}s max={max(durations):.2f}s "
            f"mean={statistics.fmean(durations):.2f}s"
        )

    def _migrate_noop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace")
            existing = {row[0] for row in cursor.fetchall()}
        clients = Client.objects.filter(schema_name__in=existing).exclude(schema_name="public").count()
        schemas = 2 + clients  # public + the template + every provisioned client
        began = time.perf_counter()
        call_command("migrate_schemas", verbosity=0, interactive=False)
        elapsed = time.perf_counter() - began
        _to_public()
        self.stdout.write(
            f"migrate_schemas (no-op): schemas={schemas} total={elapsed:.1f}s "
            f"per_schema={elapsed / schemas:.3f}s"
        )

    def _cleanup(self, partner: Partner, client_ids: list[int], *, drop_partner: bool) -> int:
        _to_public()
        schemas = list(Client.objects.filter(pk__in=client_ids).values_list("schema_name", flat=True))
        domain_ids = list(Domain.objects.filter(tenant_id__in=client_ids).values_list("pk", flat=True))
        dropped = 0
        with transaction.atomic(), disable_auditlog():
            with connection.cursor() as cursor:
                for schema in schemas:
                    if schema in ("public", settings.TENANT_BASE_SCHEMA):
                        continue
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    dropped += 1
            Domain.objects.filter(pk__in=domain_ids).delete()
            Client.objects.filter(pk__in=client_ids).delete()
            history: list[tuple[type[models.Model], list[int]]] = [(Client, client_ids), (Domain, domain_ids)]
            if drop_partner and not partner.clients.exists():
                history.append((Partner, [partner.pk]))
                partner.delete()
            # The bench leaves no trace in the configuration history either.
            for model, pks in history:
                LogEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(model),
                    object_pk__in=[str(pk) for pk in pks],
                ).delete()
        return dropped
