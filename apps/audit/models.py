"""A client's audit trail: append-only events in a SHA-256 hash chain (one chain per client schema).

Each event stores the hash of the one before it and its own hash over that and every other stored
field, so an edited, deleted, inserted or reordered row breaks the chain where it happened. The
database refuses UPDATE, DELETE and TRUNCATE on the table (migration 0002); `services.audit_verify`
walks the chain to prove nobody went around that with a superuser's rights.
"""

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One thing that happened in the client's workspace, in the order it happened (`seq` 1, 2, 3…).

    `kind` is free text (`task.created`, `decision`, `approval.approved`, `tool.executed`…); `actor` is a
    user's e-mail, `agent:<deployment name>` or `system`; `effect` is the governance effect when the
    event is about a decision (for filtering). Rows are written only by `services.audit_append`.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    trace_id = models.CharField(max_length=64, blank=True, db_index=True)
    kind = models.CharField(max_length=60, db_index=True)
    actor = models.CharField(max_length=254, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    # Deployments live above this app: an id, no foreign key (events outlive what they mention).
    deployment_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    effect = models.CharField(max_length=20, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"
