"""Client dashboard forms of schedules: a deployed agent's workflow run every N minutes with fixed inputs.

The agent and workflow are picked like on the "Run a workflow" page (`WorkflowPickForm`); the schedule
form then holds the workflow's inputs (one field each, as `RunWorkflowForm` builds them), a name and
the interval. The runtime's service checks everything again and its messages land on these fields.
"""

from __future__ import annotations

from django import forms

from apps.runtime.models import TaskSchedule
from apps.runtime.settings_services import RunnableWorkflow

from .runtime_forms import RunWorkflowForm

# Where a service error about one of these belongs on the form (others go above the form).
SERVICE_FIELDS = ("name", "every_minutes")


class ScheduleForm(RunWorkflowForm):
    """A new schedule of one workflow: its name, its inputs, and how often it runs."""

    name = forms.CharField(
        label="Name",
        max_length=120,
        help_text="Shown in the schedules list; rules see it as the principal's id.",
    )
    every_minutes = forms.IntegerField(
        label="Every (minutes)",
        widget=forms.NumberInput(attrs={"min": TaskSchedule.MIN_INTERVAL_MINUTES, "step": 1}),
        help_text=(
            f"At least {TaskSchedule.MIN_INTERVAL_MINUTES} minutes: 60 is hourly, 1440 daily. "
            "The first run starts within a minute of saving."
        ),
    )

    def __init__(self, *args, workflow: RunnableWorkflow, **kwargs):
        super().__init__(*args, workflow=workflow, **kwargs)
        # Name first, then the workflow's inputs, then the interval.
        inputs = [name for name in self.fields if name not in ("workflow", "name", "every_minutes")]
        self.order_fields(["workflow", "name", *inputs, "every_minutes"])

    def field_for(self, service_field: str | None) -> str | None:
        if service_field in SERVICE_FIELDS:
            return service_field
        return super().field_for(service_field)
