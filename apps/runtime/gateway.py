"""The gateway: the only path from a proposed action to an executed one.

    step_decide(client=..., step=...)   governance decides → DecisionLog + audit event commit →
                                        the step is allowed, denied or held (with its Approval)
    step_execute(client=..., step=...)  only for an allowed or approved step: governance mints a
                                        single-use permit bound to the action's hash → the tool
                                        runs → its result (redacted) and an audit event commit

A denial is a returned state, never an exception that could roll the decision back: the decision
and its audit event are committed before any tool runs. Tool executors (apps.runtime.tools) are
imported by this module only (an import-linter contract), and each refuses to run without a permit.

Exactly once: a step is claimed (`executing`, committed) before its tool runs. A worker that finds a
step still `executing` knows a previous worker stopped mid-call: a repeatable tool (reads, db.update)
runs again; any other is marked `in_doubt` and never run a second time by itself.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_append
from apps.core.exceptions import ApplicationError
from apps.governance.engine import Decision
from apps.governance.models import DecisionLog
from apps.governance.permits import PermitError, permit_mint
from apps.governance.rates import RedisRateCounter
from apps.governance.services import decision_make
from apps.tenancy.models import Client

from . import tools
from .models import Approval, Step, Task
from .notifications import approval_notify

log = logging.getLogger(__name__)

# An allowed step not yet run after this long is decided again before it runs (rules may have changed).
DECISION_FRESH_SECONDS = 60
DEFAULT_APPROVAL_TTL_MINUTES = 24 * 60
ROLE_LABELS = {"client_admin": "a client admin", "operator": "an operator"}
STATUS_OF_EFFECT = {
    "allow": Step.Status.ALLOWED,
    "redact": Step.Status.ALLOWED,
    "require_approval": Step.Status.HELD,
    "deny": Step.Status.DENIED,
}


class RetryLater(Exception):
    """A tool failed in a way worth retrying and surely without effect; the step is runnable again."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _actor(task: Task) -> str:
    return f"agent:{task.deployment.name}"


def trace_so_far(task: Task) -> dict:
    """What governance reads as `trace`: actions proposed so far in this task, cost so far, depth."""
    return {
        "steps": task.steps.exclude(status=Step.Status.SKIPPED).count(),
        "cost": float(task.cost_used),
        "tokens": task.tokens_used,
        "depth": 0,
    }


def step_decide(*, client: Client, step: Step) -> Decision:
    """Ask governance about the step's action and record the answer; returns the engine's decision.

    In one transaction: the DecisionLog row, the step's new status, its Approval when held, and the
    `decision` audit event (plus `approval.requested`). Nothing runs here.
    """
    task = step.task
    with transaction.atomic():
        decision, record = decision_make(
            client=client,
            deployment=task.deployment,
            action=step.action,
            principal=task.principal,
            trace=trace_so_far(task),
            trace_id=task.trace_id,
        )
        step.decision = record
        step.action_hash = decision.action_hash
        step.status = STATUS_OF_EFFECT.get(decision.effect, Step.Status.DENIED)
        if step.status == Step.Status.DENIED:
            step.error = decision.reason
            step.finished_at = timezone.now()
        step.save(update_fields=["decision", "action_hash", "status", "error", "finished_at"])
        audit_append(
            kind="decision",
            actor=_actor(task),
            trace_id=task.trace_id,
            deployment_id=task.deployment_id,
            effect=decision.effect,
            subject=f"{step.key}: {step.tool} {step.action.get('entity') or ''}".strip(),
            data={
                "step": step.position,
                "decision_id": record.pk,
                "action_hash": decision.action_hash,
                "ruleset_version": record.ruleset_version.number if record.ruleset_version else None,
                "deciding_rule": decision.deciding_rule,
                "layer": decision.layer,
                "matched": list(decision.matched),
                "reason": decision.reason,
            },
        )
        if step.status == Step.Status.HELD:
            approval = _approval_open(step=step, decision=decision, record=record)
            approval_notify(client=client, approval=approval)
    return decision


def _approval_open(*, step: Step, decision: Decision, record: DecisionLog) -> Approval:
    ttl = decision.approval_ttl_minutes or DEFAULT_APPROVAL_TTL_MINUTES
    approval, _ = Approval.objects.update_or_create(
        step=step,
        defaults={
            "approver_role": decision.approver_role or "client_admin",
            "status": Approval.Status.PENDING,
            "reason": decision.reason,
            "expires_at": timezone.now() + timedelta(minutes=ttl),
            "held_decision": record,
            "decided_by": None,
            "decided_at": None,
            "edited_action": None,
        },
    )
    audit_append(
        kind="approval.requested",
        actor=_actor(step.task),
        trace_id=step.task.trace_id,
        deployment_id=step.task.deployment_id,
        effect="require_approval",
        subject=f"{step.key}: waiting for {ROLE_LABELS.get(approval.approver_role, approval.approver_role)}",
        data={
            "step": step.position,
            "approval_id": approval.pk,
            "expires_at": approval.expires_at.isoformat(),
        },
    )
    return approval


def _claim(step: Step) -> tuple[Step, str]:
    """Lock the step and decide what this worker may do with it: run, rerun, in_doubt or nothing."""
    with transaction.atomic():
        step = (
            Step.objects.select_for_update(of=("self",))
            .select_related("task__deployment", "decision")
            .get(pk=step.pk)
        )
        if step.status == Step.Status.EXECUTING:
            if step.tool in tools.REPEATABLE:
                step.attempts += 1
                step.save(update_fields=["attempts"])
                return step, "rerun"
            step.status = Step.Status.IN_DOUBT
            step.error = (
                f"A worker stopped while {step.tool} was running; it may or may not have taken effect, "
                "so it is not run again. Check it before running the task again."
            )
            step.finished_at = timezone.now()
            step.save(update_fields=["status", "error", "finished_at"])
            audit_append(
                kind="tool.in_doubt",
                actor=_actor(step.task),
                trace_id=step.task.trace_id,
                deployment_id=step.task.deployment_id,
                subject=f"{step.key}: {step.tool}",
                data={"step": step.position, "action_hash": step.action_hash},
            )
            return step, "in_doubt"
        if step.status not in Step.RUNNABLE:
            return step, "nothing"
        step.status = Step.Status.EXECUTING
        step.attempts += 1
        step.started_at = timezone.now()
        step.save(update_fields=["status", "attempts", "started_at"])
        return step, "run"


def _approver_id(step: Step) -> int | None:
    approval = Approval.objects.filter(step=step, status=Approval.Status.APPROVED).first()
    return approval.decided_by_id if approval else None


def step_execute(*, client: Client, step: Step) -> Step:
    """Run an allowed or approved step's tool with a fresh permit and record what happened.

    Returns the step, `executed`, `failed` or `in_doubt`; a transient failure of a tool that surely had
    no effect puts the step back to its runnable status and raises RetryLater, so the caller can retry.
    """
    if step.status == Step.Status.ALLOWED and step.decision and _stale(step.decision):
        # Rules may have changed since the decision: decide again before anything runs.
        step_decide(client=client, step=step)
        step.refresh_from_db()
        if step.status != Step.Status.ALLOWED:
            return step
    runnable_status = step.status
    step, verdict = _claim(step)
    if verdict in ("nothing", "in_doubt"):
        return step
    if verdict == "rerun":
        runnable_status = Step.Status.APPROVED if _approver_id(step) else Step.Status.ALLOWED
    decision = step.decision
    if decision is None:
        raise ApplicationError("The step has no decision; it cannot run.")
    task = step.task
    started = time.perf_counter()
    try:
        permit = permit_mint(decision=decision, action=step.action, approved_by=_approver_id(step))
        ctx = tools.ToolContext(
            client=client,
            deployment=task.deployment,
            idempotency_key=step.idempotency_key,
            spec=_tool_spec(task, step.tool),
        )
        raw = tools.run(permit=permit, action=step.action, ctx=ctx)
    except PermitError as exc:
        return _finish(step, started, error=f"Refused: {exc}", failed=True)
    except tools.ToolError as exc:
        if exc.transient and not exc.maybe_applied:
            with transaction.atomic():
                Step.objects.filter(pk=step.pk).update(status=runnable_status, error=exc.message)
            raise RetryLater(exc.message) from None
        if exc.maybe_applied and step.tool not in tools.REPEATABLE:
            return _finish(step, started, error=exc.message, failed=True, in_doubt=True)
        return _finish(step, started, error=exc.message, failed=True)
    except Exception:  # an unexpected executor failure: record it, never show its details to people
        log.exception("tool %s failed in step %s", step.tool, step.pk)
        return _finish(step, started, error=f"{step.tool} failed unexpectedly.", failed=True)
    RedisRateCounter(client.schema_name).hit(f"tool:{step.tool}")
    result = redact(raw, tuple(decision.redact_fields or ()))
    return _finish(step, started, result=result)


def _stale(decision: DecisionLog) -> bool:
    return (timezone.now() - decision.created_at).total_seconds() > DECISION_FRESH_SECONDS


def _tool_spec(task: Task, tool: str) -> dict:
    for entry in task.deployment.version.spec.get("tools", []):
        if entry.get("name") == tool:
            return entry
    return {"name": tool, "entities": [], "settings": {}}


def _finish(
    step: Step,
    started: float,
    *,
    result: Any = None,
    error: str = "",
    failed: bool = False,
    in_doubt: bool = False,
) -> Step:
    step.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    step.finished_at = timezone.now()
    step.result = result
    step.error = error
    step.status = Step.Status.IN_DOUBT if in_doubt else Step.Status.FAILED if failed else Step.Status.EXECUTED
    task = step.task
    with transaction.atomic():
        step.save(update_fields=["duration_ms", "finished_at", "result", "error", "status"])
        audit_append(
            kind="tool.failed" if failed else "tool.executed",
            actor=_actor(task),
            trace_id=task.trace_id,
            deployment_id=task.deployment_id,
            subject=f"{step.key}: {step.tool} {step.action.get('entity') or ''}".strip(),
            data={
                "step": step.position,
                "action_hash": step.action_hash,
                "duration_ms": step.duration_ms,
                "error": error,
                "in_doubt": in_doubt,
            },
        )
    return step


def redact(value: Any, fields: tuple[str, ...]) -> Any:
    """`value` without the named fields anywhere in it (maps inside maps and lists)."""
    if not fields:
        return value
    names = frozenset(fields)
    if isinstance(value, dict):
        return {key: redact(item, fields) for key, item in value.items() if key not in names}
    if isinstance(value, list):
        return [redact(item, fields) for item in value]
    return value
