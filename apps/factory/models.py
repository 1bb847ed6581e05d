"""The Agent Factory (public schema): agent templates, variants, immutable versions, policy packs, rollouts.

A published AgentVersion or PolicyPackVersion never changes: the services
refuse it and a database trigger (migration 0002) rejects any UPDATE or
DELETE of a published row, whatever path it comes from.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel

SEMVER_RE = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
semver_validator = RegexValidator(SEMVER_RE, "Use a semantic version: MAJOR.MINOR.PATCH, e.g. 1.2.0.")
key_validator = RegexValidator(r"^[a-z][a-z0-9-]{1,39}$", "Use 2–40 lowercase letters, digits and hyphens.")


class AgentTemplate(TimeStampedModel):
    """The base enterprise agent family that every variant descends from."""

    key = models.CharField(max_length=40, unique=True, validators=[key_validator])
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentVariant(TimeStampedModel):
    """A domain agent (ITSM, Finance, …): the base variant has no parent; others were cloned from one."""

    template = models.ForeignKey(AgentTemplate, on_delete=models.PROTECT, related_name="variants")
    key = models.CharField(max_length=40, unique=True, validators=[key_validator])
    name = models.CharField(max_length=120)
    domain = models.CharField(
        max_length=60, blank=True, help_text="Business domain, e.g. IT service management."
    )
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_base(self) -> bool:
        return self.parent_id is None


class AgentVersion(models.Model):
    """One version of a variant's spec: a draft while edited, immutable once published."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    variant = models.ForeignKey(AgentVariant, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=32, validators=[semver_validator])
    # Numeric parts, for ordering and "pinned below X" comparisons.
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    spec = models.JSONField()
    changelog = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    derived_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derivatives",
        help_text="The version this one was derived from (edit, clone, rollback or rebase).",
    )
    base_version = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The parent variant's version this one builds on (for rebase).",
    )
    # Pinned at publish: the spec names its pack by key only, so without this a newer pack
    # version would silently change the rules a published (immutable) version ships with.
    policy_pack_version = models.ForeignKey(
        "PolicyPackVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The policy pack version this version ships with, fixed when it is published.",
    )

    class Meta:
        ordering = ["variant", "-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(fields=["variant", "version"], name="version_unique_per_variant"),
            models.UniqueConstraint(
                fields=["variant"], condition=models.Q(status="draft"), name="one_draft_per_variant"
            ),
        ]
        indexes = [models.Index(fields=["variant", "status", "major", "minor", "patch"])]

    def __str__(self) -> str:
        return f"{self.variant.key} {self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def semver(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


class PolicyPack(TimeStampedModel):
    """A named set of vendor baseline rules, versioned; variants' specs name the pack they ship with."""

    key = models.CharField(max_length=40, unique=True, validators=[key_validator])
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PolicyPackVersion(models.Model):
    """One immutable version of a policy pack's rules."""

    pack = models.ForeignKey(PolicyPack, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=32, validators=[semver_validator])
    rules = models.JSONField()
    changelog = models.TextField()
    status = models.CharField(
        max_length=12, choices=AgentVersion.Status.choices, default=AgentVersion.Status.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pack", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["pack", "version"], name="pack_version_unique")]

    def __str__(self) -> str:
        return f"{self.pack.key} {self.version}"


class Rollout(models.Model):
    """Move every deployment of a variant pinned below a version to that version, client by client."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        REVERTING = "reverting", "Reverting"
        REVERTED = "reverted", "Reverted"

    variant = models.ForeignKey(AgentVariant, on_delete=models.PROTECT, related_name="rollouts")
    target_version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="rollouts")
    canary = models.BooleanField(default=False, help_text="Limited to a list of clients.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Rollout of {self.variant.key} to {self.target_version.version}"


class RolloutTarget(models.Model):
    """One client's part of a rollout, with its result; re-running a rollout skips finished targets."""

    class Result(models.TextChoices):
        PENDING = "pending", "Pending"
        MOVED = "moved", "Moved"
        NEEDS_APPROVAL = "needs_approval", "Needs approval"
        NOTHING_TO_DO = "nothing_to_do", "Nothing to do"
        FAILED = "failed", "Failed"
        REVERTED = "reverted", "Reverted"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="targets")
    client = models.ForeignKey("tenancy.Client", on_delete=models.CASCADE, related_name="+")
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.PENDING)
    message = models.TextField(blank=True)
    # What moved, per deployment id in the client's schema: {"<id>": "<previous version id>"}.
    moved = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "client__name"]
        constraints = [models.UniqueConstraint(fields=["rollout", "client"], name="one_target_per_client")]

    def __str__(self) -> str:
        return f"{self.rollout} · {self.client}: {self.result}"
