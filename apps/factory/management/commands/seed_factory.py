"""Seed the Agent Factory: policy packs, the base enterprise agent and the four built-in variants.

Idempotent: whatever exists (a pack version, a variant) is left as it is; only
what is missing is created. Every built-in agent is published as 1.0.0; the
four domain variants build on base 1.0.0.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.factory import fixtures_data as data
from apps.factory import selectors, services
from apps.factory.models import AgentTemplate, AgentVariant, PolicyPackVersion


class Command(BaseCommand):
    help = "Create the built-in policy packs, base agent and domain variants (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        verbosity = options.get("verbosity", 1)
        created: list[str] = []

        for pack in data.POLICY_PACKS:
            if not PolicyPackVersion.objects.filter(
                pack__key=pack["key"], version=data.INITIAL_VERSION
            ).exists():
                services.policy_pack_publish(
                    pack_key=pack["key"],
                    name=pack["name"],
                    description=pack["description"],
                    version=data.INITIAL_VERSION,
                    rules=pack["rules"],
                    changelog=data.INITIAL_CHANGELOG,
                )
                created.append(f"policy pack {pack['key']} {data.INITIAL_VERSION}")

        template, made = AgentTemplate.objects.get_or_create(
            key=data.TEMPLATE["key"],
            defaults={"name": data.TEMPLATE["name"], "description": data.TEMPLATE["description"]},
        )
        if made:
            created.append(f"template {template.key}")

        base = AgentVariant.objects.filter(key=data.BASE_VARIANT["key"]).first()
        if base is None:
            base = services.variant_create(
                template=template, spec=data.BASE_SPEC, actor=None, **data.BASE_VARIANT
            )
            created.append(f"variant {base.key} {data.INITIAL_VERSION}")
        base_version = base.versions.get(version=data.INITIAL_VERSION)

        for variant in data.VARIANTS:
            if AgentVariant.objects.filter(key=variant["key"]).exists():
                continue
            services.variant_create(
                template=template,
                parent=base,
                base_version=base_version,
                actor=None,
                **variant,
            )
            created.append(f"variant {variant['key']} {data.INITIAL_VERSION}")

        if verbosity > 0:
            self._summary(created)

    def _summary(self, created: list[str]) -> None:
        if created:
            self.stdout.write(self.style.SUCCESS(f"Factory: created {len(created)}:"))
            for line in created:
                self.stdout.write(f"  {line}")
        else:
            self.stdout.write("Factory: everything was already in place.")
        for variant in selectors.variant_list():
            parent = f" (from {variant.parent.key})" if variant.parent else ""
            latest = getattr(variant, "latest_version", None) or "-"
            self.stdout.write(f"  agent {variant.key:10} {latest:8} {variant.name}{parent}")
        for pack in selectors.policy_pack_list():
            self.stdout.write(
                f"  pack  {pack.key:18} {getattr(pack, 'latest_version', None) or '-':8} {pack.name}"
            )
