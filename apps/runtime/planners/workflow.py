"""The workflow planner (default, offline, deterministic): the pinned version's workflow, step by step.

Each workflow step is a tool call with templated parameters (`{{ inputs.ticket_id }}`,
`{{ steps.load.requester_id }}`, `{{ now }}`, `{{ settings.oncall_webhook_url }}` — the client's
custom attributes, set by the partner), an optional CEL `when` condition on the inputs and
earlier results, and a failure policy (halt, continue, compensate). Earlier results are what the
planner saw: the tool's output after the decision's redactions.
"""

from __future__ import annotations

from django.utils import timezone

from apps.core.db import tenant_connection
from apps.tenancy.models import Client

from ..models import Step, Task
from ..templating import TemplateError, condition_holds, render
from . import Broken, Finish, Proposal, Propose, Skip, action_for


def workflow_of(task: Task) -> dict | None:
    for workflow in task.deployment.version.spec.get("workflows", []):
        if workflow.get("name") == task.workflow:
            return workflow
    return None


class WorkflowPlanner:
    def next(self, task: Task, steps: list[Step]) -> Proposal:
        workflow = workflow_of(task)
        if workflow is None:
            return Finish(f"The workflow {task.workflow} is not in the deployed version.", completed=False)
        done = {step.key for step in steps if step.compensates_id is None}
        names = {
            "inputs": task.inputs,
            "steps": {
                step.key: step.result
                for step in steps
                if step.status == Step.Status.EXECUTED and step.compensates_id is None
            },
            "now": timezone.now().isoformat(),
            "settings": _client_settings(),
        }
        for spec_step in workflow["steps"]:
            key = spec_step["id"]
            if key in done:
                continue
            on_failure = spec_step.get("on_failure") or "halt"
            tool, entity = spec_step["tool"], spec_step.get("entity")
            try:
                if spec_step.get("when") and not condition_holds(spec_step["when"], names):
                    return Skip(key, f"Condition not met: {spec_step['when']}")
                params = render(spec_step.get("params") or {}, names)
            except TemplateError as exc:
                return Broken(key, action_for(tool, entity, {}), str(exc), on_failure)
            return Propose(key, action_for(tool, entity, params), on_failure)
        return Finish(f"Workflow {task.workflow} finished.")


def _client_settings() -> dict:
    client = Client.objects.filter(schema_name=tenant_connection().schema_name).first()
    return dict(client.attributes) if client else {}
