"""Re-encrypt every secret stored at rest with the first of FIELD_ENCRYPTION_KEYS.

Key rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones
after it), deploy, run this command, then drop the old keys. It walks every
model with an EncryptedTextField (found through the app registry, so new ones
are covered without changes here) in the public schema and in every client
schema, and prints how many values it re-encrypted and how many already used
the first key. A value no configured key opens is reported, left as it is, and
makes the command fail at the end.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.db.models.functions import Cast
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context

from apps.core.crypto import DecryptionError, is_current, rotate
from apps.core.fields import encrypted_fields


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field (every client schema) with the first FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing."
        )

    def handle(self, *args, dry_run: bool = False, **options):
        targets = [(model, encrypted_fields(model)) for model in apps.get_models()]
        targets = [(model, fields) for model, fields in targets if fields]
        public = get_public_schema_name()
        clients = get_tenant_model().objects.exclude(schema_name=public).order_by("schema_name")
        schemas = [public, *clients.values_list("schema_name", flat=True)]
        totals = {"rotated": 0, "current": 0, "failed": 0}
        for schema in schemas:
            with schema_context(schema):
                tables = set(connection.introspection.table_names())
                for model, fields in targets:
                    if model._meta.db_table not in tables:
                        continue  # a shared model in a client schema, or the other way round
                    for field in fields:
                        counts = self._rotate(model, field, dry_run=dry_run)
                        for name, count in counts.items():
                            totals[name] += count
                        if any(counts.values()):
                            self.stdout.write(
                                f"{schema}: {model._meta.label}.{field.name}: "
                                f"{counts['rotated']} re-encrypted, {counts['current']} already current"
                                + (f", {counts['failed']} cannot be decrypted" if counts["failed"] else "")
                            )
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{totals['rotated']} secret(s) {verb}, {totals['current']} already used the first key "
            f"({len(schemas)} schema(s))."
        )
        if totals["failed"]:
            raise CommandError(
                f"{totals['failed']} secret(s) cannot be decrypted with any configured key; "
                "they were left as they are."
            )

    def _rotate(self, model: type[models.Model], field: models.Field, *, dry_run: bool) -> dict[str, int]:
        counts = {"rotated": 0, "current": 0, "failed": 0}
        manager = model._base_manager
        with transaction.atomic():
            rows = (
                manager.exclude(**{field.attname: ""})
                .exclude(**{f"{field.attname}__isnull": True})
                # The stored token, not the decrypted text the field would give.
                .annotate(_token=Cast(field.attname, output_field=models.TextField()))
                .select_for_update()
                .values_list("pk", "_token")
            )
            for pk, token in rows:
                if is_current(token):
                    counts["current"] += 1
                    continue
                try:
                    fresh = rotate(token)
                except DecryptionError:
                    counts["failed"] += 1
                    self.stderr.write(f"{model._meta.label} {pk}: {field.name} cannot be decrypted.")
                    continue
                counts["rotated"] += 1
                if not dry_run:
                    manager.filter(pk=pk).update(
                        **{field.attname: models.Value(fresh, output_field=models.TextField())}
                    )
        return counts
