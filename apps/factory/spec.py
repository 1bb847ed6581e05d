"""The agent spec: what a version of an agent is allowed to do and how it works.

Validated with pydantic; errors carry a path (e.g. `workflows.1.steps.0.tool`)
that the spec editor maps back to a line of the YAML a person typed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

# The tool kinds the runtime can execute (executors arrive with the runtime).
TOOLS = ("db.query", "db.get", "db.insert", "db.update", "notify.email", "notify.webhook", "http.request")
DB_TOOLS = ("db.query", "db.get", "db.insert", "db.update")
FIELD_TYPES = ("string", "text", "integer", "decimal", "date", "datetime", "boolean", "reference")
NAME_RE = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolSpec(_Strict):
    """A tool the agent may call, with its settings (e.g. which entities a db.update may touch)."""

    name: Literal[TOOLS]  # type: ignore[valid-type]
    entities: list[str] = Field(default_factory=list, description="Canonical entities this tool may touch.")
    settings: dict[str, Any] = Field(default_factory=dict)


class FieldRequirement(_Strict):
    """A canonical field the agent needs, its type, and how sensitive its data is.

    `classification` feeds governance: an action's `data.classification` is the highest level among
    the fields it touches (public < internal < confidential < restricted), so rules can hold or deny
    actions on sensitive data. Contact details and amounts are typically confidential; national or
    tax identifiers and bank details restricted. Unmarked fields are internal.
    """

    name: str = Field(pattern=NAME_RE)
    type: Literal[FIELD_TYPES] = "string"  # type: ignore[valid-type]
    required: bool = False
    description: str = ""
    # Lowest first; apps.governance.context compares them in this order.
    classification: Literal["public", "internal", "confidential", "restricted"] = "internal"


class EntityRequirement(_Strict):
    """A canonical entity the agent reads or writes, and the fields it needs."""

    name: str = Field(pattern=NAME_RE)
    description: str = ""
    fields: list[FieldRequirement] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[FieldRequirement]) -> list[FieldRequirement]:
        _unique([f.name for f in fields], "field")
        return fields


class WorkflowStep(_Strict):
    """One tool call; parameters may use templates like `{{ inputs.ticket_id }}` or `{{ steps.load.id }}`."""

    id: str = Field(pattern=NAME_RE)
    tool: str
    entity: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    when: str | None = Field(default=None, description="Condition on inputs and earlier results.")
    on_failure: Literal["halt", "continue", "compensate"] = "halt"


class Workflow(_Strict):
    name: str = Field(pattern=NAME_RE)
    description: str = ""
    inputs: list[str] = Field(default_factory=list)
    steps: list[WorkflowStep] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[WorkflowStep]) -> list[WorkflowStep]:
        _unique([s.id for s in steps], "step id")
        return steps


class PlannerSettings(_Strict):
    kind: Literal["workflow", "llm"] = "workflow"
    max_steps: int = Field(default=20, ge=1, le=500)
    model: str | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


class AgentSpec(_Strict):
    """A complete, validated agent spec."""

    instructions: str = Field(min_length=1, max_length=20_000)
    tools: list[ToolSpec] = Field(min_length=1)
    data: list[EntityRequirement] = Field(default_factory=list)
    workflows: list[Workflow] = Field(default_factory=list)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    policy_pack: str | None = Field(
        default=None, description="Key of the vendor policy pack shipped with it."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        tool_names = [t.name for t in self.tools]
        _unique(tool_names, "tool")
        entity_names = [e.name for e in self.data]
        _unique(entity_names, "entity")
        _unique([w.name for w in self.workflows], "workflow")
        for tool in self.tools:
            for entity in tool.entities:
                if entity not in entity_names:
                    raise ValueError(f"tool {tool.name} names entity '{entity}', which is not in data")
        for workflow in self.workflows:
            for step in workflow.steps:
                if step.tool not in tool_names:
                    raise ValueError(
                        f"workflow {workflow.name}, step {step.id}: "
                        f"tool '{step.tool}' is not in the tool allowlist"
                    )
                if step.entity and step.entity not in entity_names:
                    raise ValueError(
                        f"workflow {workflow.name}, step {step.id}: unknown entity '{step.entity}'"
                    )
        return self


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} '{name}'")
        seen.add(name)


class SpecError(Exception):
    """An invalid spec; `errors` is a list of {path, message, line}."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['path'] or '(spec)'}: {e['message']}" for e in errors))
        self.errors = errors


def validate_spec(data: Any) -> dict:
    """Validate a spec (a dict) and return its normalised form; raise SpecError with field-level errors."""
    try:
        spec = AgentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [
                {"path": ".".join(str(p) for p in err["loc"]), "message": _message(err), "line": None}
                for err in exc.errors()
            ]
        ) from None
    return spec.model_dump(mode="json", exclude_defaults=False)


def _message(err: ErrorDetails) -> str:
    message = err["msg"]
    return re.sub(r"^Value error, ", "", message)
