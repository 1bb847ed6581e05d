"""Partners, their client projects (one PostgreSQL schema each) and the clients' host names."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from apps.core.models import TimeStampedModel

# Slugs become a DNS label and part of a schema name: lowercase, digits, inner hyphens.
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
slug_validator = RegexValidator(
    SLUG_RE,
    "Use 3–40 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen.",
)
# Host names reserved for the platform itself.
RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "vendor", "partner", "static", "mail", "public", "template"}
)


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError("This name is reserved; choose another.")


class Partner(TimeStampedModel):
    """A delivery partner (system integrator, MSP) that deploys agents for its clients."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(
        max_length=40, unique=True, validators=[slug_validator, validate_slug_not_reserved]
    )
    contact_email = models.EmailField(blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive partners' teams cannot sign in to the management portal."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Client(TenantMixin, TimeStampedModel):
    """A client project: one enterprise client, owned by one partner, with its own schema."""

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="clients")
    name = models.CharField(max_length=120)
    slug = models.SlugField(
        max_length=40, unique=True, validators=[slug_validator, validate_slug_not_reserved]
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVISIONING)
    provisioning_error = models.TextField(blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    require_version_change_approval = models.BooleanField(
        default=False,
        help_text="Upgrades and rollbacks of deployed agents (including vendor rollouts) wait for approval.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Schemas are created by the provisioning task, off the request path, and
    # never dropped implicitly.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "name"], name="client_name_unique_per_partner"),
        ]
        permissions = [("work_on_client", "Can work on this client project")]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def schema_name_for(slug: str) -> str:
        return "client_" + slug.replace("-", "_")

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def primary_host(self) -> str:
        domain = self.domains.filter(is_primary=True).first()
        return domain.domain if domain else ""

    def get_additional_data(self) -> dict:
        """Stored with every audit entry, so a partner's history finds its clients' changes."""
        return {"partner_id": self.partner_id, "client_id": self.pk}


class Domain(DomainMixin):
    """A host name that routes to one client's dashboard (`<slug>.<platform>` or a custom domain)."""

    class Meta:
        ordering = ["domain"]

    def get_additional_data(self) -> dict:
        return {"client_id": self.tenant_id}
