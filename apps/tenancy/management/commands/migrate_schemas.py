"""`migrate_schemas` that also keeps the client template schema migrated.

New clients are cloned from the template (TENANT_BASE_SCHEMA), so the template
must be created once and migrated on every run, before any clone. Clients
whose schema does not exist (still provisioning, or failed) are skipped rather
than breaking the run.
"""

from django.conf import settings
from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import GET_EXECUTOR_FUNCTION, MigrateSchemasCommand
from django_tenants.utils import get_public_schema_name

from apps.tenancy import schemas
from apps.tenancy.models import Client


class Command(MigrateSchemasCommand):
    help = "Migrates the public schema, the client template schema and every provisioned client schema."

    def handle(self, *args, **options):
        SyncCommon.handle(self, *args, **options)
        if self.schema_name:
            return super().handle(*args, **options)
        public = get_public_schema_name()
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        if self.sync_public:
            executor.run_migrations(tenants=[public])
        if self.sync_tenant:
            template = settings.TENANT_BASE_SCHEMA
            existing = schemas.existing_schemas()
            if template not in existing:
                schemas.create_schema(template)
            clients = list(
                Client.objects.exclude(schema_name=public)
                .filter(schema_name__in=existing)
                .order_by("pk")
                .values_list("schema_name", flat=True)
            )
            executor.run_migrations(tenants=[template, *clients])
