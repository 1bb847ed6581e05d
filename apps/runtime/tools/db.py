"""db.query, db.get, db.insert, db.update on canonical entities of the deployment's data source.

The client database is reached through its field mapping (apps.connectors.clientdb: SQLAlchemy Core,
bound parameters, identifiers only from the mapping, read-only transactions for reads). The tool's
entry in the deployed spec limits it further: `entities` it may touch, `fields` a db.update may set,
`max_rows` a query may return. A circuit breaker per data source stops calls to a failing database.

Parameters (PRODUCT.md conventions): db.get {id}; db.query {filter, fields, limit, order_by};
db.insert {<field>: value, …}; db.update {id, <field>: value, …}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from apps.connectors import clientdb

from ..breaker import CircuitBreaker
from . import ToolContext, ToolError, requires_permit

T = TypeVar("T")


def _entity(action: dict, ctx: ToolContext) -> str:
    entity = action.get("entity")
    if not entity:
        raise ToolError(f"{action['tool']} needs an entity.")
    allowed = ctx.spec.get("entities") or []
    if allowed and entity not in allowed:
        raise ToolError(f"{action['tool']} may not touch {entity} (allowed: {', '.join(allowed)}).")
    return str(entity)


def _with_database(ctx: ToolContext, work: Callable[[clientdb.ClientDatabase], T], *, writes: bool) -> T:
    try:
        database = clientdb.open_for_deployment(ctx.deployment)
    except clientdb.ClientDatabaseError as exc:
        raise ToolError(exc.message, transient=exc.transient) from None
    breaker = CircuitBreaker(f"datasource:{ctx.client.schema_name}:{database.source.key}")
    if not breaker.allow():
        raise ToolError(
            f"The data source {database.source.name} is failing; calls are paused for a moment.",
            transient=True,
        )
    try:
        result = work(database)
    except clientdb.ClientDatabaseError as exc:
        if exc.transient:
            breaker.failure()
        # A write whose connection broke may have committed before the answer was lost.
        raise ToolError(
            exc.message, transient=exc.transient, maybe_applied=writes and exc.transient
        ) from None
    breaker.success()
    return result


def _params(action: dict) -> dict:
    params = action.get("params") or {}
    if not isinstance(params, dict):
        raise ToolError("The params are a map.")
    return params


@requires_permit
def get(action: dict, ctx: ToolContext) -> dict:
    entity = _entity(action, ctx)
    params = _params(action)
    if params.get("id") in (None, ""):
        raise ToolError("db.get needs an id.")
    row = _with_database(ctx, lambda db: db.get(entity, params["id"]), writes=False)
    if row is None:
        raise ToolError(f"There is no {entity} with id {params['id']}.")
    return row


@requires_permit
def query(action: dict, ctx: ToolContext) -> dict:
    entity = _entity(action, ctx)
    params = _params(action)
    limit = params.get("limit")
    max_rows = ctx.spec.get("settings", {}).get("max_rows")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ToolError("The limit is a whole number of at least 1.")
    if max_rows:
        limit = min(limit or max_rows, int(max_rows))
    fields = params.get("fields")
    if fields is not None and not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
        raise ToolError("The fields are a list of field names.")
    rows = _with_database(
        ctx,
        lambda db: db.query(
            entity,
            filter=params.get("filter") or None,
            fields=fields,
            limit=limit,
            order_by=params.get("order_by") or None,
        ),
        writes=False,
    )
    return {"rows": rows, "count": len(rows)}


@requires_permit
def insert(action: dict, ctx: ToolContext) -> dict:
    entity = _entity(action, ctx)
    values = dict(_params(action))
    if not values:
        raise ToolError("db.insert needs the new record's fields.")
    return _with_database(ctx, lambda db: db.insert(entity, values), writes=True)


@requires_permit
def update(action: dict, ctx: ToolContext) -> dict:
    entity = _entity(action, ctx)
    values = dict(_params(action))
    record_id = values.pop("id", None)
    if record_id in (None, ""):
        raise ToolError("db.update needs the id of the record to change.")
    if not values:
        raise ToolError("db.update needs at least one field to change.")
    allowed: list[str] = ctx.spec.get("settings", {}).get("fields") or []
    refused = sorted(set(values) - set(allowed)) if allowed else []
    if refused:
        raise ToolError(f"db.update may not change {', '.join(refused)} of {entity}.")
    result: dict[str, Any] = _with_database(ctx, lambda db: db.update(entity, record_id, values), writes=True)
    if not result.get("updated"):
        raise ToolError(f"There is no {entity} with id {record_id}.")
    return result
