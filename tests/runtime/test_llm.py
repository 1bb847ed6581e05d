"""The chat-completions client against a loopback OpenAI-compatible server: what is sent (model, key,
messages, tool schemas), how answers are read (tool calls, usage), and clear errors for answers and
endpoints that cannot be used. Also the tool schemas built from the seeded ITSM agent's spec."""

import re
import time
import uuid

import pytest

from apps.factory.fixtures_data import ITSM_ENTITIES, ITSM_SPEC
from apps.factory.spec import TOOLS
from apps.runtime.llm import (
    ChatResult,
    LlmError,
    ToolCall,
    chat,
    chat_for_endpoint,
    policy_for_endpoint,
    tool_name_from_function,
    tool_schemas,
)
from apps.runtime.models import LlmEndpoint
from apps.runtime.outbound import OutboundPolicy
from tests.runtime.fakes import fake_llm_server, raw, reply, tool_call

MESSAGES = [
    {"role": "system", "content": "You are the IT service management agent."},
    {"role": "user", "content": "Close INC-1 if the mail server is back."},
]


def policy(**kwargs) -> OutboundPolicy:
    kwargs.setdefault("allow_private", True)
    return OutboundPolicy(
        allowed_hosts=("127.0.0.1",), breaker_scope=f"test_{uuid.uuid4().hex[:12]}", **kwargs
    )


def ask(llm, tools=None, **kwargs) -> ChatResult:
    kwargs.setdefault("policy", policy())
    return chat(
        base_url=llm.base_url,
        api_key="sk-test",
        model="qwen2.5-7b-instruct",
        messages=MESSAGES,
        tools=tools if tools is not None else tool_schemas(ITSM_SPEC),
        **kwargs,
    )


# ---------------------------------------------------------------- tool schemas


def by_name(schemas: list[dict]) -> dict[str, dict]:
    return {schema["function"]["name"]: schema["function"] for schema in schemas}


def test_tool_schemas_offer_one_function_per_allowed_tool_of_the_itsm_agent():
    schemas = tool_schemas(ITSM_SPEC)
    names = [schema["function"]["name"] for schema in schemas]
    assert names == ["db_query", "db_get", "db_insert", "db_update", "notify_email", "notify_webhook"]
    assert all(schema["type"] == "function" for schema in schemas)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in names)
    functions = by_name(schemas)

    query = functions["db_query"]["parameters"]
    assert query["type"] == "object"
    assert query["properties"]["entity"]["enum"] == ITSM_ENTITIES
    assert set(query["properties"]) == {"entity", "params", "target_ids"}
    assert query["required"] == ["entity", "params"]
    assert query["additionalProperties"] is False
    assert query["properties"]["params"]["type"] == "object"
    assert query["properties"]["target_ids"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Ids of the records this action reads or changes, when known.",
    }
    assert "at most 200 records" in functions["db_query"]["description"]
    # The entity description names the fields the model may use.
    assert "ticket: A service desk ticket" in query["properties"]["entity"]["description"]
    assert "priority" in query["properties"]["entity"]["description"]

    assert functions["db_insert"]["parameters"]["properties"]["entity"]["enum"] == ["ticket_comment"]
    assert functions["db_update"]["parameters"]["properties"]["entity"]["enum"] == ["ticket"]
    assert "Fields it may set: status, priority" in functions["db_update"]["description"]

    email = functions["notify_email"]["parameters"]
    assert "entity" not in email["properties"]
    assert email["required"] == ["params"]
    assert set(email["properties"]["params"]["properties"]) == {"to", "subject", "body"}
    assert "Page the on-call engineer." in functions["notify_webhook"]["description"]


def test_tools_outside_the_spec_or_unknown_are_not_offered():
    spec = {"tools": [{"name": "db.get", "entities": []}, {"name": "shell.exec"}, "db.query"], "data": []}
    assert [s["function"]["name"] for s in tool_schemas(spec)] == ["db_get"]
    assert tool_schemas({}) == []


def test_function_names_map_back_to_tool_names():
    for tool in TOOLS:
        assert tool_name_from_function(tool.replace(".", "_")) == tool
        assert tool_name_from_function(tool) == tool
    assert tool_name_from_function("db_drop") is None
    assert tool_name_from_function("shell_exec") is None
    assert tool_name_from_function("") is None


# ---------------------------------------------------------------- chat


def test_a_tool_call_is_parsed_with_its_arguments_and_usage():
    arguments = {"entity": "ticket", "params": {"id": "1"}, "target_ids": ["1"]}
    script = [tool_call("db_get", arguments, call_id="call_abc", prompt_tokens=120, completion_tokens=18)]
    with fake_llm_server(script) as llm:
        result = ask(llm, temperature=0.2, max_tokens=512)
    assert result == ChatResult(
        content=None,
        tool_calls=[ToolCall(id="call_abc", name="db_get", arguments=arguments)],
        prompt_tokens=120,
        completion_tokens=18,
        finish_reason="tool_calls",
    )
    assert tool_name_from_function(result.tool_calls[0].name) == "db.get"
    [sent] = llm.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["user-agent"] == "Triplane"
    body = sent.json
    assert body["model"] == "qwen2.5-7b-instruct"
    assert body["messages"] == MESSAGES
    assert body["tools"] == tool_schemas(ITSM_SPEC)
    assert body["tool_choice"] == "auto"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 512


def test_a_final_answer_has_content_and_no_tool_calls():
    with fake_llm_server([reply("INC-1 is resolved.", prompt_tokens=50, completion_tokens=5)]) as llm:
        result = ask(llm, tools=[])
    assert result.content == "INC-1 is resolved."
    assert result.tool_calls == []
    assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (50, 5, "stop")
    sent = llm.requests[0].json
    assert "tools" not in sent and "tool_choice" not in sent and "max_tokens" not in sent


def test_a_conversation_continues_with_tool_answers():
    script = [
        tool_call("db_query", {"entity": "ticket", "params": {"filter": {"priority": "P1"}}}),
        reply("Done."),
    ]
    with fake_llm_server(script) as llm:
        first = ask(llm)
        messages = [
            *MESSAGES,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": first.tool_calls[0].id,
                        "type": "function",
                        "function": {"name": "db_query", "arguments": '{"entity": "ticket"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": '{"rows": []}'},
        ]
        second = chat(
            policy=policy(), base_url=llm.base_url, api_key="", model="m", messages=messages, tools=[]
        )
    assert first.tool_calls[0].arguments["params"] == {"filter": {"priority": "P1"}}
    assert second.content == "Done."
    assert llm.requests[1].json["messages"][-1]["tool_call_id"] == first.tool_calls[0].id
    assert "authorization" not in llm.requests[1].headers  # no key configured: none sent


def test_missing_usage_is_estimated_so_budgets_still_hold():
    body = {"choices": [{"message": {"role": "assistant", "content": "x" * 400}, "finish_reason": "stop"}]}
    with fake_llm_server([raw(body)]) as llm:
        result = ask(llm)
    assert result.completion_tokens == 100
    assert result.prompt_tokens > 0


def test_arguments_given_as_an_object_are_accepted_and_a_missing_id_is_filled_in():
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "db_get", "arguments": {"a": 1}}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    with fake_llm_server([raw(body)]) as llm:
        result = ask(llm)
    assert result.tool_calls == [ToolCall(id="call_1", name="db_get", arguments={"a": 1})]


@pytest.mark.parametrize(
    "answer, message",
    [
        (tool_call("db_get", '{"entity": "ticket", "params": '), "arguments for db_get are not valid JSON"),
        (tool_call("db_get", '["ticket"]'), "arguments for db_get are not a JSON object"),
        (raw({"object": "chat.completion"}), "has no choices"),
        (raw({"choices": []}), "has no choices"),
        (raw({"choices": [{"finish_reason": "stop"}]}), "has no message"),
        (raw({"choices": [{"message": {"content": 42}}]}), "content that is not text"),
        (
            raw({"choices": [{"message": {"tool_calls": [{"id": "c1", "function": {}}]}}]}),
            "has no function name",
        ),
        (raw({"choices": [{"message": {"tool_calls": "db_get"}}]}), "not a list"),
        (raw("<html>Bad gateway</html>", content_type="text/html"), "is not JSON"),
        (raw("[1, 2]"), "is not a JSON object"),
    ],
)
def test_malformed_answers_raise_a_clear_llm_error(answer, message):
    with fake_llm_server([answer]) as llm, pytest.raises(LlmError) as error:
        ask(llm)
    assert message in str(error.value)
    assert error.value.transient is False


@pytest.mark.parametrize(
    "status, message, transient",
    [
        (401, "refused the API key (401). It said: Invalid API key", False),
        (403, "refused the API key (403)", False),
        (404, "check the base URL and the model", False),
        (400, "answered 400. It said: Invalid API key", False),
        (429, "rate-limiting us (429)", True),
        (500, "answered 500", True),
        (503, "answered 503", True),
    ],
)
def test_http_errors_become_llm_errors_transient_like_outbound_failures(status, message, transient):
    error_body = {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
    with fake_llm_server([raw(error_body, status=status)]) as llm, pytest.raises(LlmError) as error:
        ask(llm)
    assert message in str(error.value)
    assert error.value.transient is transient
    assert error.value.status == status


def test_an_exhausted_script_answers_500():
    with fake_llm_server([]) as llm, pytest.raises(LlmError) as error:
        ask(llm)
    assert "script is exhausted" in str(error.value)


def test_the_endpoint_goes_through_the_outbound_rules():
    with fake_llm_server([reply("never")]) as llm:
        with pytest.raises(LlmError) as private:
            ask(llm, policy=policy(allow_private=False))
        with pytest.raises(LlmError) as elsewhere:
            chat(
                policy=policy(),
                base_url="https://llm.evil.example/v1",
                api_key="sk-test",
                model="m",
                messages=MESSAGES,
                tools=[],
            )
        assert llm.requests == []
    assert "may not be called" in str(private.value) and "private" in str(private.value)
    assert "not on this client's list of allowed hosts" in str(elsewhere.value)


def test_a_slow_endpoint_fails_transiently_by_the_timeout():
    with fake_llm_server([reply("late")]) as llm:
        llm.delay = 3
        started = time.monotonic()
        with pytest.raises(LlmError) as error:
            ask(llm, timeout=0.5)
        assert time.monotonic() - started < 1.5
    assert error.value.transient is True
    assert "did not answer in time" in str(error.value)


# ---------------------------------------------------------------- a deployment's endpoint


def test_an_endpoint_allows_exactly_its_host_and_private_addresses_only_when_on_premises():
    endpoint = LlmEndpoint(
        base_url="http://127.0.0.1:8000/v1",
        model="m",
        api_key="k",
        allow_private_network=True,
        timeout_seconds=7,
    )
    endpoint_policy = policy_for_endpoint(endpoint)
    assert endpoint_policy.allowed_hosts == ("127.0.0.1:8000",)
    assert endpoint_policy.allow_private is True
    assert endpoint_policy.timeout == 7.0
    assert endpoint_policy.max_redirects == 0
    endpoint.base_url, endpoint.allow_private_network = "https://[2001:db8::1]/v1", False
    assert policy_for_endpoint(endpoint).allowed_hosts == ("[2001:db8::1]",)
    assert policy_for_endpoint(endpoint).allow_private is False


def test_chat_for_endpoint_uses_the_endpoint_settings():
    script = [tool_call("notify_email", {"params": {"to": ["dana@acme.test"], "subject": "s", "body": "b"}})]
    with fake_llm_server([*script, reply("refused")]) as llm:
        endpoint = LlmEndpoint(
            base_url=llm.base_url,
            model="llama3.1",
            api_key="sk-endpoint",
            allow_private_network=True,
            temperature=0.3,
            timeout_seconds=5,
        )
        result = chat_for_endpoint(endpoint=endpoint, messages=MESSAGES, tools=tool_schemas(ITSM_SPEC))
        endpoint.allow_private_network = False
        with pytest.raises(LlmError):
            chat_for_endpoint(endpoint=endpoint, messages=MESSAGES, tools=[])
    assert result.tool_calls[0].name == "notify_email"
    [sent] = llm.requests
    assert sent.headers["authorization"] == "Bearer sk-endpoint"
    assert (sent.json["model"], sent.json["temperature"]) == ("llama3.1", 0.3)


def test_an_endpoint_that_redirects_is_not_followed():
    moved = raw(
        {"moved": True}, status=308, headers={"Location": "https://llm.elsewhere.example/v1/chat/completions"}
    )
    with fake_llm_server([moved]) as llm:
        endpoint = LlmEndpoint(
            base_url=llm.base_url, model="m", allow_private_network=True, timeout_seconds=5
        )
        with pytest.raises(LlmError) as error:
            chat_for_endpoint(endpoint=endpoint, messages=MESSAGES, tools=[])
    assert "redirect" in str(error.value)
