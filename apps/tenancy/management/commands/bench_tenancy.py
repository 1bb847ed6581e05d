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

import statistics
import time

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.tenancy import services
from apps.tenancy.bench import BenchCommand, percentile, remove_bench_clients, to_public
from apps.tenancy.models import Client, Partner
from apps.tenancy.tasks import provision_client


class Command(BenchCommand):
    help = (
        "Provision N bench clients through the real provisioning path, print p50/p95 seconds per client, "
        "then time a no-op migrate_schemas across all schemas. Creates real schemas: refuses to run with "
        "DEBUG off unless --force."
    )

    default_clients = 100
    default_prefix = "bench"
    keep_help = "Keep the bench clients and partner (default: drop them at the end)."

    def handle(self, *args, clients: int, keep: bool, prefix: str, force: bool, **options):
        self.verbosity = options["verbosity"]
        prefix = self.checked_prefix(clients=clients, prefix=prefix, force=force)

        to_public()
        partner, created_partner = self._bench_partner(prefix)
        created: list[int] = []
        try:
            durations = self._provision(partner, prefix, clients, created)
            self._report_provisioning(durations)
            self._migrate_noop()
        finally:
            to_public()
            if keep:
                self.stdout.write(f"kept: clients={len(created)} partner={partner.slug}")
            else:
                removed = remove_bench_clients(created, partner=partner if created_partner else None)
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
            to_public()
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
        to_public()
        self.stdout.write(
            f"migrate_schemas (no-op): schemas={schemas} total={elapsed:.1f}s "
            f"per_schema={elapsed / schemas:.3f}s"
        )
