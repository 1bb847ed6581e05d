"""Portal and API reads: tasks, a task's trace, the approval inbox; each switches into the client."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404
from django_tenants.utils import tenant_context

from apps.accounts.access import client_membership_of
from apps.accounts.models import User
from apps.tenancy.models import Client

from .models import Approval, Step, Task, TaskSchedule

TASK_FILTERS = ("status", "deployment", "workflow", "trace_id")


def task_list(*, client: Client, filters: dict | None = None) -> list[Task]:
    """Tasks newest first, filtered by status, deployment id, workflow or trace id."""
    filters = filters or {}
    with tenant_context(client):
        tasks: QuerySet[Task] = Task.objects.select_related("deployment", "requested_by")
        if filters.get("status"):
            tasks = tasks.filter(status=filters["status"])
        if filters.get("deployment"):
            tasks = tasks.filter(deployment_id=filters["deployment"])
        if filters.get("workflow"):
            tasks = tasks.filter(workflow=filters["workflow"])
        if filters.get("trace_id"):
            tasks = tasks.filter(trace_id=filters["trace_id"])
        return list(tasks[: int(filters.get("limit") or 500)])


@dataclass
class TraceEntry:
    step: Step
    approval: Approval | None


@dataclass
class Trace:
    task: Task
    entries: list[TraceEntry]


def task_get(*, client: Client, task_id: int | None = None, trace_id: str | None = None) -> Task:
    with tenant_context(client):
        query = Task.objects.select_related("deployment__version", "requested_by")
        task = query.filter(pk=task_id).first() if task_id else query.filter(trace_id=trace_id).first()
        if task is None:
            raise Http404("No such task.")
        return task


def task_trace(*, client: Client, task_id: int) -> Trace:
    """The task with every step in order, each with its decision and approval."""
    task = task_get(client=client, task_id=task_id)
    with tenant_context(client):
        steps = list(
            task.steps.select_related("decision__ruleset_version", "approval__decided_by").order_by(
                "position"
            )
        )
        entries = [TraceEntry(step=s, approval=getattr(s, "approval", None)) for s in steps]
    return Trace(task=task, entries=entries)


def approval_inbox(*, client: Client, user: User, status: str = "pending") -> list[Approval]:
    """Approvals the user may decide (client admins: all; operators: those held for operators)."""
    membership = client_membership_of(user, client)
    if membership is None or membership.role not in ("client_admin", "operator"):
        return []
    with tenant_context(client):
        approvals = Approval.objects.select_related(
            "step__task__deployment", "held_decision", "decided_by"
        ).filter(status=status)
        if membership.role == "operator":
            approvals = approvals.filter(approver_role="operator")
        return list(approvals.order_by("expires_at" if status == "pending" else "-decided_at")[:500])


def approval_get(*, client: Client, user: User, approval_id: int) -> Approval:
    """One approval the user may see (404 otherwise)."""
    membership = client_membership_of(user, client)
    if membership is None:
        raise Http404("No such approval.")
    with tenant_context(client):
        approval = (
            Approval.objects.select_related("step__task__deployment", "held_decision", "decided_by")
            .filter(pk=approval_id)
            .first()
        )
        if approval is None or (membership.role == "operator" and approval.approver_role != "operator"):
            raise Http404("No such approval.")
        if membership.role == "viewer" and approval.is_pending:
            raise Http404("No such approval.")
        return approval


def schedule_list(*, client: Client) -> list[TaskSchedule]:
    """The client's schedules by name, each with its agent and the last task it started."""
    with tenant_context(client):
        schedules = TaskSchedule.objects.select_related("deployment", "last_task", "created_by")
        return list(schedules.order_by("name", "pk"))


def schedule_get(*, client: Client, schedule_id: int) -> TaskSchedule | None:
    """One of the client's schedules, or None."""
    with tenant_context(client):
        return TaskSchedule.objects.select_related("deployment", "last_task").filter(pk=schedule_id).first()
