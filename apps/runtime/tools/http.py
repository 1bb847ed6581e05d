"""http.request: a read from an allowed outside service, through the outbound client."""

from __future__ import annotations

from . import ToolContext, ToolError, requires_permit
from .notify import _call

METHODS = ("GET", "HEAD")


@requires_permit
def request(action: dict, ctx: ToolContext) -> dict:
    params = action.get("params") or {}
    method = str(params.get("method") or "GET").upper()
    if method not in METHODS:
        raise ToolError(f"http.request makes {' or '.join(METHODS)} calls; use notify.webhook to send data.")
    query = params.get("query") or {}
    if not isinstance(query, dict):
        raise ToolError("The query is a map of names to values.")
    return _call(ctx, method, params.get("url"), params={str(k): str(v) for k, v in query.items()})
