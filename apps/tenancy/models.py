"""Partners, their client projects (one PostgreSQL schema each) and the clients' host names."""

import math
import re
from zoneinfo import available_timezones

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


HOST_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ATTRIBUTE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_HOSTS = 50
MAX_ATTRIBUTES = 30


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"'{value}' is not a known time zone; use a name like Europe/Paris or UTC.")


def validate_host_list(value) -> None:
    """A list of at most MAX_HOSTS lowercase host names (acme.com, api.acme.com)."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of host names.")
    if len(value) > MAX_HOSTS:
        raise ValidationError(f"At most {MAX_HOSTS} host names.")
    bad = [str(host) for host in value if not isinstance(host, str) or not HOST_RE.match(host)]
    if bad:
        raise ValidationError(f"Not a host name: {', '.join(bad[:5])} (write them like acme.com).")


# An outbound allowlist entry: a host name (optionally `*.`-prefixed to cover its subdomains, or a single
# label such as `localhost`) or an IP address, with an optional port.
OUTBOUND_HOST_RE = re.compile(
    r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$"
    r"|^\[[0-9a-f:]+\](?::\d{1,5})?$"
)


def validate_outbound_hosts(value) -> None:
    """At most MAX_HOSTS entries like api.acme.com, *.acme.com, 10.0.0.5:8443 or [::1]:8080."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of host names.")
    if len(value) > MAX_HOSTS:
        raise ValidationError(f"At most {MAX_HOSTS} host names.")
    bad = [str(host) for host in value if not isinstance(host, str) or not OUTBOUND_HOST_RE.match(host)]
    if bad:
        raise ValidationError(
            f"Not a host: {', '.join(bad[:5])} (write them like api.acme.com, *.acme.com or 10.0.0.5:8443)."
        )


def validate_attributes(value) -> None:
    """A flat map of at most MAX_ATTRIBUTES snake_case keys to text (≤ 200), numbers or booleans."""
    if not isinstance(value, dict):
        raise ValidationError("Custom attributes are a map of names to values.")
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"At most {MAX_ATTRIBUTES} custom attributes.")
    for key, item in value.items():
        if not ATTRIBUTE_KEY_RE.match(str(key)):
            raise ValidationError(f"'{key}': attribute names are lowercase letters, digits and _ (≤ 40).")
        if isinstance(item, str):
            if len(item) > 200:
                raise ValidationError(f"'{key}': text values are at most 200 characters.")
        elif item is None or not isinstance(item, bool | int | float):
            raise ValidationError(f"'{key}': a value is text, a number or true/false.")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"'{key}': a number must be finite.")


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
    # What governance rules can read as `tenant.*` (set by the partner; see apps.governance.context).
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA time zone (e.g. Europe/Paris); rules read time and business hours in it.",
    )
    jurisdiction = models.CharField(
        max_length=40, blank=True, help_text="Where the client's data is governed, e.g. EU, US-CA, UK."
    )
    own_domains = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_host_list],
        help_text="The client's own domains (e.g. acme.com): mail to others leaves the client.",
    )
    allowed_hosts = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_host_list],
        help_text="Hosts outside calls may reach without approval.",
    )
    # The outbound client's hard limit (webhooks, http.request): no host outside this list is ever called,
    # whatever the rules say. Set by the partner.
    outbound_hosts = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_outbound_hosts],
        help_text="Hosts the agents' outbound calls may ever reach (api.acme.com, *.acme.com); empty: none.",
    )
    outbound_private_networks = models.BooleanField(
        default=False,
        help_text=(
            "Let outbound calls reach private, loopback and link-local addresses (an on-premises service). "
            "Off, they are refused even when a host name resolves to one."
        ),
    )
    attributes = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_attributes],
        help_text="Custom attributes rules read as tenant.attributes: a flat map of text, numbers, booleans.",
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


class ClientAuditCount(models.Model):
    """How many audit events of one kind a client recorded on one day.

    This is all the vendor sees of a client's trail. Filled by a periodic task from each client's
    own audit trail; never holds event contents.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="audit_counts")
    day = models.DateField()
    kind = models.CharField(max_length=60)
    count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "client_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["client", "day", "kind"], name="client_audit_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.day} {self.kind}: {self.count}"
