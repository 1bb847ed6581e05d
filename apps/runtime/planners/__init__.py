"""Planners propose a task's next action; they never run anything (every proposal goes through the gateway).

    proposal = planner_for(task).next(task, steps)

A proposal is a `Propose` (a new step: key, action, on_failure), a `Skip` (a workflow step whose
condition is false), a `Broken` (a step that cannot be built, e.g. a template naming a missing
value) or a `Finish` (nothing more to do, with an outcome and whether the task completed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The governance `operation` of each tool's action.
OPERATIONS = {
    "db.query": "read",
    "db.get": "read",
    "db.insert": "create",
    "db.update": "update",
    "notify.email": "send",
    "notify.webhook": "send",
    "http.request": "read",
}


@dataclass(frozen=True)
class Propose:
    key: str
    action: dict
    on_failure: str = "halt"


@dataclass(frozen=True)
class Skip:
    key: str
    reason: str


@dataclass(frozen=True)
class Broken:
    key: str
    action: dict
    error: str
    on_failure: str = "halt"


@dataclass(frozen=True)
class Finish:
    outcome: str
    completed: bool = True
    usage: dict = field(default_factory=dict)


Proposal = Propose | Skip | Broken | Finish


def action_for(tool: str, entity: str | None, params: dict) -> dict:
    """A proposed action in governance's canonical shape; a record id in the params becomes its target."""
    record_id = params.get("id") if isinstance(params, dict) else None
    targets = [record_id] if isinstance(record_id, str | int) and not isinstance(record_id, bool) else []
    return {
        "tool": tool,
        "operation": OPERATIONS.get(tool, ""),
        "entity": entity or None,
        "params": params,
        "target_ids": targets,
    }
