from django.apps import AppConfig


class FactoryConfig(AppConfig):
    name = "apps.factory"
    label = "factory"
    verbose_name = "Agent factory"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(
            models.AgentVariant, include_fields=["key", "name", "domain", "description", "parent"]
        )
        auditlog.register(models.AgentVersion, include_fields=["version", "status", "changelog"])
        auditlog.register(models.Rollout, include_fields=["status", "target_version"])
