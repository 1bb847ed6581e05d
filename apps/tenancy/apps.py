from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "apps.tenancy"
    label = "tenancy"
    verbose_name = "Partners and clients"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.Partner)
        auditlog.register(models.Client, exclude_fields=["provisioning_error"])
        auditlog.register(models.Domain)
