"""Client dashboard, schedules: a deployed agent's workflow that runs by itself every N minutes.

Every member reads the schedules; client admins create, pause, resume and delete them. The runtime's
sweep (Celery beat, every minute) starts a task for each enabled schedule that is due, with the
principal kind `schedule`, so the client's rules can treat scheduled work differently. The services
write the audit trail and refuse what cannot be (their messages are shown as they are).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import client_portal
from apps.accounts.models import ClientRole
from apps.core.exceptions import ApplicationError
from apps.core.htmx import redirect_after_post, render_page
from apps.runtime import selectors as runtime_selectors
from apps.runtime import services as runtime_services
from apps.runtime.models import TaskSchedule
from apps.runtime.settings_services import runnable_workflows

from .runtime_forms import WorkflowPickForm
from .schedule_forms import ScheduleForm
from .views import ClientRequest, _crumbs

TEMPLATES = "portals/dashboard/runtime"
MANAGERS = [ClientRole.CLIENT_ADMIN]
MAX_INPUT_SHOWN = 80


def _schedule_crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(
        ("Tasks", reverse("dashboard:task_list")), ("Schedules", reverse("dashboard:schedule_list")), *trail
    )


def _schedule(request: ClientRequest, schedule_id: int) -> TaskSchedule:
    schedule = runtime_selectors.schedule_get(client=request.tenant, schedule_id=schedule_id)
    if schedule is None:
        raise Http404("No such schedule.")
    return schedule


def _back_to_list(request: ClientRequest) -> HttpResponse:
    return redirect_after_post(request, reverse("dashboard:schedule_list"))


@dataclass
class ScheduleRow:
    """A schedule with its inputs as (name, value) pairs, cut at MAX_INPUT_SHOWN characters each."""

    schedule: TaskSchedule
    inputs: list[tuple[str, str]]


def _row(schedule: TaskSchedule) -> ScheduleRow:
    inputs = []
    for name, value in (schedule.inputs or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        inputs.append((str(name), text if len(text) <= MAX_INPUT_SHOWN else text[:MAX_INPUT_SHOWN] + "…"))
    return ScheduleRow(schedule, inputs)


@client_portal()
@require_safe
def schedule_list(request: ClientRequest) -> HttpResponse:
    """The client's schedules: what runs, how often, when next, and the last task each started."""
    schedules = runtime_selectors.schedule_list(client=request.tenant)
    rows = [_row(schedule) for schedule in schedules]
    context = {
        "rows": rows,
        "may_manage": request.client_membership.role in MANAGERS,
        "crumbs": _crumbs(("Tasks", reverse("dashboard:task_list")), ("Schedules", None)),
    }
    return render(request, f"{TEMPLATES}/schedule_list.html", context)


@client_portal(roles=MANAGERS)
@require_http_methods(["GET", "POST"])
def schedule_create(request: ClientRequest) -> HttpResponse:
    """Pick a deployed agent's workflow (GET `?workflow=<deployment id>:<name>`, htmx swaps the form
    card), then give the schedule a name, the workflow's inputs and how often it runs."""
    client = request.tenant
    workflows = runnable_workflows(client=client)
    by_choice = {workflow.choice: workflow for workflow in workflows}
    data = request.POST if request.method == "POST" else request.GET
    choice = data.get("workflow") or ""
    chosen = by_choice.get(choice)
    pick_form = WorkflowPickForm(initial={"workflow": choice if chosen else ""}, workflows=workflows)
    form = None
    error = None
    if chosen is not None:
        # Its own ids: the picker's select is `id_workflow` already.
        form = ScheduleForm(
            request.POST if request.method == "POST" else None, workflow=chosen, auto_id="id_schedule_%s"
        )
    elif choice:
        error = "That workflow is not one of a deployed agent's; choose one of the list."
    if request.method == "POST" and form is not None and form.is_valid() and chosen is not None:
        try:
            schedule = runtime_services.schedule_create(
                client=client,
                deployment=chosen.deployment,
                name=form.cleaned_data["name"],
                workflow=chosen.name,
                inputs=form.inputs(),
                every_minutes=form.cleaned_data["every_minutes"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(form.field_for(exc.field), exc.message)
        else:
            messages.success(
                request,
                f"{schedule.name}: {chosen.deployment.name} runs {chosen.name} every "
                f"{schedule.every_minutes} minutes, the first time within a minute.",
            )
            return _back_to_list(request)
    context = {
        "workflows": workflows,
        "pick_form": pick_form,
        "chosen": chosen,
        "form": form,
        "error": error,
        "crumbs": _schedule_crumbs(("New schedule", None)),
    }
    return render_page(request, f"{TEMPLATES}/schedule_form.html", context, partial="schedule")


def _set_enabled(request: ClientRequest, schedule_id: int, *, enabled: bool) -> HttpResponse:
    schedule = _schedule(request, schedule_id)
    try:
        runtime_services.schedule_set_enabled(
            client=request.tenant, schedule_id=schedule.pk, enabled=enabled, actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        done = "resumed: it runs at its next time" if enabled else "paused: it starts no tasks until resumed"
        messages.success(request, f"{schedule.name} is {done}.")
    return _back_to_list(request)


@client_portal(roles=MANAGERS)
@require_POST
def schedule_pause(request: ClientRequest, schedule_id: int) -> HttpResponse:
    """Stop a schedule from starting tasks (tasks already started go on)."""
    return _set_enabled(request, schedule_id, enabled=False)


@client_portal(roles=MANAGERS)
@require_POST
def schedule_resume(request: ClientRequest, schedule_id: int) -> HttpResponse:
    """Start a paused schedule again; runs it missed are not made up."""
    return _set_enabled(request, schedule_id, enabled=True)


@client_portal(roles=MANAGERS)
@require_http_methods(["GET", "POST"])
def schedule_delete(request: ClientRequest, schedule_id: int) -> HttpResponse:
    """Delete a schedule after a confirmation (the list's button asks in the browser; this page asks
    when it is opened directly). The tasks it started stay, with their traces."""
    schedule = _schedule(request, schedule_id)
    if request.method == "POST":
        try:
            runtime_services.schedule_delete(
                client=request.tenant, schedule_id=schedule.pk, actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{schedule.name} was deleted; the tasks it started stay.")
        return _back_to_list(request)
    context = {"schedule": schedule, "crumbs": _schedule_crumbs((f"Delete {schedule.name}", None))}
    return render(request, f"{TEMPLATES}/schedule_delete.html", context)
