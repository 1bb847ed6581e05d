from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "apps.runtime"
    label = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        # The LLM endpoint is configuration a partner changes: audited with before/after, never its key.
        # Tasks, steps and approvals have their own tamper-evident trail (apps.audit).
        auditlog.register(models.LlmEndpoint, exclude_fields=["api_key", "updated_at"])
