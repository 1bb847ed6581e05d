"""Tool executors. Only the gateway imports them (an import-linter contract); each refuses to run
without a permit that governance minted for exactly this action, and uses it up before doing anything.

    result = run(permit=permit, action=action, ctx=ToolContext(...))

An executor returns JSON-ready data (what the planner sees once the decision's redactions are
applied) or raises ToolError: `transient` for failures worth retrying (connection lost, timeout,
circuit open), `maybe_applied` when the side effect may have happened before the failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from apps.deployments.models import Deployment
from apps.governance.permits import Permit, PermitError, permit_redeem
from apps.tenancy.models import Client


class ToolError(Exception):
    def __init__(self, message: str, *, transient: bool = False, maybe_applied: bool = False):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.maybe_applied = maybe_applied


class PermitRefused(ToolError):
    """The executor was handed no permit, or one that does not hold for this action."""


@dataclass
class ToolContext:
    client: Client
    deployment: Deployment
    # `<trace id>:<position>`: sent as Idempotency-Key with outbound calls.
    idempotency_key: str
    # The tool's entry in the deployed spec: {"name", "entities", "settings"}.
    spec: dict = field(default_factory=dict)


Executor = Callable[[Permit | str | None, dict, ToolContext], Any]


def requires_permit(body: Callable[[dict, ToolContext], Any]) -> Executor:
    """Make `body` an executor: it runs only after a permit for this exact action is redeemed."""

    @wraps(body)
    def executor(permit: Permit | str | None, action: dict, ctx: ToolContext) -> Any:
        if not permit:
            raise PermitRefused("No permit: the action was not allowed by governance.")
        try:
            permit_redeem(permit=permit, action=action)
        except PermitError as exc:
            raise PermitRefused(str(exc)) from None
        return body(action, ctx)

    executor.requires_permit = True  # type: ignore[attr-defined]
    return executor


# Tools whose second run changes nothing more than the first (reads; an update setting the same values).
# A step of any other tool interrupted mid-run is never run again by itself (it is left in doubt).
REPEATABLE = frozenset({"db.query", "db.get", "db.update"})


def _executors() -> dict[str, Executor]:
    from . import db, http, notify

    return {
        "db.query": db.query,
        "db.get": db.get,
        "db.insert": db.insert,
        "db.update": db.update,
        "notify.email": notify.email,
        "notify.webhook": notify.webhook,
        "http.request": http.request,
    }


def executor_for(tool: str) -> Executor:
    executor = _executors().get(tool)
    if executor is None:
        raise ToolError(f"There is no tool called {tool}.")
    return executor


def run(*, permit: Permit | str | None, action: dict, ctx: ToolContext) -> Any:
    """Run `action` with its tool; the executor redeems the permit first."""
    return executor_for(action.get("tool", ""))(permit, action, ctx)
