"""The LLM planner: an OpenAI-compatible chat-completions endpoint with tool calling proposes each action.

The conversation is rebuilt from the task's steps every time (so a resumed task continues where it
was): the agent's instructions, the person's instruction, then one assistant tool call and one tool
answer per step — the result after redactions, or why the action was refused. A refused action does
not end the task: the model reads the reason and may try something else, within the budgets.
Budgets per task (steps, tokens, cost) come from the deployment's endpoint settings; the task's
usage so far is also in every decision's `trace` (steps, tokens, cost), so rules can bound it too.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.db.models import F

from ..llm import LlmError, chat_for_endpoint, tool_name_from_function, tool_schemas
from ..models import LlmEndpoint, Step, Task
from . import Finish, Proposal, Propose, action_for

SYSTEM_SUFFIX = (
    "\n\nYou act only through the tools given. Every action is checked against the client's governance "
    "rules before it runs; a refused action comes back with the reason. When the work is done, answer "
    "with a short summary and no tool call."
)
MAX_ANSWER_CHARS = 8000


def _tool_answer(step: Step) -> str:
    if step.status == Step.Status.EXECUTED:
        text = json.dumps(step.result, default=str, ensure_ascii=False)
        return text[:MAX_ANSWER_CHARS]
    return f"{step.get_status_display()}: {step.error or 'no reason given'}"[:MAX_ANSWER_CHARS]


def conversation(task: Task, steps: list[Step]) -> list[dict]:
    spec = task.deployment.version.spec
    messages: list[dict] = [
        {"role": "system", "content": spec.get("instructions", "") + SYSTEM_SUFFIX},
        {"role": "user", "content": task.instruction},
    ]
    for step in steps:
        if step.compensates_id or step.status == Step.Status.SKIPPED:
            continue
        arguments = {
            "entity": step.action.get("entity"),
            "params": step.action.get("params", {}),
            "target_ids": step.action.get("target_ids", []),
        }
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": step.key,
                        "type": "function",
                        "function": {
                            "name": step.tool.replace(".", "_"),
                            "arguments": json.dumps(arguments, default=str),
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": step.key, "content": _tool_answer(step)})
    return messages


class LlmPlanner:
    def next(self, task: Task, steps: list[Step]) -> Proposal:
        endpoint = LlmEndpoint.objects.filter(deployment=task.deployment).first()
        if endpoint is None:
            return Finish("The agent has no LLM endpoint set up.", completed=False)
        proposed = [s for s in steps if not s.compensates_id and s.status != Step.Status.SKIPPED]
        max_steps = min(
            endpoint.max_steps, int(task.deployment.version.spec.get("planner", {}).get("max_steps", 20))
        )
        if len(proposed) >= max_steps:
            return Finish(f"Stopped: the step budget ({max_steps}) is used up.", completed=False)
        if task.tokens_used >= endpoint.max_tokens:
            return Finish(f"Stopped: the token budget ({endpoint.max_tokens:,}) is used up.", completed=False)
        if task.cost_used >= endpoint.max_cost:
            return Finish(f"Stopped: the cost budget ({endpoint.max_cost}) is used up.", completed=False)
        try:
            answer = chat_for_endpoint(
                endpoint=endpoint,
                messages=conversation(task, steps),
                tools=tool_schemas(task.deployment.version.spec),
            )
        except LlmError as exc:
            return Finish(f"The LLM endpoint failed: {exc}", completed=False)
        tokens = answer.prompt_tokens + answer.completion_tokens
        cost = (Decimal(tokens) / 1000) * endpoint.price_per_1k_tokens
        Task.objects.filter(pk=task.pk).update(
            tokens_used=F("tokens_used") + tokens, cost_used=F("cost_used") + cost
        )
        task.refresh_from_db(fields=["tokens_used", "cost_used"])
        if not answer.tool_calls:
            return Finish(answer.content or "Done.")
        call = answer.tool_calls[0]
        tool = tool_name_from_function(call.name)
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        raw_params = arguments.get("params")
        params = raw_params if isinstance(raw_params, dict) else {}
        action = action_for(tool or call.name, arguments.get("entity"), params)
        if isinstance(arguments.get("target_ids"), list):
            action["target_ids"] = arguments["target_ids"]
        return Propose(f"call_{len(proposed) + 1}", action, on_failure="continue")
