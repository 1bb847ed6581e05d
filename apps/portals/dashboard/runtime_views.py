"""Client dashboard, the governed runtime: run a workflow, the tasks list, a task's trace, approvals.

Client admins and operators run workflows and decide held actions (the services check which held
actions each role may decide, and that nobody approves a task they asked for); viewers read tasks
and traces. Every page is on the client's own host (`request.tenant`), behind `@client_portal`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import client_portal
from apps.accounts.models import ClientRole
from apps.core.exceptions import ApplicationError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.pagination import paginate
from apps.deployments import selectors as deployment_selectors
from apps.runtime import notifications
from apps.runtime import selectors as runtime_selectors
from apps.runtime import services as runtime_services
from apps.runtime.models import Approval, Step, Task
from apps.runtime.settings_services import runnable_workflows, task_page

from .runtime_forms import (
    ApproveForm,
    EditApproveForm,
    RejectForm,
    RunWorkflowForm,
    TaskFilterForm,
    WorkflowPickForm,
)
from .views import ClientRequest, _crumbs

TEMPLATES = "portals/dashboard/runtime"
# Who runs workflows and decides held actions; viewers only read.
RUNNERS = [ClientRole.CLIENT_ADMIN, ClientRole.OPERATOR]
# A result or parameters are shown up to this many characters of pretty JSON.
MAX_JSON_SHOWN = 4000
DECIDED = (Approval.Status.APPROVED, Approval.Status.REJECTED, Approval.Status.EXPIRED)


def pretty_json(value: Any, limit: int = MAX_JSON_SHOWN) -> tuple[str, bool]:
    """`value` as indented JSON, cut at `limit` characters; returns (text, truncated)."""
    if value is None:
        return "", False
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    if len(text) > limit:
        return text[:limit], True
    return text, False


def _task_crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(("Tasks", reverse("dashboard:task_list")), *trail)


def _approval_crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(("Approvals", reverse("dashboard:approval_inbox")), *trail)


def _may_run(request: ClientRequest) -> bool:
    return request.client_membership.role in RUNNERS


# --- Run a workflow -----------------------------------------------------------------------------


@client_portal(roles=RUNNERS)
@require_http_methods(["GET", "POST"])
def workflow_run(request: ClientRequest) -> HttpResponse:
    """Pick a deployed agent's workflow, fill in its inputs, and queue the task; then watch its trace.

    Choosing a workflow (GET `?workflow=<deployment id>:<name>`) shows its inputs; htmx swaps just the
    inputs card when the choice changes.
    """
    client = request.tenant
    workflows = runnable_workflows(client=client)
    by_choice = {workflow.choice: workflow for workflow in workflows}
    data = request.POST if request.method == "POST" else request.GET
    choice = data.get("workflow") or ""
    chosen = by_choice.get(choice)
    pick_form = WorkflowPickForm(initial={"workflow": choice if chosen else ""}, workflows=workflows)
    run_form = None
    error = None
    if chosen is not None:
        run_form = RunWorkflowForm(request.POST if request.method == "POST" else None, workflow=chosen)
    elif choice:
        error = "That workflow is not one of a deployed agent's; choose one of the list."
    if request.method == "POST" and run_form is not None and run_form.is_valid() and chosen is not None:
        try:
            task = runtime_services.task_create(
                client=client,
                deployment=chosen.deployment,
                workflow=chosen.name,
                inputs=run_form.inputs(),
                source=Task.Source.DASHBOARD,
                actor=request.user,
            )
        except ApplicationError as exc:
            run_form.add_error(run_form.field_for(exc.field), exc.message)
        else:
            messages.success(request, f"{chosen.deployment.name} is running {chosen.name}.")
            return redirect_after_post(request, reverse("dashboard:task_detail", args=[task.pk]))
    context = {
        "workflows": workflows,
        "pick_form": pick_form,
        "chosen": chosen,
        "run_form": run_form,
        "error": error,
        "crumbs": _task_crumbs(("Run a workflow", None)),
    }
    return render_page(request, f"{TEMPLATES}/workflow_run.html", context, partial="inputs")


# --- Tasks --------------------------------------------------------------------------------------


def _filter_form(request: ClientRequest) -> TaskFilterForm:
    deployments = deployment_selectors.deployment_list(client=request.tenant)
    names: set[str] = set()
    for deployment in deployments:
        for workflow in (deployment.version.spec or {}).get("workflows") or []:
            if isinstance(workflow, dict) and workflow.get("name"):
                names.add(str(workflow["name"]))
    return TaskFilterForm(
        request.GET,
        deployments=[(d.pk, d.name) for d in deployments],
        workflows=sorted(names),
    )


@client_portal()
@require_safe
def task_list(request: ClientRequest) -> HttpResponse:
    """The client's tasks, newest first, filtered by status, agent and workflow; each opens its trace."""
    form = _filter_form(request)
    filters = form.cleaned_data if form.is_valid() else {}
    page_obj = task_page(client=request.tenant, filters=filters, page=request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page_obj,
        "filtered": any(v not in (None, "") for v in filters.values()),
        "may_run": _may_run(request),
        "crumbs": _crumbs(("Tasks", None)),
    }
    return render(request, f"{TEMPLATES}/task_list.html", context)


@dataclass
class TraceRow:
    """One step of the timeline, with its JSON already written out for the page."""

    step: Step
    approval: Approval | None
    params: str
    result: str
    result_truncated: bool
    edited: str


def _rows(entries) -> list[TraceRow]:
    rows = []
    for entry in entries:
        params, _ = pretty_json((entry.step.action or {}).get("params"))
        result, truncated = pretty_json(entry.step.result)
        edited = ""
        if entry.approval is not None and entry.approval.edited_action:
            edited, _ = pretty_json(entry.approval.edited_action.get("params"))
        rows.append(TraceRow(entry.step, entry.approval, params, result, truncated, edited))
    return rows


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


@client_portal()
@require_safe
def task_detail(request: ClientRequest, task_id: int) -> HttpResponse:
    """A task's trace: who asked what, its status and outcome, then every step with its decision,
    approval, redacted result and duration. While the task is queued or running, htmx polls the trace
    fragment every 2 s; a finished or waiting task's fragment no longer polls."""
    trace = runtime_selectors.task_trace(client=request.tenant, task_id=task_id)
    task = trace.task
    context = {
        "task": task,
        "rows": _rows(trace.entries),
        "inputs": pretty_json(task.inputs)[0] if task.inputs else "",
        "polling": task.status in (Task.Status.QUEUED, Task.Status.RUNNING),
        "waited_s": _seconds(task.created_at, task.started_at),
        "ran_s": _seconds(task.started_at, task.finished_at),
        "may_run": _may_run(request),
        "crumbs": _task_crumbs((str(task), None)),
    }
    return render_page(request, f"{TEMPLATES}/task_detail.html", context, partial="trace")


# --- Approvals ----------------------------------------------------------------------------------


@client_portal(roles=RUNNERS)
@require_safe
def approval_inbox(request: ClientRequest) -> HttpResponse:
    """Held actions the user may decide, soonest to expire first; the `decided` tab lists past ones."""
    client, user = request.tenant, request.user
    decided_tab = request.GET.get("tab") == "decided"
    pending = runtime_selectors.approval_inbox(client=client, user=user)
    if decided_tab:
        decided: list[Approval] = []
        for status in DECIDED:
            decided += runtime_selectors.approval_inbox(client=client, user=user, status=status)
        decided.sort(key=lambda a: (a.decided_at or a.created_at, a.pk), reverse=True)
        approvals = decided
    else:
        approvals = pending
    context = {
        "page_obj": paginate(request, approvals),
        "decided_tab": decided_tab,
        "pending_count": len(pending),
        "now": timezone.now(),
        "crumbs": _crumbs(("Approvals", None)),
    }
    return render(request, f"{TEMPLATES}/approval_inbox.html", context)


def _approval_page(
    request: ClientRequest,
    approval: Approval,
    *,
    approve_form: ApproveForm | None = None,
    reject_form: RejectForm | None = None,
    edit_form: EditApproveForm | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> HttpResponse:
    client, user = request.tenant, request.user
    step = approval.step
    task = step.task
    expired = approval.expires_at <= timezone.now()
    pending = approval.is_pending and not expired
    own_task = task.requested_by_id == user.pk
    can_decide = (
        pending and not own_task and runtime_services.may_decide(client=client, user=user, approval=approval)
    )
    params, _ = pretty_json((step.action or {}).get("params"))
    context = {
        "approval": approval,
        "step": step,
        "task": task,
        "decision": approval.held_decision,
        "params": params,
        "edited": pretty_json((approval.edited_action or {}).get("params"))[0]
        if approval.edited_action
        else "",
        "expired": expired,
        "pending": pending,
        "own_task": own_task,
        "can_decide": can_decide,
        "approve_form": approve_form or ApproveForm(auto_id="id_approve_%s"),
        "reject_form": reject_form or RejectForm(auto_id="id_reject_%s"),
        "edit_form": edit_form or EditApproveForm(initial={"params": params}, auto_id="id_edit_%s"),
        "edit_open": edit_form is not None,
        "refusal": refusal,
        "crumbs": _approval_crumbs((f"Approval {approval.pk}", None)),
    }
    return render(request, f"{TEMPLATES}/approval_detail.html", context, status=status)


@client_portal()
@require_safe
def approval_detail(request: ClientRequest, approval_id: int) -> HttpResponse:
    """One held action: what the agent wants to do, why it is held, the decision, and the choices.

    The e-mail links here with `?s=<signature>`. A signature that does not match this approval is
    refused with a message (the link was changed or is too old); a valid one grants nothing: sign-in,
    the role and what the role may see are checked first, as for any visit.
    """
    approval = runtime_selectors.approval_get(
        client=request.tenant, user=request.user, approval_id=approval_id
    )
    signature = request.GET.get("s")
    if signature is not None and not notifications.approval_link_valid(
        approval_id=approval.pk, signature=signature
    ):
        context = {"approval_id": approval.pk, "crumbs": _approval_crumbs(("Link not valid", None))}
        return render(request, f"{TEMPLATES}/approval_link_invalid.html", context, status=400)
    return _approval_page(request, approval)


def _decided(request: ClientRequest, approval: Approval, what: str) -> HttpResponse:
    messages.success(request, what)
    return redirect_after_post(request, reverse("dashboard:task_detail", args=[approval.step.task_id]))


@client_portal(roles=RUNNERS)
@require_POST
def approval_approve(request: ClientRequest, approval_id: int) -> HttpResponse:
    """Approve the held action as it is, with an optional note."""
    client, user = request.tenant, request.user
    approval = runtime_selectors.approval_get(client=client, user=user, approval_id=approval_id)
    form = ApproveForm(request.POST, auto_id="id_approve_%s")
    if not form.is_valid():
        return _approval_page(request, approval, approve_form=form)
    try:
        approval = runtime_services.approval_approve(
            client=client, approval_id=approval.pk, actor=user, note=form.cleaned_data["note"]
        )
    except ApplicationError as exc:
        return _approval_page(request, approval, approve_form=form, refusal=exc.message)
    return _decided(request, approval, f"Approved: {approval.step.key} will run now.")


@client_portal(roles=RUNNERS)
@require_POST
def approval_reject(request: ClientRequest, approval_id: int) -> HttpResponse:
    """Reject the held action with a reason; it never runs."""
    client, user = request.tenant, request.user
    approval = runtime_selectors.approval_get(client=client, user=user, approval_id=approval_id)
    form = RejectForm(request.POST, auto_id="id_reject_%s")
    if not form.is_valid():
        return _approval_page(request, approval, reject_form=form)
    try:
        approval = runtime_services.approval_reject(
            client=client, approval_id=approval.pk, actor=user, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as exc:
        if exc.field == "reason":
            form.add_error("reason", exc.message)
            return _approval_page(request, approval, reject_form=form)
        return _approval_page(request, approval, reject_form=form, refusal=exc.message)
    return _decided(request, approval, f"Rejected: {approval.step.key} will not run.")


@client_portal(roles=RUNNERS)
@require_POST
def approval_edit(request: ClientRequest, approval_id: int) -> HttpResponse:
    """Approve with edited parameters: the edit is decided again, and an edit the rules deny (or that
    needs a higher approver) is refused with the reason; the held action stays as it was."""
    client, user = request.tenant, request.user
    approval = runtime_selectors.approval_get(client=client, user=user, approval_id=approval_id)
    form = EditApproveForm(request.POST, auto_id="id_edit_%s")
    if not form.is_valid():
        return _approval_page(request, approval, edit_form=form)
    try:
        approval = runtime_services.approval_approve(
            client=client,
            approval_id=approval.pk,
            actor=user,
            params=form.cleaned_data["params"],
            note=form.cleaned_data["note"],
        )
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _approval_page(request, approval, edit_form=form)
    edited = " with your edits" if approval.edited_action else " (the parameters were unchanged)"
    return _decided(request, approval, f"Approved{edited}: {approval.step.key} will run now.")
