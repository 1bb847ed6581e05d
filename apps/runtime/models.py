"""Tasks, their steps (proposed actions) and approvals of held steps, in the client's schema.

A task is planned into steps; each step is one proposed action that the gateway decides
(`apps.runtime.gateway`) before anything runs. One trace id runs from the task through every step,
decision, approval and tool call.

Step status: proposed → allowed | denied | held → approved | rejected | expired → executing →
executed | failed; `skipped` when a workflow step's condition is false; `in_doubt` when a worker
stopped while a tool with side effects was running (it is never run a second time by itself).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.core.fields import EncryptedTextField


def new_trace_id() -> str:
    return uuid.uuid4().hex


class Task(models.Model):
    """One piece of work for a deployed agent: a workflow with inputs, or a free instruction."""

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        SCHEDULE = "schedule", "Schedule"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for approval"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    FINISHED = (Status.COMPLETED, Status.STOPPED, Status.FAILED)

    trace_id = models.CharField(max_length=32, unique=True, default=new_trace_id)
    deployment = models.ForeignKey("deployments.Deployment", on_delete=models.PROTECT, related_name="tasks")
    workflow = models.CharField(max_length=64, blank=True)
    instruction = models.TextField(blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What governance rules read as `principal` (kind, id, role, channel).
    principal = models.JSONField(default=dict)
    # An API caller's key: the same key again returns the same task instead of a second one.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    outcome = models.TextField(blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    cost_used = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.workflow or 'instruction'} ({self.trace_id[:8]})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def planner(self) -> str:
        return "workflow" if self.workflow else "llm"


class Step(models.Model):
    """One proposed action of a task and what became of it."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ALLOWED = "allowed", "Allowed"
        DENIED = "denied", "Denied"
        HELD = "held", "Held for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        EXECUTING = "executing", "Executing"
        EXECUTED = "executed", "Executed"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        IN_DOUBT = "in_doubt", "In doubt"

    # A step in one of these may run its tool (after the gateway mints a permit).
    RUNNABLE = (Status.ALLOWED, Status.APPROVED)
    FINISHED = (
        Status.DENIED,
        Status.REJECTED,
        Status.EXPIRED,
        Status.EXECUTED,
        Status.FAILED,
        Status.SKIPPED,
        Status.IN_DOUBT,
    )

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    # The workflow step id (e.g. `load`) or `call_<n>` for an LLM planner's tool call.
    key = models.CharField(max_length=64)
    # Also the idempotency key sent with outbound calls: `<trace id>:<position>`.
    idempotency_key = models.CharField(max_length=100, unique=True)
    action = models.JSONField()
    action_hash = models.CharField(max_length=64, blank=True)
    on_failure = models.CharField(max_length=12, default="halt")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROPOSED)
    decision = models.ForeignKey(
        "governance.DecisionLog", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What the tool returned, after the decision's redactions (what the planner saw).
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set once the task has acted on this step's refusal or failure (its on_failure policy).
    policy_applied = models.BooleanField(default=False)
    # A compensating step points at the executed step it undoes.
    compensates = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="compensations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="runtime_step_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.action.get('tool', '')} ({self.status})"

    @property
    def tool(self) -> str:
        return str(self.action.get("tool", ""))


class Approval(models.Model):
    """A held step waiting for a person with the approver role; decided once, or expired."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    step = models.OneToOneField(Step, on_delete=models.CASCADE, related_name="approval")
    approver_role = models.CharField(max_length=20)
    # The decision that held the step (the step's own decision changes if the approver edits the action).
    held_decision = models.ForeignKey("governance.DecisionLog", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True, help_text="Why the rule held it (the rule's message).")
    expires_at = models.DateTimeField(db_index=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # Set when the approver edited the parameters: the action as approved (evaluated again).
    edited_action = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["expires_at", "pk"]
        indexes = [models.Index(fields=["status", "expires_at"], name="runtime_approval_due")]

    def __str__(self) -> str:
        return f"approval of step {self.step_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING


class LlmEndpoint(models.Model):
    """The OpenAI-compatible endpoint a deployment's LLM planner calls (vLLM, Ollama, Azure OpenAI, …),
    with the budgets every task of that deployment gets. Set by the partner; the key is encrypted at rest."""

    deployment = models.OneToOneField(
        "deployments.Deployment", on_delete=models.CASCADE, related_name="llm_endpoint"
    )
    base_url = models.URLField(max_length=300, help_text="E.g. https://llm.acme.internal/v1")
    model = models.CharField(max_length=120)
    api_key = EncryptedTextField(blank=True)
    allow_private_network = models.BooleanField(
        default=False, help_text="The endpoint runs on a private or loopback address (on-premises)."
    )
    temperature = models.FloatField(default=0.0)
    max_steps = models.PositiveIntegerField(default=20, help_text="Actions one task may propose.")
    max_tokens = models.PositiveIntegerField(default=50_000, help_text="Tokens one task may use.")
    max_cost = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=1,
        help_text="Cost one task may reach, in the price's currency.",
    )
    price_per_1k_tokens = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    timeout_seconds = models.PositiveIntegerField(default=60)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.model} at {self.base_url}"


class TaskSchedule(models.Model):
    """A workflow a deployed agent runs on its own every N minutes, with fixed inputs.

    The runtime's sweep (Celery beat, every minute) creates a task for every enabled schedule that is
    due, with `principal.kind = schedule`, so rules can treat scheduled work differently.
    """

    MIN_INTERVAL_MINUTES = 5

    name = models.CharField(max_length=120)
    deployment = models.ForeignKey(
        "deployments.Deployment", on_delete=models.CASCADE, related_name="schedules"
    )
    workflow = models.CharField(max_length=64)
    inputs = models.JSONField(default=dict, blank=True)
    every_minutes = models.PositiveIntegerField(help_text="How often it runs, in minutes (at least 5).")
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(db_index=True)
    last_task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="runtime_schedule_name_unique")]

    def __str__(self) -> str:
        return self.name
