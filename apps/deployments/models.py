"""A client's deployed agents (client schema), pinned to published factory versions."""

from django.conf import settings
from django.db import models


class Deployment(models.Model):
    """An agent variant pinned to a published version for this client, with its approval state.

    Lifecycle: draft → submitted → approved | rejected → deployed → paused | retired.
    A version change on a deployed agent either moves the pin at once or waits
    in `pending_version` for approval, when the client requires it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        DEPLOYED = "deployed", "Deployed"
        PAUSED = "paused", "Paused"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=120)
    # The factory lives in the public schema; these reference its rows across schemas.
    variant = models.ForeignKey("factory.AgentVariant", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("factory.AgentVersion", on_delete=models.PROTECT, related_name="+")
    pending_version = models.ForeignKey(
        "factory.AgentVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A requested upgrade or rollback waiting for approval.",
    )
    pending_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="deployment_name_unique")]

    def __str__(self) -> str:
        return self.name


class DeploymentTransition(models.Model):
    """One step in a deployment's history: who moved it, when, why, and between which versions."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    from_version = models.ForeignKey(
        "factory.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(
        "factory.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.deployment} {self.action}: {self.from_status or '—'} → {self.to_status}"
