from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.User, include_fields=["email", "full_name", "vendor_role", "is_active"])
        auditlog.register(models.PartnerMembership, include_fields=["user", "partner", "role"])
        auditlog.register(models.ClientMembership, include_fields=["user", "client", "role"])
