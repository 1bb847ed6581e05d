from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import models

        # Configuration changes with before/after; the password never enters the log (not even encrypted),
        # nor the last connection test, which changes on every test.
        auditlog.register(
            models.DataSource,
            exclude_fields=[
                "password",
                "last_test_status",
                "last_test_message",
                "last_tested_at",
                "updated_at",
            ],
        )
        auditlog.register(models.FieldMapping, exclude_fields=["updated_at"])
