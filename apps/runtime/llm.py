"""An OpenAI-compatible chat-completions client with tool calling, through the outbound client.

    result = chat(policy=policy, base_url="http://llm.acme.internal/v1", api_key=key, model="qwen2.5",
                  messages=[...], tools=tool_schemas(spec))
    result.tool_calls  # [ToolCall(id, name="db_get", arguments={...})]; tool_name_from_function → "db.get"

Works with any server speaking `POST {base_url}/chat/completions` (vLLM, Ollama, Azure OpenAI, …).
The call goes through `apps.runtime.outbound` like every other outbound call (allowlist, private
networks, size and time limits, circuit breaker). An answer we cannot use — not JSON, no choices, tool
arguments that are not a JSON object — raises LlmError with a message a person can act on; so do HTTP
errors (`transient` for timeouts, 429 and 5xx, as for OutboundFailed).

`tool_schemas(spec)` turns an agent spec's tool allowlist into OpenAI function tools: one function per
tool (dots become underscores: `db.get` ↔ `db_get`) taking {entity, params, target_ids}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx
from django.db import connection

from apps.factory.spec import TOOLS

from . import outbound

if TYPE_CHECKING:
    from .models import LlmEndpoint

# An LLM answer (or a conversation) is larger than a webhook's.
MAX_REQUEST_BYTES = 2_000_000
MAX_RESPONSE_BYTES = 2_000_000


class LlmError(Exception):
    """The endpoint could not be used: unreachable, refused, or an answer we cannot read."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; `name` is the function name (`db_get`)."""

    id: str
    name: str
    arguments: dict


@dataclass(frozen=True)
class ChatResult:
    """The model's answer: text and/or tool calls, with the tokens it used (estimated when the server
    does not report usage, so that budgets still hold)."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


# ---------------------------------------------------------------- tool schemas

# What each tool does and the parameter conventions of its `params` (see apps/factory/fixtures_data.py).
TOOL_GUIDE: dict[str, tuple[str, dict]] = {
    "db.query": (
        "Find records of an entity in the client's system.",
        {
            "filter": {"type": "object", "description": "Field → value; records must match all of them."},
            "fields": {"type": "array", "items": {"type": "string"}, "description": "Fields to return."},
            "limit": {"type": "integer", "description": "At most this many records."},
            "order_by": {"type": "string", "description": "A field; prefix with - for descending."},
        },
    ),
    "db.get": (
        "Read one record of an entity by its id.",
        {"id": {"type": "string", "description": "The record's id."}},
    ),
    "db.insert": (
        "Create a record of an entity; params are the new record's fields.",
        {},
    ),
    "db.update": (
        "Change fields of one record; params are its id and the fields to set.",
        {"id": {"type": "string", "description": "The record's id."}},
    ),
    "notify.email": (
        "Send an e-mail.",
        {
            "to": {"type": "array", "items": {"type": "string"}, "description": "Recipient addresses."},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
    ),
    "notify.webhook": (
        "POST a JSON payload to a webhook URL.",
        {"url": {"type": "string"}, "payload": {"type": "object"}},
    ),
    "http.request": (
        "Read from an outside web service (GET or HEAD).",
        {
            "method": {"type": "string", "enum": ["GET", "HEAD"]},
            "url": {"type": "string"},
            "query": {"type": "object", "description": "Query parameters."},
        },
    ),
}


def function_name(tool: str) -> str:
    """The function name of a tool: `db.get` → `db_get` (function names cannot contain dots)."""
    return tool.replace(".", "_")


_BY_FUNCTION = {function_name(tool): tool for tool in TOOLS}


def tool_name_from_function(name: str) -> str | None:
    """The tool a function name stands for (`db_get` → `db.get`), or None for a name we never offered."""
    name = (name or "").strip()
    if name in TOOLS:
        return name  # some models echo the dotted name
    return _BY_FUNCTION.get(name)


def _entity_line(entity: str, data: dict[str, dict]) -> str:
    described = data.get(entity)
    if not described:
        return entity
    fields = [
        str(f.get("name")) for f in described.get("fields", []) if isinstance(f, dict) and f.get("name")
    ]
    text = entity
    if described.get("description"):
        text += f": {described['description']}"
    if fields:
        text += f" Fields: {', '.join(fields)}."
    return text


def tool_schemas(spec: dict) -> list[dict]:
    """OpenAI function tools for the tools an agent spec allows, with parameters {entity (one of the
    tool's entities, when it has any), params (an object; the tool's conventions), target_ids}."""
    data = {
        str(item.get("name")): item
        for item in spec.get("data") or []
        if isinstance(item, dict) and item.get("name")
    }
    schemas: list[dict] = []
    for tool in spec.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("name") not in TOOLS:
            continue
        name = str(tool["name"])
        settings = tool.get("settings") or {}
        entities = [str(e) for e in tool.get("entities") or []]
        summary, conventions = TOOL_GUIDE[name]
        description = summary
        if settings.get("purpose"):
            description += f" Purpose: {settings['purpose']}"
        if settings.get("fields"):
            description += f" Fields it may set: {', '.join(map(str, settings['fields']))}."
        if settings.get("max_rows"):
            description += f" Returns at most {settings['max_rows']} records."
        params: dict[str, Any] = {"type": "object", "description": f"The {name} parameters."}
        if conventions:
            params["properties"] = conventions
        properties: dict[str, Any] = {}
        required = ["params"]
        if entities:
            properties["entity"] = {
                "type": "string",
                "enum": entities,
                "description": "The entity: " + "; ".join(_entity_line(e, data) for e in entities),
            }
            required.insert(0, "entity")
        properties["params"] = params
        properties["target_ids"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ids of the records this action reads or changes, when known.",
        }
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": function_name(name),
                    "description": description,
                    "parameters": {
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": False,
                    },
                },
            }
        )
    return schemas


# ---------------------------------------------------------------- chat


def _estimate_tokens(value: Any) -> int:
    # About four characters a token: only used when the server reports no usage.
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return (len(text) + 3) // 4


def _error_detail(response: outbound.OutboundResponse) -> str:
    body = response.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if body.get("message"):
            return str(body["message"])[:300]
    return response.text.strip()[:300]


def _fail_for_status(response: outbound.OutboundResponse) -> None:
    status = response.status
    if status < 400:
        return
    detail = _error_detail(response)
    if status in (401, 403):
        message = f"The LLM endpoint refused the API key ({status})."
    elif status == 404:
        message = "The LLM endpoint has no chat completions here (404); check the base URL and the model."
    elif status == 429:
        message = "The LLM endpoint is rate-limiting us (429)."
    else:
        message = f"The LLM endpoint answered {status}."
    if detail:
        message += f" It said: {detail}"
    raise LlmError(message, transient=status >= 500 or status in (408, 429), status=status)


def _arguments(raw: Any, function: str) -> dict:
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise LlmError(f"The model's arguments for {function} are not a JSON object.")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise LlmError(f"The model's arguments for {function} are not valid JSON: {raw[:200]!r}.") from None
    if not isinstance(parsed, dict):
        raise LlmError(f"The model's arguments for {function} are not a JSON object: {raw[:200]!r}.")
    return parsed


def _tool_calls(message: dict) -> list[ToolCall]:
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise LlmError("The model's answer has tool_calls that are not a list.")
    calls = []
    for position, raw in enumerate(raw_calls, start=1):
        function = raw.get("function") if isinstance(raw, dict) else None
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            raise LlmError(f"Tool call {position} in the model's answer has no function name.")
        name = function["name"]
        # Some servers (older Ollama) leave the id out; the conversation still needs one.
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else f"call_{position}"
        calls.append(ToolCall(id=call_id, name=name, arguments=_arguments(function.get("arguments"), name)))
    return calls


def parse_completion(body: Any, *, messages: list[dict] | None = None) -> ChatResult:
    """A ChatResult from a chat-completions answer, or LlmError saying what is wrong with it."""
    if not isinstance(body, dict):
        raise LlmError("The LLM endpoint's answer is not a JSON object.")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmError("The LLM endpoint's answer has no choices.")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise LlmError("The LLM endpoint's answer has no message.")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise LlmError("The model's answer has content that is not text.")
    calls = _tool_calls(message)
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    if not isinstance(prompt_tokens, int) or isinstance(prompt_tokens, bool) or prompt_tokens < 0:
        prompt_tokens = _estimate_tokens(messages or [])
    if not isinstance(completion_tokens, int) or isinstance(completion_tokens, bool) or completion_tokens < 0:
        completion_tokens = _estimate_tokens(content or "") + sum(
            _estimate_tokens(c.arguments) + _estimate_tokens(c.name) for c in calls
        )
    finish = choices[0].get("finish_reason")
    return ChatResult(
        content=content,
        tool_calls=calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason=finish if isinstance(finish, str) else None,
    )


def chat(
    *,
    policy: outbound.OutboundPolicy,
    base_url: str,
    api_key: str,
    model: str,
    messages: list[dict],
    tools: list[dict],
    temperature: float = 0.0,
    max_tokens: int | None = None,
    timeout: float | None = None,
) -> ChatResult:
    """One chat completion: POST {base_url}/chat/completions with a Bearer key, parsed into a ChatResult."""
    payload: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
    if tools:
        payload["tools"] = tools
        payload["tool_choice"] = "auto"
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    if timeout is not None:
        policy = replace(policy, timeout=float(timeout))
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = base_url.rstrip("/") + "/chat/completions"
    try:
        response = outbound.request(policy, "POST", url, json=payload, headers=headers)
    except outbound.OutboundRefused as exc:
        raise LlmError(f"The LLM endpoint may not be called: {exc.message}") from None
    except outbound.OutboundFailed as exc:
        raise LlmError(f"The LLM endpoint failed: {exc.message}", transient=exc.transient) from None
    _fail_for_status(response)
    if isinstance(response.body, str):
        raise LlmError(f"The LLM endpoint's answer is not JSON: {response.text.strip()[:200]!r}.")
    return parse_completion(response.body, messages=messages)


def policy_for_endpoint(endpoint: LlmEndpoint) -> outbound.OutboundPolicy:
    """The outbound policy of a deployment's LLM endpoint: exactly its host (the partner set the URL),
    private addresses only when the endpoint says it is on-premises, no redirects."""
    try:
        url = httpx.URL(endpoint.base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise LlmError(f"The LLM endpoint's base URL is not valid ({exc}).") from None
    host = url.raw_host.decode("ascii", errors="replace")
    entry = f"[{host}]" if ":" in host else host
    if url.port is not None:
        entry += f":{url.port}"
    return outbound.OutboundPolicy(
        allowed_hosts=(entry,),
        allow_private=endpoint.allow_private_network,
        timeout=float(endpoint.timeout_seconds),
        max_request_bytes=MAX_REQUEST_BYTES,
        max_response_bytes=MAX_RESPONSE_BYTES,
        max_redirects=0,
        breaker_scope=getattr(connection, "schema_name", "public"),
    )


def chat_for_endpoint(
    *, endpoint: LlmEndpoint, messages: list[dict], tools: list[dict], max_tokens: int | None = None
) -> ChatResult:
    """`chat` with a deployment's LLM endpoint settings (call inside the client's schema)."""
    return chat(
        policy=policy_for_endpoint(endpoint),
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or "",
        model=endpoint.model,
        messages=messages,
        tools=tools,
        temperature=endpoint.temperature,
        max_tokens=max_tokens,
    )
