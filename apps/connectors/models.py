"""A client's data sources and the field mappings that tie a deployment's canonical data to them.

Both live in the client's schema. The password of a data source is encrypted at
rest; a source may instead name an environment variable that holds it, which
only the client's own worker has (the hybrid execution plane: the secret never
reaches Triplane's database).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.fields import EncryptedTextField

MAX_ROW_LIMIT = 5000
DEFAULT_ROW_LIMIT = 500
ENV_VAR_RE = r"^[A-Z_][A-Z0-9_]*$"


class DataSource(models.Model):
    """A client database the agents read and write through a field mapping.

    Connection settings: engine, host, port, database (a file path for SQLite),
    user name, and either a password (encrypted) or `secret_env_var`, the name of
    an environment variable holding it. `row_limit` caps what one query returns.
    The result of the last connection test is kept for the portal.
    """

    class Engine(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"
        SQLITE = "sqlite", "SQLite"

    class TestStatus(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=120)
    key = models.SlugField(max_length=60, help_text="Short identifier, unique within the client.")
    engine = models.CharField(max_length=12, choices=Engine.choices, default=Engine.POSTGRESQL)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    database = models.CharField(max_length=500, help_text="Database name; for SQLite, the file path.")
    username = models.CharField(max_length=120, blank=True)
    password = EncryptedTextField(blank=True)
    secret_env_var = models.CharField(
        max_length=120,
        blank=True,
        validators=[
            RegexValidator(
                ENV_VAR_RE, "Upper-case letters, digits and underscores, e.g. HELPDESK_DB_PASSWORD."
            )
        ],
        help_text="When set, the password is read from this environment variable of the worker instead.",
    )
    options = models.JSONField(default=dict, blank=True)
    row_limit = models.PositiveIntegerField(
        default=DEFAULT_ROW_LIMIT, validators=[MinValueValidator(1), MaxValueValidator(MAX_ROW_LIMIT)]
    )
    last_test_status = models.CharField(max_length=8, choices=TestStatus.choices, blank=True)
    last_test_message = models.TextField(blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["key"], name="datasource_key_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        """Whether a password is stored (its value is never shown)."""
        return bool(self.password)

    @property
    def address(self) -> str:
        """Where it is, for people: host:port/database, or the SQLite file."""
        if self.engine == self.Engine.SQLITE:
            return self.database
        port = f":{self.port}" if self.port else ""
        return f"{self.host}{port}/{self.database}"


class FieldMapping(models.Model):
    """How a deployment's canonical entities and fields map onto a data source's tables and columns.

    `yaml` is the text as a person typed it; `spec` its validated, normalised form
    (apps.connectors.mapping), which the client-database layer reads.
    """

    deployment = models.OneToOneField(
        "deployments.Deployment", on_delete=models.CASCADE, related_name="field_mapping"
    )
    data_source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="mappings")
    yaml = models.TextField()
    spec = models.JSONField(default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment_id"]

    def __str__(self) -> str:
        return f"Mapping of deployment {self.deployment_id} onto {self.data_source_id}"
