"""Loopback servers standing in for the outside world (a webhook receiver, an OpenAI-compatible LLM).

    with webhook_server() as hooks:
        hooks.route("/slow", delay=2)
        hooks.route("/moved", status=302, location="http://169.254.169.254/")
        hooks.route("/big", body_size=2_000_000)
        ...  # call hooks.url + "/hook"
        assert hooks.requests[0].json == {...}

    script = [tool_call("db_get", {"entity": "ticket", "params": {"id": "1"}}), reply("Done.")]
    with fake_llm_server(script) as llm:
        ...  # base_url=llm.base_url ("http://127.0.0.1:<port>/v1")
        assert llm.requests[0].json["tools"][0]["function"]["name"] == "db_query"

Both bind 127.0.0.1 on a free port and answer from daemon threads; a delayed answer is cut short when the
server stops. Outbound calls to them need a policy with allow_private (they are on loopback).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Route:
    """How the receiver answers one path."""

    status: int = 200
    delay: float = 0.0  # seconds before answering
    location: str | None = None  # a redirect target (give a 3xx status)
    body: bytes | str | None = None
    body_size: int | None = None  # answer this many bytes of "x"
    content_type: str = "application/json"
    send_length: bool = True  # False: no Content-Length; the body ends when the connection closes
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.stopping = threading.Event()


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def record(self, request: RecordedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests arrived (or `timeout`), then return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


def _read_request(handler: BaseHTTPRequestHandler) -> RecordedRequest:
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    return RecordedRequest(
        method=handler.command,
        path=handler.path,
        headers={name.lower(): value for name, value in handler.headers.items()},
        body=body,
    )


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], owner: Any) -> Iterator[_Server]:
    server = _Server(handler)
    server.owner = owner  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------- webhook receiver


class WebhookServer(_Recorder):
    """Records every request; answers per path as `route()` says (default: 200 with {"ok": true})."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, **settings: Any) -> Route:
        """Answer requests to `path` (without the query string) as given (see Route)."""
        self.routes[path] = Route(**settings)
        return self.routes[path]

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


class _WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        hooks: WebhookServer = self.server.owner  # type: ignore[attr-defined]
        recorded = _read_request(self)
        hooks.record(recorded)
        route = hooks.routes.get(self.path.split("?", 1)[0], Route())
        if route.delay and self.server.stopping.wait(route.delay):
            return
        if route.body_size is not None:
            body = b"x" * route.body_size
        elif route.body is not None:
            body = route.body.encode() if isinstance(route.body, str) else route.body
        else:
            body = b'{"ok": true}'
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        if route.location:
            self.send_header("Location", route.location)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            # The client may stop reading (a size limit): that is the point.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """A loopback webhook receiver on a free port."""
    hooks = WebhookServer()
    with _serving(_WebhookHandler, hooks) as server:
        hooks.port = server.server_address[1]
        yield hooks


# ---------------------------------------------------------------- fake LLM


def reply(content: str, *, prompt_tokens: int = 11, completion_tokens: int = 7) -> dict:
    """A scripted final answer (no tool call)."""
    return {"content": content, "usage": (prompt_tokens, completion_tokens)}


def tool_call(
    name: str,
    arguments: dict | str,
    *,
    call_id: str | None = None,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
) -> dict:
    """A scripted answer calling one function; `arguments` as a dict (sent as JSON text) or raw text."""
    return {"tool_calls": [(call_id, name, arguments)], "usage": (prompt_tokens, completion_tokens)}


def raw(
    body: Any, *, status: int = 200, content_type: str = "application/json", headers: dict | None = None
) -> dict:
    """A scripted answer sent exactly as given (bytes/str as is, anything else as JSON)."""
    return {"raw": body, "status": status, "content_type": content_type, "headers": headers or {}}


def completion(item: dict, *, model: str, counter: int) -> dict:
    """The chat-completions body for a scripted `reply` or `tool_call`."""
    prompt, produced = item.get("usage", (11, 7))
    message: dict[str, Any] = {"role": "assistant", "content": item.get("content")}
    finish = "stop"
    if item.get("tool_calls"):
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": call_id or f"call_{counter}_{position}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
            for position, (call_id, name, arguments) in enumerate(item["tool_calls"], start=1)
        ]
    return {
        "id": f"chatcmpl-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": produced, "total_tokens": prompt + produced},
    }


class FakeLlm(_Recorder):
    """Answers POST /v1/chat/completions from a script, one item per request, in order; records requests.
    When the script runs out it answers 500 (so a test sees a planner asking more than expected)."""

    def __init__(self, script: list[dict]) -> None:
        super().__init__()
        self.script = list(script)
        self.port = 0
        self.delay = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_answer(self, request: RecordedRequest) -> tuple[int, str, bytes, dict]:
        with self._lock:
            counter = len(self.requests)
            item = self.script.pop(0) if self.script else None
        if request.method != "POST" or request.path.split("?", 1)[0] != "/v1/chat/completions":
            return 404, "application/json", b'{"error": {"message": "Not found"}}', {}
        if item is None:
            return 500, "application/json", b'{"error": {"message": "The fake LLM script is exhausted."}}', {}
        if "raw" in item:
            body = item["raw"]
            if not isinstance(body, bytes | str):
                body = json.dumps(body)
            encoded = body.encode() if isinstance(body, str) else body
            return item["status"], item["content_type"], encoded, item["headers"]
        model = (request.json or {}).get("model", "fake")
        return (
            200,
            "application/json",
            json.dumps(completion(item, model=model, counter=counter)).encode(),
            {},
        )


class _LlmHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        llm: FakeLlm = self.server.owner  # type: ignore[attr-defined]
        recorded = _read_request(self)
        status, content_type, body, headers = llm.next_answer(recorded)
        llm.record(recorded)
        if llm.delay and self.server.stopping.wait(llm.delay):
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@contextmanager
def fake_llm_server(script: list[dict]) -> Iterator[FakeLlm]:
    """A loopback OpenAI-compatible chat-completions server answering from `script`
    (items made with `reply`, `tool_call` or `raw`)."""
    llm = FakeLlm(script)
    with _serving(_LlmHandler, llm) as server:
        llm.port = server.server_address[1]
        yield llm
