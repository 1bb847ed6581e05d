"""Client dashboard forms of the runtime: run a workflow, filter tasks, decide a held action."""

from __future__ import annotations

import json

from django import forms

from apps.core.forms import StyledForm
from apps.runtime.models import Task
from apps.runtime.settings_services import RunnableWorkflow

# An approver's edited parameters: one JSON object of at most this many bytes.
MAX_PARAMS_BYTES = 20_000
INPUT_PREFIX = "in_"


def input_field_name(name: str) -> str:
    """The form field of a workflow input (prefixed: an input may be called `workflow` too)."""
    return f"{INPUT_PREFIX}{name}"


class WorkflowPickForm(StyledForm):
    """Which agent and workflow to run (GET): each choice is `<deployment id>:<workflow name>`."""

    workflow = forms.ChoiceField(
        label="Agent and workflow", error_messages={"invalid_choice": "Choose one of the listed workflows."}
    )

    def __init__(self, *args, workflows: list[RunnableWorkflow], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [("", "Choose a workflow…")] + [  # type: ignore[attr-defined]
            (w.choice, f"{w.deployment.name} — {w.name}") for w in workflows
        ]


class RunWorkflowForm(StyledForm):
    """The inputs of one workflow, one required text field each (the workflow's `inputs` list)."""

    workflow = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, workflow: RunnableWorkflow, **kwargs):
        super().__init__(*args, **kwargs)
        self.runnable = workflow
        self.fields["workflow"].initial = workflow.choice
        for name in workflow.inputs:
            # Fields added after StyledForm styled the declared ones: styled here.
            self.fields[input_field_name(name)] = forms.CharField(
                label=name.replace("_", " ").capitalize(),
                max_length=4000,
                help_text=f"The workflow's input “{name}”.",
                widget=forms.TextInput(attrs={"class": "form-control"}),
            )

    def inputs(self) -> dict:
        return {name: self.cleaned_data[input_field_name(name)] for name in self.runnable.inputs}

    def field_for(self, service_field: str | None) -> str | None:
        """The form field a service error about `service_field` (an input name) belongs on."""
        if service_field and service_field in self.runnable.inputs:
            return input_field_name(service_field)
        return None


class TaskFilterForm(StyledForm):
    """Filters of the tasks list (GET)."""

    status = forms.ChoiceField(
        required=False, label="Status", choices=[("", "Any status"), *Task.Status.choices]
    )
    deployment = forms.TypedChoiceField(required=False, label="Agent", coerce=int, empty_value=None)
    workflow = forms.ChoiceField(required=False, label="Workflow")

    def __init__(self, *args, deployments: list[tuple[int, str]], workflows: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deployment"].choices = [("", "Any agent"), *deployments]  # type: ignore[attr-defined]
        self.fields["workflow"].choices = [("", "Any workflow"), *((w, w) for w in workflows)]  # type: ignore[attr-defined]


class ApproveForm(StyledForm):
    note = forms.CharField(
        required=False,
        max_length=2000,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional; kept with the approval in the audit trail.",
    )


class RejectForm(StyledForm):
    reason = forms.CharField(
        max_length=2000,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required; the task goes on according to the step's failure policy.",
        error_messages={"required": "Say why you reject it."},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why you reject it.")
        return reason


class EditApproveForm(StyledForm):
    """Approve with edited parameters: one JSON object, evaluated again by governance before it counts."""

    params = forms.CharField(
        label="Parameters (JSON)",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "font-monospace"}),
        help_text="A JSON object. The edited action is decided again by the rules: an edit they deny "
        "is refused and nothing changes.",
    )
    note = forms.CharField(
        required=False, max_length=2000, label="Note", widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_params(self) -> dict:
        text = self.cleaned_data["params"]
        if len(text.encode()) > MAX_PARAMS_BYTES:
            raise forms.ValidationError(f"The parameters are larger than {MAX_PARAMS_BYTES // 1000} KB.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give one JSON object of parameter names to values.")
        return value
