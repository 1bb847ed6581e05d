"""What the portals and the API need beside the runtime core: LLM endpoint settings, task pages, workflows.

- `llm_endpoint_get/save/delete`: the OpenAI-compatible endpoint a deployment's LLM planner calls, set by
  the client's partner team. The API key is write-only: saving with no key keeps the stored one, and
  nothing here ever returns it to a caller except the model instance the planner reads.
- `task_page`, `task_count`, `task_window`: the client's tasks a page at a time (the dashboard list and
  the API list), read inside the client's schema.
- `task_by_idempotency_key`: the task an API caller already created with a key.
- `runnable_workflows`: the workflows of the client's deployed agents, with their inputs (the "Run a
  workflow" form is built from them).

Every function taking a `client` switches into its schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import QuerySet
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.services import audit_append
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.tenancy.models import Client

from .models import LlmEndpoint, Task

TASK_FILTERS = ("status", "deployment", "workflow", "trace_id")
# Bounds of the endpoint settings: what a sane deployment needs, and never more than the runtime allows.
MAX_STEPS_LIMIT = 500
MAX_TOKENS_LIMIT = 10_000_000
MAX_TIMEOUT_SECONDS = 600
MAX_TEMPERATURE = 2.0
# Fields whose change is recorded (the key itself never is, only whether it was set or changed).
ENDPOINT_FIELDS = (
    "base_url",
    "model",
    "allow_private_network",
    "temperature",
    "max_steps",
    "max_tokens",
    "max_cost",
    "price_per_1k_tokens",
    "timeout_seconds",
)


# --- Workflows a person can run -------------------------------------------------------------------


@dataclass(frozen=True)
class RunnableWorkflow:
    """One workflow of a deployed agent: `<deployment id>:<workflow name>` is its `choice` value."""

    deployment: Deployment
    name: str
    description: str
    inputs: tuple[str, ...]

    @property
    def choice(self) -> str:
        return f"{self.deployment.pk}:{self.name}"


def runnable_workflows(*, client: Client) -> list[RunnableWorkflow]:
    """The workflows of the client's deployed agents (pinned versions), by agent name then workflow."""
    with tenant_context(client):
        deployments = list(
            Deployment.objects.select_related("version")
            .filter(status=Deployment.Status.DEPLOYED)
            .order_by("name", "pk")
        )
    found = []
    for deployment in deployments:
        for workflow in (deployment.version.spec or {}).get("workflows") or []:
            if not isinstance(workflow, dict) or not workflow.get("name"):
                continue
            found.append(
                RunnableWorkflow(
                    deployment=deployment,
                    name=str(workflow["name"]),
                    description=str(workflow.get("description") or ""),
                    inputs=tuple(str(name) for name in workflow.get("inputs") or []),
                )
            )
    return found


# --- Task pages -----------------------------------------------------------------------------------


def _task_queryset(filters: dict | None) -> QuerySet[Task]:
    filters = {k: v for k, v in (filters or {}).items() if k in TASK_FILTERS and v not in (None, "")}
    tasks = Task.objects.select_related("deployment", "requested_by").order_by("-created_at", "-pk")
    if "status" in filters:
        tasks = tasks.filter(status=filters["status"])
    if "deployment" in filters:
        tasks = tasks.filter(deployment_id=filters["deployment"])
    if "workflow" in filters:
        tasks = tasks.filter(workflow=filters["workflow"])
    if "trace_id" in filters:
        tasks = tasks.filter(trace_id=filters["trace_id"])
    return tasks


def task_page(
    *, client: Client, filters: dict | None = None, page: str | int | None = None, per_page: int = 25
) -> Page:
    """One page of the client's tasks, newest first, filtered by status, deployment id, workflow, trace id.

    Rows and total are read inside the client's schema; junk or out-of-range pages fall back safely.
    """
    with tenant_context(client):
        result = Paginator(_task_queryset(filters), per_page).get_page(page)
        result.object_list = list(result.object_list)
    return result


def task_count(*, client: Client, filters: dict | None = None) -> int:
    """How many tasks match the filters (for the API's paginated list)."""
    with tenant_context(client):
        return _task_queryset(filters).count()


def task_window(*, client: Client, filters: dict | None = None, start: int, stop: int) -> list[Task]:
    """Tasks `start` to `stop` (exclusive) of the filtered list, newest first."""
    with tenant_context(client):
        return list(_task_queryset(filters)[start:stop])


def task_by_idempotency_key(*, client: Client, key: str) -> Task | None:
    """The task created with this idempotency key, if any."""
    with tenant_context(client):
        return Task.objects.select_related("deployment", "requested_by").filter(idempotency_key=key).first()


# --- LLM endpoint settings ------------------------------------------------------------------------


def llm_endpoint_get(*, client: Client, deployment: Deployment) -> LlmEndpoint | None:
    """The deployment's LLM endpoint settings, or None when it has none (its LLM planner is off)."""
    with tenant_context(client):
        return LlmEndpoint.objects.filter(deployment_id=deployment.pk).first()


def _decimal(value, field: str, label: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ApplicationError(f"{label} must be a number.", field=field) from None
    if not number.is_finite() or number < 0:
        raise ApplicationError(f"{label} cannot be negative.", field=field)
    return number


def _bounded_int(value, field: str, label: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError(f"{label} must be a whole number from {low:,} to {high:,}.", field=field)
    return value


def _snapshot(endpoint: LlmEndpoint | None) -> dict:
    if endpoint is None:
        return {}
    return {name: str(getattr(endpoint, name)) for name in ENDPOINT_FIELDS}


def llm_endpoint_save(
    *,
    client: Client,
    deployment: Deployment,
    actor: User,
    base_url: str,
    model: str,
    api_key: str | None = None,
    clear_api_key: bool = False,
    allow_private_network: bool = False,
    temperature: float = 0.0,
    max_steps: int = 20,
    max_tokens: int = 50_000,
    max_cost: Decimal | float | str = Decimal("1"),
    price_per_1k_tokens: Decimal | float | str = Decimal("0"),
    timeout_seconds: int = 60,
) -> LlmEndpoint:
    """Create or change the deployment's LLM endpoint.

    `api_key` None or blank keeps the stored key (it is write-only: forms never show it back);
    `clear_api_key` removes it (endpoints that take none, e.g. a local Ollama). The change is recorded
    in the client's audit trail without the key (only whether one is set and whether it changed).
    """
    base_url = (base_url or "").strip()
    model = (model or "").strip()
    if not model:
        raise ApplicationError("Name the model the endpoint serves.", field="model")
    if base_url and not base_url.lower().startswith(("http://", "https://")):
        raise ApplicationError("The base URL starts with http:// or https://.", field="base_url")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise ApplicationError("The temperature must be a number.", field="temperature") from None
    if not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ApplicationError(f"The temperature is from 0 to {MAX_TEMPERATURE:g}.", field="temperature")
    max_steps = _bounded_int(max_steps, "max_steps", "Max steps", 1, MAX_STEPS_LIMIT)
    max_tokens = _bounded_int(max_tokens, "max_tokens", "Max tokens", 1, MAX_TOKENS_LIMIT)
    timeout_seconds = _bounded_int(timeout_seconds, "timeout_seconds", "The timeout", 1, MAX_TIMEOUT_SECONDS)
    cost = _decimal(max_cost, "max_cost", "The cost budget")
    price = _decimal(price_per_1k_tokens, "price_per_1k_tokens", "The price")
    new_key = (api_key or "").strip()
    if len(new_key) > 4000:
        raise ApplicationError("The API key is longer than 4,000 characters.", field="api_key")
    with tenant_context(client), transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.status == Deployment.Status.RETIRED:
            raise ApplicationError(f"{deployment.name} is retired; its settings cannot change.")
        endpoint = LlmEndpoint.objects.filter(deployment=deployment).first()
        before = _snapshot(endpoint)
        created = endpoint is None
        if endpoint is None:
            endpoint = LlmEndpoint(deployment=deployment)
        had_key = bool(endpoint.api_key)
        key_changed = False
        if clear_api_key:
            key_changed = had_key
            endpoint.api_key = ""
        elif new_key:
            key_changed = new_key != (endpoint.api_key or "")
            endpoint.api_key = new_key
        endpoint.base_url = base_url
        endpoint.model = model
        endpoint.allow_private_network = bool(allow_private_network)
        endpoint.temperature = temperature
        endpoint.max_steps = max_steps
        endpoint.max_tokens = max_tokens
        endpoint.max_cost = cost
        endpoint.price_per_1k_tokens = price
        endpoint.timeout_seconds = timeout_seconds
        endpoint.updated_by = actor
        try:
            endpoint.full_clean(exclude=["deployment", "updated_by"])
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise ApplicationError(" ".join(messages), field=field) from None
        endpoint.save()
        after = _snapshot(endpoint)
        audit_append(
            kind="llm_endpoint.created" if created else "llm_endpoint.changed",
            actor=actor.email,
            actor_id=actor.pk,
            deployment_id=deployment.pk,
            subject=f"{deployment.name}: LLM endpoint {model} at {base_url}"[:300],
            data={
                "changed": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v},
                "api_key_set": bool(endpoint.api_key),
                "api_key_changed": key_changed,
            },
        )
    return endpoint


def llm_endpoint_delete(*, client: Client, deployment: Deployment, actor: User) -> None:
    """Remove the deployment's LLM endpoint (and its key): the agent then runs workflows only."""
    with tenant_context(client), transaction.atomic():
        endpoint = LlmEndpoint.objects.select_for_update().filter(deployment_id=deployment.pk).first()
        if endpoint is None:
            raise ApplicationError(f"{deployment.name} has no LLM endpoint.")
        summary = _snapshot(endpoint)
        endpoint.delete()
        audit_append(
            kind="llm_endpoint.deleted",
            actor=actor.email,
            actor_id=actor.pk,
            deployment_id=deployment.pk,
            subject=f"{deployment.name}: LLM endpoint removed"[:300],
            data={"removed": summary},
        )
