"""Benchmark a vendor rollout across many clients.

    python manage.py bench_rollout --clients 200

Sets up (untimed) N client projects through the real provisioning path, each
with one deployed deployment of the permanent bench variant pinned at its
latest published version, then publishes the next minor version and times
`rollout_create` + the `rollout_run` task body run synchronously in this
process (every ready client is considered, as in a real rollout). Per-client
figures come from each target's `elapsed_ms`.

Published versions are immutable and the audit trail is permanent, so the bench
never deletes either: the bench template, variant (a child of a bench base
agent, which is never deployed) and the versions it publishes stay and are
reused by the next run. Unless `--keep` is given, what the run itself created
is removed at the end, also when it fails half-way: the clients' schemas,
domains and rows, the rollout (with its targets) and the partner if it was made
by this run. Removals are recorded in the audit trail like any other.

Output lines are meant to be parsed:

    setup: clients=200 seconds=61.2
    rollout: clients=200 total=12.3s p50=0.050s p95=0.090s
    phases: create=1.1s execute=11.2s moved=200 failed=0
"""

import statistics
import time

from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.deployments import services
from apps.deployments.models import Deployment
from apps.deployments.tasks import rollout_run
from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion, Rollout, RolloutTarget
from apps.factory.spec import validate_spec
from apps.tenancy import services as tenancy
from apps.tenancy.bench import BenchCommand, percentile, remove_bench_clients, to_public
from apps.tenancy.models import Client, Partner

BENCH_SPEC = {
    "instructions": "Benchmark agent: answers questions about tickets.",
    "tools": [{"name": "db.query", "entities": ["ticket"]}],
    "data": [{"name": "ticket", "fields": [{"name": "id", "type": "integer", "required": True}]}],
}


class Command(BenchCommand):
    help = (
        "Create N bench clients with a deployment each, then time a rollout to all of them and print total "
        "seconds and per-client p50/p95. Creates real schemas: refuses to run with DEBUG off unless --force."
    )

    default_clients = 200
    default_prefix = "rbench"
    keep_help = "Keep the bench clients and the rollout (default: remove; the bench variant always stays)."

    def handle(self, *args, clients: int, keep: bool, prefix: str, force: bool, **options):
        self.verbosity = options["verbosity"]
        prefix = self.checked_prefix(clients=clients, prefix=prefix, force=force)

        to_public()
        partner, created_partner = self._bench_partner(prefix)
        variant = self._bench_variant(prefix)
        created: list[int] = []
        rollout_ids: list[int] = []
        try:
            pinned = self._latest_published(variant) or self._publish(variant, (1, 0, 0))
            began = time.perf_counter()
            self._clients(partner, prefix, clients, pinned, created)
            self.stdout.write(f"setup: clients={len(created)} seconds={time.perf_counter() - began:.1f}")
            target = self._publish(variant, self._next_minor(variant, pinned))
            self._rollout(variant, target, created=created, rollout_ids=rollout_ids)
        finally:
            to_public()
            if keep:
                self.stdout.write(
                    f"kept: clients={len(created)} partner={partner.slug} variant={variant.key}"
                )
            else:
                removed = self._cleanup(partner, created, rollout_ids, drop_partner=created_partner)
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

    def _bench_variant(self, prefix: str) -> AgentVariant:
        """The permanent bench variant, reused by every run (versions are immutable, never deleted)."""
        template, _ = AgentTemplate.objects.get_or_create(
            key=prefix, defaults={"name": f"Benchmark agents ({prefix})"}
        )
        # A base agent is only cloned from, never deployed: the bench deploys a child of one.
        base, _ = AgentVariant.objects.get_or_create(
            key=f"{prefix}-base",
            defaults={
                "template": template,
                "name": f"Benchmark base agent ({prefix})",
                "domain": "Benchmark",
            },
        )
        variant, _ = AgentVariant.objects.get_or_create(
            key=f"{prefix}-agent",
            defaults={
                "template": template,
                "parent": base,
                "name": f"Benchmark agent ({prefix})",
                "domain": "Benchmark",
            },
        )
        return variant

    def _latest_published(self, variant: AgentVariant) -> AgentVersion | None:
        published = AgentVersion.objects.filter(variant=variant, status=AgentVersion.Status.PUBLISHED)
        return published.order_by("-major", "-minor", "-patch").first()

    def _next_minor(self, variant: AgentVariant, pinned: AgentVersion) -> tuple[int, int, int]:
        # Above every version of the major (a draft someone left there too), so the number is free.
        same_major = AgentVersion.objects.filter(variant=variant, major=pinned.major)
        minors = same_major.values_list("minor", flat=True)
        return pinned.major, max(minors, default=pinned.minor) + 1, 0

    def _publish(self, variant: AgentVariant, semver: tuple[int, int, int]) -> AgentVersion:
        major, minor, patch = semver
        version = f"{major}.{minor}.{patch}"
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
            to_public()
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

    def _rollout(
        self, variant: AgentVariant, target: AgentVersion, *, created: list[int], rollout_ids: list[int]
    ) -> None:
        began = time.perf_counter()
        rollout = services.rollout_create(variant=variant, target_version=target, actor=None, schedule=False)
        planned = time.perf_counter()
        rollout_ids.append(rollout.pk)
        # The real Celery task body, run in this process: the same path the worker takes.
        result = rollout_run.apply(args=[rollout.pk], headers={"_schema_name": "public"})
        finished = time.perf_counter()
        to_public()
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
        # Clients an earlier `--keep` run left behind are below the target too, and rightly in the rollout.
        missing = set(created) - {t.client_id for t in targets}
        if missing or failures or rollout.status != Rollout.Status.COMPLETED:
            raise CommandError(
                f"Rollout #{rollout.pk} is {rollout.status} with {len(targets)} targets, "
                f"{len(missing)} bench clients missing; "
                f"not moved: {'; '.join(failures[:5]) or 'none'}"
            )

    # --- cleanup --------------------------------------------------------------------

    def _cleanup(
        self, partner: Partner, client_ids: list[int], rollout_ids: list[int], *, drop_partner: bool
    ) -> int:
        """Remove what this run created; the bench variant, its versions and the audit trail stay."""
        with transaction.atomic():
            # Targets go with their rollout; the versions they reference stay (published, immutable).
            Rollout.objects.filter(pk__in=rollout_ids).delete()
        return remove_bench_clients(client_ids, partner=partner if drop_partner else None)
