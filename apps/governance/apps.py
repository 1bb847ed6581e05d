from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "apps.governance"
    label = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        # Ruleset versions are audited when drafted, published and rolled back (their rules are in the
        # version itself); keys when made and revoked. The decision log is its own audit trail.
        auditlog.register(models.RulesetVersion, include_fields=["number", "status", "is_active", "notes"])
        auditlog.register(
            models.RuleTestCase, include_fields=["name", "expected_effect", "action", "context"]
        )
        auditlog.register(models.EvaluationKey, include_fields=["name", "prefix", "deployment", "revoked_at"])
