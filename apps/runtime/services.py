"""Running tasks: create, advance step by step through the gateway, apply failure policies; approvals.

Every function taking a `client` switches into its schema. `task_advance` is what the Celery worker
runs: it holds a PostgreSQL advisory lock on the task for the whole run (two workers never advance
one task; a dead worker's lock goes with its connection), resumes whatever a previous run left —
a step allowed or approved but not yet run, or one interrupted mid-run — and then asks the planner
for the next action until the task finishes or waits for an approval.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.access import client_membership_of
from apps.accounts.models import User
from apps.audit.services import audit_append
from apps.connectors.models import DataSource
from apps.core.db import tenant_connection
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.governance.context import action_clean
from apps.governance.models import DecisionLog
from apps.governance.services import decision_make
from apps.tenancy.models import Client

from . import gateway
from .models import Approval, LlmEndpoint, Step, Task, TaskSchedule
from .notifications import approval_notify
from .planners import Broken, Finish, Skip, action_for
from .planners.workflow import WorkflowPlanner, workflow_of

log = logging.getLogger(__name__)

MAX_INPUT_BYTES = 20_000
# A task never runs more steps than this, whatever its planner says (a loop guard beside governance's).
HARD_STEP_LIMIT = 500
FAILED_STATES = (Step.Status.FAILED, Step.Status.IN_DOUBT)
REFUSED_STATES = (Step.Status.DENIED, Step.Status.REJECTED, Step.Status.EXPIRED)


class TaskBusy(Exception):
    """Another worker is advancing this task right now."""


@contextmanager
def _in_client(client: Client) -> Iterator[None]:
    with tenant_context(client):
        yield


# --- Creating tasks -----------------------------------------------------------------------------


def principal_of(*, client: Client, user: User | None, kind: str = "user", channel: str = "") -> dict:
    """What rules read as `principal`: the requesting user and their role in the client, or the source."""
    if user is None:
        return {"kind": kind, "id": "", "role": "", "channel": channel}
    membership = client_membership_of(user, client)
    return {"kind": kind, "id": user.email, "role": membership.role if membership else "", "channel": channel}


def _clean_inputs(workflow: dict, inputs) -> dict:
    if not isinstance(inputs, dict):
        raise ApplicationError("The inputs are a map of names to values.", field="inputs")
    declared = list(workflow.get("inputs") or [])
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise ApplicationError(f"Unknown input: {', '.join(map(str, unknown))}.", field="inputs")
    cleaned = {}
    for name in declared:
        value = inputs.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            raise ApplicationError(f"The input {name} is required.", field=name)
        if not isinstance(value, str | int | float | bool):
            raise ApplicationError(f"The input {name} is a single value (text or a number).", field=name)
        cleaned[name] = value
    if len(json.dumps(cleaned, default=str)) > MAX_INPUT_BYTES:
        raise ApplicationError(f"The inputs are larger than {MAX_INPUT_BYTES // 1000} KB.", field="inputs")
    return cleaned


def task_create(
    *,
    client: Client,
    deployment: Deployment,
    workflow: str = "",
    instruction: str = "",
    inputs: dict | None = None,
    source: str,
    actor: User | None,
    principal: dict | None = None,
    idempotency_key: str | None = None,
    enqueue: bool = True,
) -> Task:
    """Queue a task for a deployed agent: a workflow of its version with inputs, or a free instruction.

    With an `idempotency_key` already used, the existing task is returned and nothing new is queued.
    `enqueue=False` leaves it to the caller to run `task_advance` (demo data, benchmarks).
    """
    with _in_client(client):
        deployment = Deployment.objects.select_related("version").get(pk=deployment.pk)
        if idempotency_key:
            existing = Task.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        if deployment.status != Deployment.Status.DEPLOYED:
            raise ApplicationError(f"{deployment.name} is not deployed; it cannot run tasks.")
        if source not in Task.Source.values:
            raise ApplicationError("Unknown task source.", field="source")
        instruction = (instruction or "").strip()
        if bool(workflow) == bool(instruction):
            raise ApplicationError("Give either a workflow or an instruction.", field="workflow")
        if workflow:
            task_shell = Task(deployment=deployment, workflow=workflow)
            spec_workflow = workflow_of(task_shell)
            if spec_workflow is None:
                raise ApplicationError(f"{deployment.name} has no workflow {workflow}.", field="workflow")
            inputs = _clean_inputs(spec_workflow, inputs or {})
        else:
            if len(instruction) > 4000:
                raise ApplicationError(
                    "The instruction is longer than 4,000 characters.", field="instruction"
                )
            if not _llm_configured(deployment):
                raise ApplicationError(
                    f"{deployment.name} has no LLM endpoint set up; run one of its workflows instead.",
                    field="instruction",
                )
            inputs = {}
        with transaction.atomic():
            task = Task.objects.create(
                deployment=deployment,
                workflow=workflow,
                instruction=instruction,
                inputs=inputs,
                source=source,
                requested_by=actor,
                principal=principal or principal_of(client=client, user=actor),
                idempotency_key=idempotency_key or None,
            )
            audit_append(
                kind="task.created",
                actor=actor.email if actor else source,
                actor_id=actor.pk if actor else None,
                trace_id=task.trace_id,
                deployment_id=deployment.pk,
                subject=f"{deployment.name}: {workflow or 'instruction'}",
                data={"task_id": task.pk, "workflow": workflow, "inputs": inputs, "source": source},
            )
            if enqueue:
                transaction.on_commit(lambda: task_enqueue(client=client, task_id=task.pk))
        return task


def _llm_configured(deployment: Deployment) -> bool:
    return LlmEndpoint.objects.filter(deployment=deployment).exists()


def task_queue(client: Client) -> str:
    """The Celery queue a client's tasks go to.

    A client whose data source password lives only in its own worker's environment (hybrid execution
    plane) runs that worker on `tenant.<slug>`; every other client's tasks go to the shared queue.
    """
    with _in_client(client):
        own_worker = DataSource.objects.exclude(secret_env_var="").exists()
    return f"tenant.{client.slug}" if own_worker else settings.CELERY_TASK_DEFAULT_QUEUE


def task_enqueue(*, client: Client, task_id: int) -> None:
    """Send the task to the workers (inside the client's schema, so the worker runs there too)."""
    from .tasks import advance_task

    with _in_client(client):
        advance_task.apply_async(args=[task_id], queue=task_queue(client))


# --- Advancing tasks ----------------------------------------------------------------------------


@contextmanager
def _task_lock(task_id: int) -> Iterator[None]:
    key = f"{tenant_connection().schema_name}:runtime.task:{task_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
        (locked,) = cursor.fetchone()
    if not locked:
        raise TaskBusy(task_id)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def task_is_busy(*, client: Client, task_id: int) -> bool:
    """Whether a worker holds the task right now."""
    with _in_client(client):
        try:
            with _task_lock(task_id):
                return False
        except TaskBusy:
            return True


def task_advance(*, client: Client, task_id: int) -> Task:
    """Run the task as far as it goes now; returns it running, waiting, or finished.

    Raises TaskBusy when another worker holds it and tools.ToolError(transient) when a tool failed in a
    way worth retrying (the step is back to runnable; the caller retries with backoff).
    """
    with _in_client(client), _task_lock(task_id):
        task = Task.objects.select_related("deployment__version").get(pk=task_id)
        if task.is_finished:
            return task
        if task.status in (Task.Status.QUEUED, Task.Status.WAITING):
            task.status = Task.Status.RUNNING
            task.started_at = task.started_at or timezone.now()
            task.save(update_fields=["status", "started_at"])
        while True:
            steps = list(task.steps.order_by("position"))
            if len(steps) >= HARD_STEP_LIMIT:
                return _task_finish(task, Task.Status.STOPPED, f"Stopped after {HARD_STEP_LIMIT} steps.")
            runnable = next((s for s in steps if s.status in (*Step.RUNNABLE, Step.Status.EXECUTING)), None)
            if runnable is not None:
                step = gateway.step_execute(client=client, step=runnable)
                stop = _after_failure(client, task, step)
                if stop:
                    return stop
                continue
            stop = next((_after_failure(client, task, s) for s in steps if _unresolved(s)), None)
            if stop:
                return stop
            if any(s.status == Step.Status.HELD for s in steps):
                task.status = Task.Status.WAITING
                task.save(update_fields=["status"])
                return task
            proposal = _planner(task).next(task, steps)
            if isinstance(proposal, Finish):
                return _task_finish(
                    task,
                    Task.Status.COMPLETED if proposal.completed else Task.Status.FAILED,
                    proposal.outcome,
                )
            position = (steps[-1].position + 1) if steps else 1
            step = Step(
                task=task,
                position=position,
                key=proposal.key,
                idempotency_key=f"{task.trace_id}:{position}",
                action={} if isinstance(proposal, Skip) else proposal.action,
                on_failure=getattr(proposal, "on_failure", "halt"),
            )
            if isinstance(proposal, Skip):
                step.status = Step.Status.SKIPPED
                step.error = proposal.reason
                step.finished_at = timezone.now()
                step.save()
                continue
            if isinstance(proposal, Broken):
                step.status = Step.Status.FAILED
                step.error = proposal.error
                step.finished_at = timezone.now()
                step.save()
                continue
            try:
                step.action = action_clean(proposal.action)
            except ApplicationError as exc:
                step.status = Step.Status.FAILED
                step.error = f"The planner proposed a malformed action: {exc.message}"
                step.finished_at = timezone.now()
                step.save()
                continue
            step.save()
            gateway.step_decide(client=client, step=step)


def _planner(task: Task):
    if task.planner == "workflow":
        return WorkflowPlanner()
    from .planners.llm import LlmPlanner

    return LlmPlanner()


def _unresolved(step: Step) -> bool:
    """A refused or failed step whose failure policy has not been applied yet."""
    return (
        step.status in (*REFUSED_STATES, *FAILED_STATES)
        and not step.compensates_id
        and not _policy_done(step)
    )


def _policy_done(step: Step) -> bool:
    return step.policy_applied


def _after_failure(client: Client, task: Task, step: Step) -> Task | None:
    """Apply a refused or failed step's failure policy; returns the task if it ends here."""
    if step.status not in (*REFUSED_STATES, *FAILED_STATES) or step.compensates_id or _policy_done(step):
        return None
    policy = "halt" if step.status == Step.Status.IN_DOUBT else step.on_failure
    Step.objects.filter(pk=step.pk).update(policy_applied=True)
    step.policy_applied = True
    if policy == "continue":
        return None
    what = step.get_status_display().lower()
    outcome = f"Step {step.key} ({step.tool}) was {what}: {step.error or 'no reason given'}"
    if policy == "compensate":
        outcome += " " + _compensate(client, task)
    status = Task.Status.FAILED if step.status in FAILED_STATES else Task.Status.STOPPED
    return _task_finish(task, status, outcome)


def _compensate(client: Client, task: Task) -> str:
    """Undo the task's executed db.update steps, newest first, each through the gateway like any action."""
    undone, refused = 0, 0
    executed = task.steps.filter(
        status=Step.Status.EXECUTED, compensates__isnull=True, action__tool="db.update"
    ).order_by("-position")
    for original in executed:
        before = (original.result or {}).get("before") or {}
        changed = {k: v for k, v in (original.action.get("params") or {}).items() if k != "id"}
        restore = {k: before[k] for k in changed if k in before}
        if not restore:
            refused += 1
            continue
        last = task.steps.order_by("-position").first()
        position = (last.position if last else 0) + 1
        params = {"id": original.action["params"]["id"], **restore}
        step = Step.objects.create(
            task=task,
            position=position,
            key=f"undo_{original.key}",
            idempotency_key=f"{task.trace_id}:{position}",
            action=action_clean(action_for("db.update", original.action.get("entity"), params)),
            compensates=original,
        )
        gateway.step_decide(client=client, step=step)
        step.refresh_from_db()
        if step.status == Step.Status.ALLOWED:
            step = gateway.step_execute(client=client, step=step)
        if step.status == Step.Status.EXECUTED:
            undone += 1
        else:
            refused += 1
    if not undone and not refused:
        return "Nothing to undo."
    return f"Compensation: {undone} change(s) undone" + (
        f", {refused} could not be undone." if refused else "."
    )


def _task_finish(task: Task, status: str, outcome: str) -> Task:
    with transaction.atomic():
        task.status = status
        task.outcome = outcome[:2000]
        task.finished_at = timezone.now()
        task.save(update_fields=["status", "outcome", "finished_at"])
        audit_append(
            kind="task.finished",
            actor=gateway._actor(task),
            trace_id=task.trace_id,
            deployment_id=task.deployment_id,
            subject=f"{task.get_status_display()}: {outcome[:150]}",
            data={"task_id": task.pk, "status": status, "outcome": task.outcome},
        )
    return task


def tasks_resume_stalled(*, client: Client, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Re-queue unfinished tasks that no worker holds (e.g. after a worker was killed); returns how many."""
    count = 0
    with _in_client(client):
        cutoff = timezone.now() - older_than
        # Queued or running, or waiting although nothing is held any more (decided while no worker ran it).
        candidates = (
            Task.objects.filter(created_at__lt=cutoff)
            .filter(
                Q(status__in=(Task.Status.QUEUED, Task.Status.RUNNING))
                | (Q(status=Task.Status.WAITING) & ~Q(steps__status=Step.Status.HELD))
            )
            .distinct()
            .values_list("pk", flat=True)
        )
        for task_id in candidates:
            if not task_is_busy(client=client, task_id=task_id):
                task_enqueue(client=client, task_id=task_id)
                count += 1
    return count


# --- Approvals ----------------------------------------------------------------------------------


def may_decide(*, client: Client, user: User, approval: Approval) -> bool:
    """A client admin may decide any held step; an operator only those held for operators."""
    membership = client_membership_of(user, client)
    if membership is None:
        return False
    if membership.role == "client_admin":
        return True
    return membership.role == "operator" and approval.approver_role == "operator"


def _approval_for_decision(client: Client, approval_id: int, actor: User) -> Approval:
    approval = (
        Approval.objects.select_for_update()
        .select_related("step__task__deployment__version", "held_decision")
        .get(pk=approval_id)
    )
    if not may_decide(client=client, user=actor, approval=approval):
        raise ApplicationError("Your role cannot decide this action.")
    if approval.step.task.requested_by_id == actor.pk:
        raise ApplicationError("You asked for this task; someone else must approve its held actions.")
    if approval.status != Approval.Status.PENDING:
        raise ApplicationError(f"This action was already {approval.get_status_display().lower()}.")
    if approval.expires_at <= timezone.now():
        raise ApplicationError("This approval has expired.")
    return approval


def _evidence(approval: Approval, record) -> dict:
    return {
        "approval_id": approval.pk,
        "step": approval.step.position,
        "decision_id": record.pk,
        "ruleset_version": record.ruleset_version.number if record.ruleset_version else None,
        "action_hash": record.action_hash,
        "approver_role": approval.approver_role,
    }


def approval_approve(
    *, client: Client, approval_id: int, actor: User, params: dict | None = None, note: str = ""
) -> Approval:
    """Approve a held step, optionally with edited parameters (evaluated again: an edit cannot make it
    forbidden — a denied edit is refused and the approval stays pending)."""
    with _in_client(client):
        edited, edited_record = None, None
        if params is not None:
            with transaction.atomic():
                approval = _approval_for_decision(client, approval_id, actor)
                step = approval.step
                edited = action_clean({**step.action, "params": params})
                if edited["params"] == step.action.get("params"):
                    edited = None
            if edited is not None:
                edited_record = _decide_edit(client=client, step=step, action=edited, actor=actor)
        with transaction.atomic():
            approval = _approval_for_decision(client, approval_id, actor)
            step = approval.step
            record = approval.held_decision
            if edited is not None and edited_record is not None:
                step.action = edited
                step.decision = record = edited_record
                step.action_hash = edited_record.action_hash
                approval.edited_action = edited
            approval.status = Approval.Status.APPROVED
            approval.decided_by = actor
            approval.decided_at = timezone.now()
            approval.decision_note = note[:2000]
            approval.save(
                update_fields=["status", "decided_by", "decided_at", "decision_note", "edited_action"]
            )
            step.status = Step.Status.APPROVED
            step.save(update_fields=["status", "action", "decision", "action_hash"])
            audit_append(
                kind="approval.approved",
                actor=actor.email,
                actor_id=actor.pk,
                trace_id=step.task.trace_id,
                deployment_id=step.task.deployment_id,
                effect="allow",
                subject=f"{step.key}: approved" + (" with edits" if edited is not None else ""),
                data={**_evidence(approval, record), "note": note[:500], "edited": edited is not None},
            )
            task_id = step.task_id
            transaction.on_commit(lambda: task_enqueue(client=client, task_id=task_id))
        return approval


def _decide_edit(*, client: Client, step: Step, action: dict, actor: User) -> DecisionLog:
    """Evaluate an approver's edit of a held action (the decision and its audit event are kept either way);
    ApplicationError when the edit makes it forbidden or needs an approver of a higher role."""
    decision, record = decision_make(
        client=client,
        deployment=step.task.deployment,
        action=action,
        principal=step.task.principal,
        trace=gateway.trace_so_far(step.task),
        trace_id=step.task.trace_id,
    )
    with transaction.atomic():
        audit_append(
            kind="decision",
            actor=actor.email,
            actor_id=actor.pk,
            trace_id=step.task.trace_id,
            deployment_id=step.task.deployment_id,
            effect=decision.effect,
            subject=f"{step.key}: {step.tool} as edited by the approver",
            data={
                "step": step.position,
                "decision_id": record.pk,
                "edited": True,
                "action_hash": record.action_hash,
                "deciding_rule": decision.deciding_rule,
                "reason": decision.reason,
            },
        )
    if decision.effect == "deny":
        raise ApplicationError(f"The edited action is not allowed: {decision.reason}")
    if decision.effect == "require_approval" and decision.approver_role == "client_admin":
        membership = client_membership_of(actor, client)
        if not membership or membership.role != "client_admin":
            raise ApplicationError("The edited action needs a client admin's approval.")
    return record


def approval_reject(*, client: Client, approval_id: int, actor: User, reason: str) -> Approval:
    """Reject a held step with a reason; the task goes on according to the step's failure policy."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why you reject it.", field="reason")
    with _in_client(client), transaction.atomic():
        approval = _approval_for_decision(client, approval_id, actor)
        step = approval.step
        approval.status = Approval.Status.REJECTED
        approval.decided_by = actor
        approval.decided_at = timezone.now()
        approval.decision_note = reason[:2000]
        approval.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        step.status = Step.Status.REJECTED
        step.error = f"Rejected by {actor.email}: {reason[:500]}"
        step.finished_at = timezone.now()
        step.save(update_fields=["status", "error", "finished_at"])
        audit_append(
            kind="approval.rejected",
            actor=actor.email,
            actor_id=actor.pk,
            trace_id=step.task.trace_id,
            deployment_id=step.task.deployment_id,
            effect="deny",
            subject=f"{step.key}: rejected",
            data={**_evidence(approval, approval.held_decision), "reason": reason[:500]},
        )
        task_id = step.task_id
        transaction.on_commit(lambda: task_enqueue(client=client, task_id=task_id))
        return approval


def approvals_expire(*, client: Client, now: datetime | None = None) -> int:
    """Expire pending approvals past their time; their steps end `expired`. Returns how many."""
    now = now or timezone.now()
    count = 0
    with _in_client(client):
        due = list(
            Approval.objects.filter(status=Approval.Status.PENDING, expires_at__lte=now).values_list(
                "pk", flat=True
            )
        )
        for approval_id in due:
            with transaction.atomic():
                approval = (
                    Approval.objects.select_for_update().select_related("step__task").get(pk=approval_id)
                )
                if approval.status != Approval.Status.PENDING:
                    continue
                step = approval.step
                approval.status = Approval.Status.EXPIRED
                approval.decided_at = now
                approval.save(update_fields=["status", "decided_at"])
                step.status = Step.Status.EXPIRED
                step.error = "Nobody decided before the approval expired."
                step.finished_at = now
                step.save(update_fields=["status", "error", "finished_at"])
                audit_append(
                    kind="approval.expired",
                    actor="system",
                    trace_id=step.task.trace_id,
                    deployment_id=step.task.deployment_id,
                    effect="deny",
                    subject=f"{step.key}: expired",
                    data=_evidence(approval, approval.held_decision),
                )
                transaction.on_commit(_enqueue_later(client, step.task_id))
                count += 1
    return count


def approvals_escalate(*, client: Client, now: datetime | None = None) -> int:
    """Escalate pending approvals past half their time to the client admins (once each); returns how many."""
    now = now or timezone.now()
    count = 0
    with _in_client(client):
        pending = Approval.objects.filter(status=Approval.Status.PENDING, escalated_at__isnull=True)
        for approval in pending.select_related("step__task__deployment"):
            if now < approval.created_at + (approval.expires_at - approval.created_at) / 2:
                continue
            with transaction.atomic():
                updated = Approval.objects.filter(
                    pk=approval.pk, status=Approval.Status.PENDING, escalated_at__isnull=True
                ).update(escalated_at=now)
                if not updated:
                    continue
                step = approval.step
                audit_append(
                    kind="approval.escalated",
                    actor="system",
                    trace_id=step.task.trace_id,
                    deployment_id=step.task.deployment_id,
                    effect="require_approval",
                    subject=f"{step.key}: escalated to the client admins",
                    data={
                        "approval_id": approval.pk,
                        "step": step.position,
                        "approver_role": approval.approver_role,
                    },
                )
                approval_notify(client=client, approval=approval, escalated=True)
                count += 1
    return count


def task_give_up(*, client: Client, task_id: int, reason: str) -> Task:
    """End a task whose tool kept failing after every retry."""
    with _in_client(client):
        task = Task.objects.get(pk=task_id)
        if task.is_finished:
            return task
        task.steps.filter(status__in=Step.RUNNABLE).update(
            status=Step.Status.FAILED, error=f"Gave up after retries: {reason}", finished_at=timezone.now()
        )
        return _task_finish(task, Task.Status.FAILED, f"Gave up after retries: {reason}")


def _enqueue_later(client: Client, task_id: int):
    return lambda: task_enqueue(client=client, task_id=task_id)


# --- Schedules ----------------------------------------------------------------------------------


def schedule_create(
    *,
    client: Client,
    deployment: Deployment,
    name: str,
    workflow: str,
    inputs: dict,
    every_minutes: int,
    actor: User | None,
) -> TaskSchedule:
    """Run `workflow` of a deployed agent every `every_minutes` (≥ 5) with fixed inputs, starting now."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ApplicationError("Give the schedule a name (up to 120 characters).", field="name")
    if not isinstance(every_minutes, int) or every_minutes < TaskSchedule.MIN_INTERVAL_MINUTES:
        raise ApplicationError(
            f"A schedule runs at most once every {TaskSchedule.MIN_INTERVAL_MINUTES} minutes; "
            f"choose {TaskSchedule.MIN_INTERVAL_MINUTES} minutes or more.",
            field="every_minutes",
        )
    if every_minutes > 60 * 24 * 31:
        raise ApplicationError("A schedule runs at least once a month.", field="every_minutes")
    with _in_client(client):
        deployment = Deployment.objects.select_related("version").get(pk=deployment.pk)
        if deployment.status != Deployment.Status.DEPLOYED:
            raise ApplicationError(f"{deployment.name} is not deployed.", field="deployment")
        spec_workflow = workflow_of(Task(deployment=deployment, workflow=workflow))
        if spec_workflow is None:
            raise ApplicationError(f"{deployment.name} has no workflow {workflow}.", field="workflow")
        inputs = _clean_inputs(spec_workflow, inputs)
        if TaskSchedule.objects.filter(name=name).exists():
            raise ApplicationError("A schedule with this name exists.", field="name")
        with transaction.atomic():
            try:
                with transaction.atomic():
                    schedule = TaskSchedule.objects.create(
                        name=name,
                        deployment=deployment,
                        workflow=workflow,
                        inputs=inputs,
                        every_minutes=every_minutes,
                        next_run_at=timezone.now(),
                        created_by=actor,
                    )
            except IntegrityError:  # the same name saved a moment ago by someone else
                raise ApplicationError("A schedule with this name exists.", field="name") from None
            audit_append(
                kind="schedule.created",
                actor=actor.email if actor else "system",
                actor_id=actor.pk if actor else None,
                deployment_id=deployment.pk,
                subject=f"{name}: {workflow} every {every_minutes} min",
                data={"schedule_id": schedule.pk, "workflow": workflow, "inputs": inputs},
            )
        return schedule


def _schedule_locked(schedule_id: int) -> TaskSchedule:
    schedule = (
        TaskSchedule.objects.select_for_update(of=("self",))
        .select_related("deployment")
        .filter(pk=schedule_id)
        .first()
    )
    if schedule is None:
        raise ApplicationError("That schedule no longer exists.")
    return schedule


def schedule_set_enabled(
    *, client: Client, schedule_id: int, enabled: bool, actor: User | None
) -> TaskSchedule:
    """Pause or resume a schedule. A resumed schedule runs at its next time on its grid, or at once when
    that time has passed (missed runs are not caught up); only a deployed agent's schedule resumes.
    Asking for the state it is already in changes nothing (and records nothing)."""
    with _in_client(client), transaction.atomic():
        schedule = _schedule_locked(schedule_id)
        if schedule.enabled == enabled:
            return schedule
        if enabled and schedule.deployment.status != Deployment.Status.DEPLOYED:
            raise ApplicationError(
                f"{schedule.deployment.name} is not deployed; the schedule can resume once it is."
            )
        schedule.enabled = enabled
        if enabled:
            schedule.next_run_at = max(schedule.next_run_at, timezone.now())
        schedule.save(update_fields=["enabled", "next_run_at"])
        audit_append(
            kind="schedule.enabled" if enabled else "schedule.paused",
            actor=actor.email if actor else "system",
            actor_id=actor.pk if actor else None,
            deployment_id=schedule.deployment_id,
            subject=schedule.name,
            data={"schedule_id": schedule.pk},
        )
        return schedule


def schedule_delete(*, client: Client, schedule_id: int, actor: User | None) -> None:
    """Delete a schedule; the tasks it started stay (with their traces)."""
    with _in_client(client), transaction.atomic():
        schedule = _schedule_locked(schedule_id)
        audit_append(
            kind="schedule.deleted",
            actor=actor.email if actor else "system",
            actor_id=actor.pk if actor else None,
            deployment_id=schedule.deployment_id,
            subject=schedule.name,
            data={"schedule_id": schedule.pk, "workflow": schedule.workflow},
        )
        schedule.delete()


def schedules_run_due(*, client: Client, now: datetime | None = None) -> int:
    """Create a task for every enabled schedule that is due; returns how many were started.

    A schedule whose agent is no longer deployed is paused (and says so in the audit trail).
    """
    now = now or timezone.now()
    started = 0
    with _in_client(client):
        due = list(
            TaskSchedule.objects.filter(enabled=True, next_run_at__lte=now).values_list("pk", flat=True)
        )
        for schedule_id in due:
            with transaction.atomic():
                schedule = (
                    TaskSchedule.objects.select_for_update(skip_locked=True)
                    .select_related("deployment")
                    .filter(pk=schedule_id, enabled=True, next_run_at__lte=now)
                    .first()
                )
                if schedule is None:
                    continue
                try:
                    task = task_create(
                        client=client,
                        deployment=schedule.deployment,
                        workflow=schedule.workflow,
                        inputs=schedule.inputs,
                        source=Task.Source.SCHEDULE,
                        actor=None,
                        principal={"kind": "schedule", "id": schedule.name, "role": "", "channel": ""},
                    )
                except ApplicationError as exc:
                    schedule.enabled = False
                    schedule.save(update_fields=["enabled"])
                    audit_append(
                        kind="schedule.paused",
                        actor="system",
                        deployment_id=schedule.deployment_id,
                        subject=f"{schedule.name}: {exc.message}"[:200],
                        data={"schedule_id": schedule.pk, "reason": exc.message},
                    )
                    continue
                schedule.last_task = task
                # The next run after now on the schedule's own grid (missed runs are not caught up).
                step = timedelta(minutes=schedule.every_minutes)
                next_run = schedule.next_run_at + step
                while next_run <= now:
                    next_run += step
                schedule.next_run_at = next_run
                schedule.save(update_fields=["last_task", "next_run_at"])
                started += 1
    return started
