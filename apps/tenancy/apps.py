from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "apps.tenancy"
    label = "tenancy"
    verbose_name = "Partners and clients"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        # Only the fields a person changes or cares about (no timestamps, reverse relations).
        auditlog.register(models.Partner, include_fields=["name", "slug", "contact_email", "is_active"])
        auditlog.register(
            models.Client,
            include_fields=[
                "name",
                "slug",
                "partner",
                "status",
                "require_version_change_approval",
                "timezone",
                "jurisdiction",
                "own_domains",
                "allowed_hosts",
                "attributes",
            ],
        )
        auditlog.register(models.Domain, include_fields=["domain", "is_primary"])
