"""API v1, the governed runtime on a client's host: tasks with their traces, and approvals of held actions.

- `POST tasks` queues a task for a deployed agent (a workflow with inputs, or a free instruction for the
  LLM planner). An `Idempotency-Key` header makes retries safe: the same key from the same user answers
  200 with the task made the first time instead of queueing another (201); the same key with another
  request is refused (422). Keys are scoped to the caller, so two users never collide.
- `GET tasks` lists tasks a page at a time (filters: status, deployment, workflow, trace id);
  `GET tasks/<id>` is one task with its trace: every step with its decision and approval, and the
  results after the decision's redactions.
- `GET approvals` lists the held actions the caller may decide; `POST approvals/<id>/approve` (an
  optional note, optional edited `params`: decided again, an edit the rules deny is refused and
  changes nothing) and `POST approvals/<id>/reject` (a reason) decide one.

Every client member reads tasks; client admins and operators create tasks and decide held actions
(which held actions an operator may decide, and that nobody approves a task they asked for, are the
services' rules: 400 with the reason). Approvals the caller's role may not see answer 404.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import overload

from django.db import IntegrityError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import client_membership_of
from apps.accounts.models import ClientRole
from apps.deployments.selectors import deployment_get
from apps.runtime import selectors, services
from apps.runtime.models import Approval, Task
from apps.runtime.settings_services import task_by_idempotency_key, task_count, task_window
from apps.tenancy.models import Client

from .permissions import IsClientMember

RUNNER_ROLES = frozenset({ClientRole.CLIENT_ADMIN, ClientRole.OPERATOR})
MAX_IDEMPOTENCY_KEY = 64
# An approver's edited parameters, as JSON, are at most this many bytes.
MAX_PARAMS_BYTES = 20_000
APPROVAL_STATUSES = [choice.value for choice in Approval.Status]


class IsTaskRunner(BasePermission):
    """A client's host, and the user is one of its client admins or operators."""

    message = "Only client admins and operators run tasks and decide held actions."

    def has_permission(self, request, view) -> bool:
        client = getattr(request, "tenant", None)
        membership = client_membership_of(request.user, client) if client is not None else None
        return membership is not None and membership.role in RUNNER_ROLES


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different task; use a new key."
    default_code = "idempotency_key_reused"


class _OnClientHost:
    """The client is the host's own; JSON bodies."""

    parser_classes = [JSONParser]

    def get_client(self) -> Client:
        return self.request.tenant  # type: ignore[attr-defined]


# --- Serializers -------------------------------------------------------------------------------


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trace_id = serializers.CharField(help_text="Runs through every step, decision, approval and audit event.")
    deployment = serializers.IntegerField(source="deployment_id")
    deployment_name = serializers.CharField(source="deployment.name")
    workflow = serializers.CharField(allow_blank=True)
    instruction = serializers.CharField(allow_blank=True)
    inputs = serializers.JSONField()
    source = serializers.ChoiceField(choices=Task.Source.choices)
    requested_by = serializers.EmailField(source="requested_by.email", allow_null=True, default=None)
    # Plain text with the values listed: a second `status` enum would clash in the schema's component names.
    status = serializers.CharField(help_text=f"One of: {', '.join(Task.Status.values)}.")
    outcome = serializers.CharField(allow_blank=True)
    tokens_used = serializers.IntegerField()
    cost_used = serializers.DecimalField(max_digits=12, decimal_places=6)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TraceDecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    effect = serializers.CharField()
    reason = serializers.CharField()
    deciding_rule = serializers.CharField(allow_blank=True)
    layer = serializers.CharField(allow_blank=True)
    matched = serializers.JSONField(help_text="Keys of every rule that matched.")
    ruleset_version = serializers.IntegerField(source="ruleset_version.number", allow_null=True, default=None)
    approver_role = serializers.CharField(allow_blank=True)
    redact_fields = serializers.JSONField()
    action_hash = serializers.CharField()
    elapsed_us = serializers.FloatField()
    created_at = serializers.DateTimeField()


class ApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text=f"One of: {', '.join(Approval.Status.values)}.")
    approver_role = serializers.CharField()
    reason = serializers.CharField(allow_blank=True, help_text="Why the rule held the action.")
    expires_at = serializers.DateTimeField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.EmailField(source="decided_by.email", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(source="decision_note", allow_blank=True)
    edited_action = serializers.JSONField(allow_null=True, help_text="The action as approved, when edited.")


class TraceStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    key = serializers.CharField()
    tool = serializers.CharField()
    entity = serializers.SerializerMethodField()
    action = serializers.JSONField()
    action_hash = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    on_failure = serializers.CharField()
    decision = TraceDecisionSerializer(allow_null=True)
    approval = serializers.SerializerMethodField()
    result = serializers.JSONField(allow_null=True, help_text="What the tool returned, after redactions.")
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    compensates = serializers.IntegerField(source="compensates_id", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)

    def get_entity(self, step) -> str | None:
        return (step.action or {}).get("entity")

    @extend_schema_field(ApprovalSerializer(allow_null=True))
    def get_approval(self, step):
        approval = self.context.get("approvals", {}).get(step.pk)
        return ApprovalSerializer(approval).data if approval is not None else None


class TaskDetailSerializer(TaskSerializer):
    principal = serializers.JSONField(help_text="What rules read as `principal`.")
    steps = serializers.SerializerMethodField(help_text="The trace: every step in order.")

    @extend_schema_field(TraceStepSerializer(many=True))
    def get_steps(self, task) -> list:
        entries = self.context["entries"]
        approvals = {entry.step.pk: entry.approval for entry in entries}
        steps = [entry.step for entry in entries]
        return TraceStepSerializer(steps, many=True, context={"approvals": approvals}).data


class HeldStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    key = serializers.CharField()
    tool = serializers.CharField()
    action = serializers.JSONField(help_text="The held action (its params are what an edit replaces).")
    action_hash = serializers.CharField()


class ApprovalDetailSerializer(ApprovalSerializer):
    task = serializers.IntegerField(source="step.task_id")
    trace_id = serializers.CharField(source="step.task.trace_id")
    deployment = serializers.IntegerField(source="step.task.deployment_id")
    deployment_name = serializers.CharField(source="step.task.deployment.name")
    step = HeldStepSerializer()
    held_decision = TraceDecisionSerializer()


def _trace(client: Client, task_id: int) -> dict:
    trace = selectors.task_trace(client=client, task_id=task_id)
    return TaskDetailSerializer(trace.task, context={"entries": trace.entries}).data


# --- Tasks ---------------------------------------------------------------------------------------


class TaskFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
    deployment = serializers.IntegerField(required=False, min_value=1)
    workflow = serializers.CharField(max_length=64, required=False)
    trace_id = serializers.CharField(max_length=64, required=False)


class _TaskPages(Sequence):
    """The filtered tasks as the paginator sees them: a count and slices, read from the client's schema."""

    def __init__(self, client: Client, filters: dict):
        self.client, self.filters = client, filters

    def __len__(self) -> int:
        return task_count(client=self.client, filters=self.filters)

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> list[Task]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop = index.start or 0, index.stop or 0
            return task_window(client=self.client, filters=self.filters, start=start, stop=stop)
        return task_window(client=self.client, filters=self.filters, start=index, stop=index + 1)[0]


class TaskCreateRequestSerializer(serializers.Serializer):
    deployment = serializers.IntegerField(min_value=1, help_text="The deployed agent's id.")
    workflow = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="One of its version's workflows."
    )
    inputs = serializers.DictField(
        required=False, default=dict, help_text="The workflow's inputs by name: text or numbers."
    )
    instruction = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        help_text="Instead of a workflow: what the LLM planner should do (needs an LLM endpoint).",
    )


def _idempotency_key(request: Request) -> str | None:
    """The caller's `Idempotency-Key`, scoped to the caller (None without one)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise ValidationError(
            {"Idempotency-Key": [f"Send 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters, e.g. a UUID."]}
        )
    return f"api:{request.user.pk}:{key}"


def _same_request(task: Task, deployment_id: int, data: dict) -> bool:
    inputs = {k: v.strip() if isinstance(v, str) else v for k, v in (data.get("inputs") or {}).items()}
    return (
        task.deployment_id == deployment_id
        and task.workflow == (data.get("workflow") or "")
        and task.instruction == (data.get("instruction") or "").strip()
        and (not task.workflow or task.inputs == inputs)
    )


class TaskListCreateApi(_OnClientHost, ListAPIView):
    """The client's tasks, newest first, a page at a time (GET); a new task (POST).

    One path serves both operations, so they share a class: every member reads, client admins and
    operators create.
    """

    serializer_class = TaskSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsTaskRunner()]
        return [IsAuthenticated(), IsClientMember()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's pass: no client
            return Task.objects.none()
        params = TaskFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return _TaskPages(self.get_client(), params.validated_data)

    @extend_schema(
        operation_id="task_list",
        parameters=[
            OpenApiParameter("status", str, enum=list(Task.Status.values)),
            OpenApiParameter("deployment", int, description="A deployment id."),
            OpenApiParameter("workflow", str),
            OpenApiParameter("trace_id", str),
        ],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="task_create",
        request=TaskCreateRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Retry safely: the same key (yours) returns the task made the first time.",
            )
        ],
        responses={
            201: TaskDetailSerializer,
            200: OpenApiResponse(TaskDetailSerializer, description="The task made earlier with this key."),
            422: OpenApiResponse(description="The key was used for a different request."),
        },
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        client = self.get_client()
        params = TaskCreateRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        key = _idempotency_key(request)
        if key is not None:
            existing = task_by_idempotency_key(client=client, key=key)
            if existing is not None:
                if not _same_request(existing, data["deployment"], data):
                    raise IdempotencyKeyReused()
                return Response(_trace(client, existing.pk), status=status.HTTP_200_OK)
        try:
            deployment = deployment_get(client=client, pk=data["deployment"])
        except Http404:
            raise ValidationError({"deployment": ["There is no such deployment."]}) from None
        try:
            task = services.task_create(
                client=client,
                deployment=deployment,
                workflow=data.get("workflow") or "",
                instruction=data.get("instruction") or "",
                inputs=data.get("inputs") or {},
                source=Task.Source.API,
                actor=request.user,
                principal=services.principal_of(client=client, user=request.user, channel="api"),
                idempotency_key=key,
            )
        except IntegrityError:
            # The same key arrived twice at once: the other request made the task.
            existing = task_by_idempotency_key(client=client, key=key) if key else None
            if existing is None:
                raise
            return Response(_trace(client, existing.pk), status=status.HTTP_200_OK)
        return Response(_trace(client, task.pk), status=status.HTTP_201_CREATED)


class TaskDetailApi(_OnClientHost, APIView):
    """One task with its trace: every step with its decision, approval, redacted result and duration."""

    permission_classes = [IsAuthenticated, IsClientMember]

    @extend_schema(operation_id="task_detail", responses=TaskDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_trace(self.get_client(), pk))


# --- Approvals -----------------------------------------------------------------------------------


class ApprovalListApi(_OnClientHost, ListAPIView):
    """Held actions the caller may decide (client admins: all; operators: those held for operators),
    soonest to expire first; `status` lists decided ones instead, newest first."""

    serializer_class = ApprovalDetailSerializer
    permission_classes = [IsAuthenticated, IsTaskRunner]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Approval.objects.none()
        wanted = self.request.query_params.get("status") or Approval.Status.PENDING
        if wanted not in APPROVAL_STATUSES:
            raise ValidationError({"status": [f"One of {', '.join(APPROVAL_STATUSES)}."]})
        return selectors.approval_inbox(client=self.get_client(), user=self.request.user, status=wanted)

    @extend_schema(
        operation_id="approval_list",
        parameters=[OpenApiParameter("status", str, enum=APPROVAL_STATUSES, default="pending")],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ApprovalApproveRequestSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    params = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Edit and approve: the action's parameters as they should run (decided again first).",
    )

    def validate_params(self, value):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValidationError("Give the parameters as one JSON object.")
        if len(json.dumps(value)) > MAX_PARAMS_BYTES:
            raise ValidationError(f"The parameters are larger than {MAX_PARAMS_BYTES // 1000} KB.")
        return value


class ApprovalRejectRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why; the task's trail keeps it.")


class ApprovalApproveApi(_OnClientHost, APIView):
    """Approve a held action, optionally with edited parameters (an edit the rules deny is refused: 400)."""

    permission_classes = [IsAuthenticated, IsTaskRunner]

    @extend_schema(
        operation_id="approval_approve",
        request=ApprovalApproveRequestSerializer,
        responses=ApprovalDetailSerializer,
    )
    def post(self, request: Request, pk: int) -> Response:
        client = self.get_client()
        approval = selectors.approval_get(client=client, user=request.user, approval_id=pk)
        params = ApprovalApproveRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        approval = services.approval_approve(
            client=client,
            approval_id=approval.pk,
            actor=request.user,
            params=params.validated_data["params"],
            note=params.validated_data["note"],
        )
        return Response(ApprovalDetailSerializer(approval).data)


class ApprovalRejectApi(_OnClientHost, APIView):
    """Reject a held action with a reason; it never runs."""

    permission_classes = [IsAuthenticated, IsTaskRunner]

    @extend_schema(
        operation_id="approval_reject",
        request=ApprovalRejectRequestSerializer,
        responses=ApprovalDetailSerializer,
    )
    def post(self, request: Request, pk: int) -> Response:
        client = self.get_client()
        approval = selectors.approval_get(client=client, user=request.user, approval_id=pk)
        params = ApprovalRejectRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        approval = services.approval_reject(
            client=client, approval_id=approval.pk, actor=request.user, reason=params.validated_data["reason"]
        )
        return Response(ApprovalDetailSerializer(approval).data)
