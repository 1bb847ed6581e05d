"""Benchmark a vendor rollout across many clients.

    python manage.py bench_rollout --clients 200

Sets up (untimed) N client projects through the real provisioning path, each
with one deployed deployment of a fresh bench variant pinned at 1.0.0, then
publishes 1.1.0 and times `rollout_create` + the `rollout_run` task body run
synchronously in this process (every ready client is considered, as in a real
rollout). Per-client figures come from each target's `elapsed_ms`. Unless
`--keep` is given, the bench clients' schemas and rows, the rollout and the
bench variant are removed at the end, also when the run fails half-way.

Output lines are meant to be parsed:

    setup: clients=200 seconds=61.2
    rollout: clients=200 total=12.3s p50=0.050s p95=0.090s
    phases: create=1.1s execute=11.2s moved=200 failed=0
"""

import statistics
import time

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.deployments import services
from apps.deployments.models import Deployment
from apps.deployments.tasks import rollout_run
from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion, Rollout, RolloutTarget
from apps.factory.spec import validate_spec
from apps.tenancy import services as tenancy
from apps.tenancy.management.commands.bench_tenancy import percentile
from apps.tenancy.models import SLUG_RE, Client, Domain, Partner

BENCH_SPEC = {
    "instructions": "Benchmark agent: answers questions about tickets.",
    "tools": [{"name": "db.query", "entities": ["ticket"]}],
    "data": [{"name": "ticket", "fields": [{"name": "id", "type": "integer", "required": True}]}],
}


def _to_public() -> None:
    connection.set_schema_to_public()  # type: ignore[attr-defined]  # the django-tenants backend


class Command(BaseCommand):
    help = (
        "Create N bench clients with a deployment each, then time a rollout to all of them and print total "
        "seconds and per-client p50/p95. Creates real schemas: refuses to run with DEBUG off unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=200, help="How many clients (default 200).")
        parser.add_argument(
            "--keep",
            action="store_true",
            help="Keep the bench clients, variant and rollout (default: remove).",
        )
        parser.add_argument(
            "--prefix",
            default="rbench",
            help="Slug of the bench partner and prefix of client slugs and the variant key (default rbench).",
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
        if not SLUG_RE.match(prefix) or not SLUG_RE.match(f"{prefix}-99999") or len(prefix) > 30:
            raise CommandError("--prefix must be a short slug (lowercase letters, digits, hyphens).")

        _to_public()
        partner, created_partner = self._bench_partner(prefix)
        template, created_template = self._bench_template(prefix)
        variant = self._bench_variant(template, prefix)
        created: list[int] = []
        try:
            first = self._publish(variant, "1.0.0")
            began = time.perf_counter()
            self._clients(partner, prefix, clients, first, created)
            self.stdout.write(f"setup: clients={len(created)} seconds={time.perf_counter() - began:.1f}")
            target = self._publish(variant, "1.1.0")
            self._rollout(variant, target, expected=len(created))
        finally:
            _to_public()
            if keep:
                self.stdout.write(
                    f"kept: clients={len(created)} partner={partner.slug} variant={variant.key}"
                )
            else:
                removed = self._cleanup(
                    partner,
                    created,
                    variant,
                    template if created_template else None,
                    drop_partner=created_partner,
                )
                self.stdout.write(f"cleanup: dropped_schemas={removed} clients={len(created)}")

    # --- setup (not timed) ---------------------------------------------------------

    def _bench_partner(self, prefix: str) -> tuple[Partner, bool]:
        partner = Partner.objects.filter(slug=prefix).first()
        if partner is not None:
            if not partner.is_active:
                raise CommandError(f"Partner {prefix!r} exists but is inactive.")
            return partner, False
        partner = tenancy.partner_create(
            name=f"Benchmark ({prefix})", slug=prefix, contact_email=f"{prefix}@bench.invalid", actor=None
        )
        return partner, True

    def _bench_template(self, prefix: str) -> tuple[AgentTemplate, bool]:
        return AgentTemplate.objects.get_or_create(
            key=prefix, defaults={"name": f"Benchmark agents ({prefix})"}
        )

    def _bench_variant(self, template: AgentTemplate, prefix: str) -> AgentVariant:
        # A fresh variant per run, so clients an earlier `--keep` run left behind are not in this rollout.
        number = 1
        while AgentVariant.objects.filter(key=f"{prefix}-v{number}").exists():
            number += 1
        return AgentVariant.objects.create(
            template=template,
            key=f"{prefix}-v{number}",
            name=f"Benchmark agent {number} ({prefix})",
            domain="Benchmark",
        )

    def _publish(self, variant: AgentVariant, version: str) -> AgentVersion:
        major, minor, patch = (int(part) for part in version.split("."))
        return AgentVersion.objects.create(
            variant=variant,
            version=version,
            major=major,
            minor=minor,
            patch=patch,
            status=AgentVersion.Status.PUBLISHED,
            published_at=timezone.now(),
            spec=validate_spec(BENCH_SPEC),
            changelog=f"Benchmark version {version}.",
        )

    def _clients(
        self, partner: Partner, prefix: str, count: int, version: AgentVersion, created: list[int]
    ) -> None:
        # Continue after clients an earlier `--keep` run left behind, so slugs never collide.
        number = Client.objects.filter(slug__startswith=f"{prefix}-").count() + 1
        progress_every = max(1, count // 10)
        while len(created) < count:
            slug = f"{prefix}-{number:04d}"
            number += 1
            if Client.objects.filter(slug=slug).exists():
                continue
            client = tenancy.client_create(
                partner=partner, name=f"Rollout bench {slug}", slug=slug, actor=None, schedule=False
            )
            created.append(client.pk)
            client = tenancy.client_provision(client_id=client.pk)
            _to_public()
            if client.status != Client.Status.READY:
                raise CommandError(f"Client {slug} is {client.status}: {client.provisioning_error}")
            with tenant_context(client):
                # Straight to deployed: the approval flow is not what this measures.
                Deployment.objects.create(
                    name="Bench agent",
                    variant=version.variant,
                    version=version,
                    status=Deployment.Status.DEPLOYED,
                )
            if self.verbosity >= 2 and len(created) % progress_every == 0:
                self.stdout.write(f"  set up {len(created)}/{count}")

    # --- the measured part ---------------------------------------------------------

    def _rollout(self, variant: AgentVariant, target: AgentVersion, *, expected: int) -> None:
        began = time.perf_counter()
        rollout = services.rollout_create(variant=variant, target_version=target, actor=None, schedule=False)
        planned = time.perf_counter()
        # The real Celery task body, run in this process: the same path the worker takes.
        result = rollout_run.apply(args=[rollout.pk], headers={"_schema_name": "public"})
        finished = time.perf_counter()
        _to_public()
        if result.failed():
            raise CommandError(f"The rollout task raised: {result.result!r}")
        targets = list(RolloutTarget.objects.filter(rollout=rollout).select_related("client"))
        per_client = [t.elapsed_ms / 1000 for t in targets if t.elapsed_ms is not None]
        results = dict.fromkeys(RolloutTarget.Result.values, 0)
        for t in targets:
            results[t.result] += 1
        self.stdout.write(
            f"rollout: clients={len(targets)} total={finished - began:.1f}s "
            f"p50={percentile(per_client, 50):.3f}s p95={percentile(per_client, 95):.3f}s"
        )
        self.stdout.write(
            f"phases: create={planned - began:.1f}s execute={finished - planned:.1f}s "
            f"moved={results['moved']} failed={results['failed']} "
            f"mean={statistics.fmean(per_client) if per_client else 0:.3f}s"
        )
        rollout.refresh_from_db()
        failures = [
            f"{t.client.slug}: {t.message}" for t in targets if t.result != RolloutTarget.Result.MOVED
        ]
        if len(targets) != expected or failures or rollout.status != Rollout.Status.COMPLETED:
            raise CommandError(
                f"Rollout #{rollout.pk} is {rollout.status} with {len(targets)}/{expected} targets; "
                f"not moved: {'; '.join(failures[:5]) or 'none'}"
            )

    # --- cleanup --------------------------------------------------------------------

    def _cleanup(
        self,
        partner: Partner,
        client_ids: list[int],
        variant: AgentVariant,
        template: AgentTemplate | None,
        *,
        drop_partner: bool,
    ) -> int:
        _to_public()
        schemas = list(Client.objects.filter(pk__in=client_ids).values_list("schema_name", flat=True))
        domain_ids = list(Domain.objects.filter(tenant_id__in=client_ids).values_list("pk", flat=True))
        rollout_ids = list(Rollout.objects.filter(variant=variant).values_list("pk", flat=True))
        version_ids = list(AgentVersion.objects.filter(variant=variant).values_list("pk", flat=True))
        dropped = 0
        # The deployments in these schemas pin the bench versions: they go first, one schema per
        # transaction (hundreds of schemas' tables in one transaction exhaust PostgreSQL's lock table).
        for schema in schemas:
            if schema in ("public", settings.TENANT_BASE_SCHEMA):
                continue
            with transaction.atomic(), connection.cursor() as cursor:
                # Foreign-key checks run now, not at commit: a table with checks waiting cannot be
                # dropped or altered (they wait when this runs inside a caller's transaction).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            dropped += 1
        with transaction.atomic(), disable_auditlog(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            Rollout.objects.filter(pk__in=rollout_ids).delete()
            Domain.objects.filter(pk__in=domain_ids).delete()
            Client.objects.filter(pk__in=client_ids).delete()
            # Published versions are immutable (a trigger refuses DELETE). The bench removes its own
            # synthetic versions with the trigger off for this transaction only; the ALTER TABLE lock
            # keeps every other writer out until it is back on. Raw SQL, because Django's delete
            # collector would look for deployments in the public schema, where that table does not exist.
            trigger = "factory_agentversion_immutable_when_published"
            cursor.execute(f"ALTER TABLE factory_agentversion DISABLE TRIGGER {trigger}")
            cursor.execute("DELETE FROM factory_agentversion WHERE variant_id = %s", [variant.pk])
            cursor.execute(f"ALTER TABLE factory_agentversion ENABLE TRIGGER {trigger}")
            cursor.execute("DELETE FROM factory_agentvariant WHERE id = %s", [variant.pk])
            if template is not None and not AgentVariant.objects.filter(template=template).exists():
                cursor.execute("DELETE FROM factory_agenttemplate WHERE id = %s", [template.pk])
            history: list[tuple[type[models.Model], list[int]]] = [
                (Client, client_ids),
                (Domain, domain_ids),
                (Rollout, rollout_ids),
                (AgentVersion, version_ids),
                (AgentVariant, [variant.pk]),
            ]
            if drop_partner and not partner.clients.exists():
                history.append((Partner, [partner.pk]))
                partner.delete()
            # The bench leaves no trace in the configuration history either.
            for model, pks in history:
                LogEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(model),
                    object_pk__in=[str(pk) for pk in pks],
                ).delete()
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return dropped
