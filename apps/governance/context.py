"""The context a governance rule reads: what the engine sees beside the action itself.

    context = decision_context(client=client, deployment=deployment, action=action,
                               principal={"kind": "user", "id": "ana@acme.com", "role": "operator"},
                               trace={"steps": 3, "cost": 0.02, "depth": 1})

Variables (every condition can read these; CONTEXT_DOC below is what the editor and docs show):

- `action`   tool, operation, entity, params, target_ids (the action itself, not built here)
- `agent`    variant, version, deployment, deployment_name
- `principal` kind (user | channel | schedule | api), id, role, channel
- `tenant`   slug, name, jurisdiction, timezone, domains, allowed_hosts, attributes (set by the partner)
- `input`    injection (0 to 1 prompt-injection score over all free text in params), flags
- `data`     classification (highest of the touched canonical fields: public < internal < confidential
             < restricted), fields ("entity.field" touched), pii (kinds found in params)
- `trace`    steps, cost, tokens, depth (so far, in this task)
- `time`     now (ISO 8601), weekday (1 = Monday … 7), hour, business_hours, in the client's time zone

Pure given its inputs and `now`: the guards are deterministic, and the clock is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.tenancy.models import Client

from .guards import scan_params, scan_pii
from .guards.injection import text_values

CLASSIFICATION_LEVELS = ("public", "internal", "confidential", "restricted")
# Monday to Friday, 08:00 to 18:00 local time.
BUSINESS_DAYS = frozenset({1, 2, 3, 4, 5})
BUSINESS_HOURS = range(8, 18)
# Reads return the whole record: every field of the entity counts as touched.
READ_OPERATIONS = frozenset({"read"})
PRINCIPAL_KINDS = ("user", "channel", "schedule", "api")

CONTEXT_DOC: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "action",
        "The proposed action.",
        [
            ("tool", "the tool, e.g. db.update"),
            ("operation", "read, create, update, delete or send"),
            ("entity", "the canonical entity, e.g. invoice"),
            ("params", "the tool's parameters (a map)"),
            ("target_ids", "ids of the records it touches (a list)"),
        ],
    ),
    (
        "agent",
        "The deployed agent proposing it.",
        [
            ("variant", "the variant key, e.g. finance"),
            ("version", "the deployed version, e.g. 1.2.0"),
            ("deployment", "the deployment id"),
            ("deployment_name", "the deployment's name"),
        ],
    ),
    (
        "principal",
        "Who or what asked for the task.",
        [
            ("kind", "user, channel, schedule or api"),
            ("id", "the user's e-mail, the channel or the schedule"),
            ("role", "the user's role in the client (client_admin, operator, viewer) or ''"),
            ("channel", "the channel it came through, e.g. slack, or ''"),
        ],
    ),
    (
        "tenant",
        "The client, as its partner set it up.",
        [
            ("slug", "the client's short name"),
            ("name", "the client's name"),
            ("jurisdiction", "e.g. EU, US-CA (or '')"),
            ("timezone", "e.g. Europe/Paris"),
            ("domains", "the client's own domains (a list)"),
            ("allowed_hosts", "hosts outside calls may reach (a list)"),
            ("attributes", "custom attributes (a map)"),
        ],
    ),
    (
        "input",
        "Guards over all free text in the parameters.",
        [
            ("injection", "prompt-injection score from 0 to 1 (≥ 0.5 is a likely attack)"),
            ("flags", "the signals found, e.g. instruction_override"),
        ],
    ),
    (
        "data",
        "What data the action touches.",
        [
            ("classification", "highest classification touched: public, internal, confidential, restricted"),
            ("fields", "canonical fields touched, as entity.field (a list)"),
            ("pii", "personal data found in the parameters: email, phone, iban, card, vat, national_id…"),
        ],
    ),
    (
        "trace",
        "The task so far.",
        [
            ("steps", "actions proposed so far"),
            ("cost", "cost so far (LLM planner)"),
            ("tokens", "LLM tokens used so far"),
            ("depth", "sub-task depth"),
        ],
    ),
    (
        "time",
        "When, in the client's time zone.",
        [
            ("now", "ISO 8601 timestamp"),
            ("weekday", "1 = Monday … 7 = Sunday"),
            ("hour", "0–23"),
            ("business_hours", "Monday–Friday 08:00–18:00"),
        ],
    ),
]


OPERATIONS = ("read", "create", "update", "delete", "send")
MAX_ACTION_BYTES = 64 * 1024


def action_clean(action) -> dict:
    """An action in its canonical shape, or ApplicationError naming what is wrong.

    tool (required), operation (one of OPERATIONS, or ''), entity (or null), params (a map),
    target_ids (a list of strings or numbers); nothing else. Bounded in size, since every action is
    stored with its decision.
    """
    if not isinstance(action, Mapping):
        raise ApplicationError("An action is an object with tool, operation, entity, params, target_ids.")
    unknown = sorted(set(action) - {"tool", "operation", "entity", "params", "target_ids"})
    if unknown:
        raise ApplicationError(f"Unknown action field: {', '.join(map(str, unknown))}.", field="action")
    tool = action.get("tool")
    if not isinstance(tool, str) or not tool.strip() or len(tool) > 100:
        raise ApplicationError("An action needs a tool (a name of up to 100 characters).", field="tool")
    operation = action.get("operation") or ""
    if operation not in ("", *OPERATIONS):
        raise ApplicationError(f"The operation is one of {', '.join(OPERATIONS)}.", field="operation")
    entity = action.get("entity")
    if entity is not None and (not isinstance(entity, str) or len(entity) > 100):
        raise ApplicationError("The entity is a name of up to 100 characters.", field="entity")
    params = action.get("params", {})
    if not isinstance(params, Mapping):
        raise ApplicationError("The params are an object.", field="params")
    target_ids = action.get("target_ids", [])
    if not isinstance(target_ids, list) or not all(
        isinstance(i, str | int) and not isinstance(i, bool) for i in target_ids
    ):
        raise ApplicationError("target_ids is a list of ids (strings or numbers).", field="target_ids")
    cleaned = {
        "tool": tool.strip(),
        "operation": operation,
        "entity": entity or None,
        "params": dict(params),
        "target_ids": list(target_ids),
    }
    if len(json.dumps(cleaned, default=str)) > MAX_ACTION_BYTES:
        raise ApplicationError(f"The action is larger than {MAX_ACTION_BYTES // 1024} KB.", field="params")
    return cleaned


def agent_context(deployment: Deployment) -> dict:
    return {
        "variant": deployment.variant.key,
        "version": deployment.version.version,
        "deployment": deployment.pk,
        "deployment_name": deployment.name,
    }


def tenant_context_vars(client: Client) -> dict:
    return {
        "slug": client.slug,
        "name": client.name,
        "jurisdiction": client.jurisdiction,
        "timezone": client.timezone,
        "domains": list(client.own_domains),
        "allowed_hosts": list(client.allowed_hosts),
        "attributes": dict(client.attributes),
    }


def principal_context(principal: Mapping | None) -> dict:
    """Who asked: a user (with their role), a channel or a schedule; unknown kinds become `api`."""
    principal = principal or {}
    kind = principal.get("kind") if principal.get("kind") in PRINCIPAL_KINDS else "api"
    return {
        "kind": kind,
        "id": str(principal.get("id") or ""),
        "role": str(principal.get("role") or ""),
        "channel": str(principal.get("channel") or ""),
    }


def time_context(now: datetime, tz_name: str) -> dict:
    local = now.astimezone(ZoneInfo(tz_name))
    weekday = local.isoweekday()
    return {
        "now": local.isoformat(),
        "weekday": weekday,
        "hour": local.hour,
        "business_hours": weekday in BUSINESS_DAYS and local.hour in BUSINESS_HOURS,
    }


def trace_context(trace: Mapping | None) -> dict:
    trace = trace or {}
    return {
        "steps": int(trace.get("steps") or 0),
        "cost": float(trace.get("cost") or 0.0),
        "tokens": int(trace.get("tokens") or 0),
        "depth": int(trace.get("depth") or 0),
    }


def _params(action: Mapping) -> Mapping:
    params = action.get("params")
    return params if isinstance(params, Mapping) else {}


def input_context(params: Mapping) -> dict:
    found = scan_params(params)
    return {"injection": round(found.score, 4), "flags": list(found.flags)}


def data_context(spec: Mapping, action: Mapping) -> dict:
    """Classification of the canonical fields the action touches, and PII kinds found in its params.

    Touched fields: for reads, every field of the entity the agent's spec declares; otherwise the
    params that name a declared field of the entity. A field without a classification is internal.
    """
    params = _params(action)
    entity = action.get("entity")
    declared = next(
        (e for e in spec.get("data", []) if isinstance(e, Mapping) and e.get("name") == entity), None
    )
    touched: list[tuple[str, str]] = []
    if declared is not None:
        for field_spec in declared.get("fields", []):
            name = field_spec.get("name")
            if action.get("operation") in READ_OPERATIONS or name in params:
                touched.append((name, field_spec.get("classification") or "internal"))
    levels = [CLASSIFICATION_LEVELS.index(level) for _, level in touched if level in CLASSIFICATION_LEVELS]
    pii: set[str] = set()
    for text in text_values(params):
        if text.strip():
            pii.update(scan_pii(text).kinds)
    return {
        "classification": CLASSIFICATION_LEVELS[max(levels)] if levels else "public",
        "fields": [f"{entity}.{name}" for name, _ in touched],
        "pii": sorted(pii),
    }


def decision_context(
    *,
    client: Client,
    deployment: Deployment,
    action: Mapping,
    principal: Mapping | None = None,
    trace: Mapping | None = None,
    now: datetime | None = None,
) -> dict:
    """Every context variable for deciding `action` of `deployment` (all but `action` itself)."""
    params = _params(action)
    return {
        "agent": agent_context(deployment),
        "principal": principal_context(principal),
        "tenant": tenant_context_vars(client),
        "input": input_context(params),
        "data": data_context(deployment.version.spec or {}, action),
        "trace": trace_context(trace),
        "time": time_context(now or timezone.now(), client.timezone),
    }
