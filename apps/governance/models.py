"""A client's governance (client schema): its ruleset, published versions, rule tests and decision log.

Vendor rules are not stored here: they come from the policy pack pinned by each
deployment's agent version and are layered in front of these rules when a
ruleset is compiled for that deployment.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Ruleset(models.Model):
    """The client's governance ruleset (one per client); its versions hold the rules."""

    name = models.CharField(max_length=120, default="Governance rules")
    # Always 1 and unique: one ruleset per client schema, enforced by the database.
    slot = models.PositiveSmallIntegerField(default=1, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RulesetVersion(models.Model):
    """One version of the partner and client rules: a draft while edited, immutable once published.

    At most one draft and exactly one active published version per ruleset (once anything is
    published). A database trigger refuses any change to a published version other than moving
    the active flag, and refuses deleting it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    ruleset = models.ForeignKey(Ruleset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # A validated list of rules (apps.governance.rules.GovernanceRule), partner and client layers.
    rules = models.JSONField(default=list)
    notes = models.TextField(blank=True)
    rolled_back_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["ruleset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["ruleset", "number"], name="ruleset_version_number_unique"),
            models.UniqueConstraint(
                fields=["ruleset"], condition=models.Q(status="draft"), name="one_draft_per_ruleset"
            ),
            models.UniqueConstraint(
                fields=["ruleset"], condition=models.Q(is_active=True), name="one_active_version_per_ruleset"
            ),
            models.CheckConstraint(
                condition=models.Q(is_active=False) | models.Q(status="published"),
                name="only_published_versions_are_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ruleset} v{self.number} ({self.status})"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED


class RuleTestCase(models.Model):
    """An action and its context with the effect the ruleset must give it; all must pass to publish.

    With a deployment, the test runs against that deployment's vendor rules and tool allowlist too;
    without one, against the ruleset's own rules alone.
    """

    class Effect(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"
        REQUIRE_APPROVAL = "require_approval", "Require approval"
        REDACT = "redact", "Redact"

    ruleset = models.ForeignKey(Ruleset, on_delete=models.CASCADE, related_name="test_cases")
    name = models.CharField(max_length=200)
    # Whose case it is: the partner team's or the client's; only its own side changes or removes it.
    layer = models.CharField(
        max_length=10, choices=[("partner", "Partner"), ("client", "Client")], default="partner"
    )
    deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    action = models.JSONField()
    context = models.JSONField(default=dict, blank=True)
    expected_effect = models.CharField(max_length=20, choices=Effect.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["ruleset", "name"], name="rule_test_name_unique")]

    def __str__(self) -> str:
        return self.name


class DecisionLog(models.Model):
    """One governance decision, append-only (a database trigger refuses UPDATE and DELETE).

    Records what was decided and why: the ruleset version, the action and its hash, the matched
    rules, the deciding rule and layer, errors, how many rules ran and how long it took, and what
    the shadow rules would have done.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ruleset_version = models.ForeignKey(
        RulesetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    # The compiled ruleset's content hash (vendor + partner + client rules and the allowlist).
    ruleset_key = models.CharField(max_length=64)
    deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trace_id = models.CharField(max_length=64, blank=True, db_index=True)
    action_hash = models.CharField(max_length=64, db_index=True)
    action = models.JSONField()
    # Kept so a draft ruleset can be replayed against past decisions.
    context = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    effect = models.CharField(max_length=20, choices=RuleTestCase.Effect.choices)
    reason = models.TextField()
    matched = models.JSONField(default=list)
    deciding_rule = models.CharField(max_length=64, blank=True)
    layer = models.CharField(max_length=16, blank=True)
    approver_role = models.CharField(max_length=20, blank=True)
    redact_fields = models.JSONField(default=list)
    errors = models.JSONField(default=list)
    evaluated_count = models.PositiveIntegerField()
    elapsed_us = models.FloatField()
    shadow_results = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.effect} {self.action_hash[:12]}"


class EvaluationKey(models.Model):
    """A secret that lets an execution plane outside the control plane ask for one deployment's decisions.

    Only a SHA-256 of the secret is stored (the secret is random, 32 bytes); the full key is shown
    once, when it is made. `prefix` identifies the key in lists and logs.
    """

    deployment = models.ForeignKey(
        "deployments.Deployment", on_delete=models.CASCADE, related_name="evaluation_keys"
    )
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
