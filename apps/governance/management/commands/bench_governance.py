"""Benchmark the governance engine: compile time and decision latency.

    python manage.py bench_governance --rules 1000 --actions 20000

Builds a synthetic ruleset (vendor, partner and client layers; selectors over
40 tools, 5 operations and 20 entities; guardrail deny / require_approval
rules that fire on unusual actions, redaction on personal data, allow rules
for the everyday case, a fifth of them unconditional; conditions read nested
params, trace, input, data, time and rate(); a few shadow rules) and random
actions with a realistic context, all from a fixed seed, so decisions come out
as a mix of allow, deny (including tools outside the allowlist),
require_approval and redact. Times `compile_ruleset` with an empty cache, then
`evaluate` for every action (after a short warm-up that fills the candidate
index). Pure engine: no database, no Redis (rate() reads an in-memory counter).

Output lines are meant to be parsed:

    compile: rules=1000 ms=41.2
    evaluate: actions=20000 p50_us=9.8 p99_us=41.0 mean_us=11.3 candidates_mean=12.4
    effects: allow=... deny=... require_approval=... redact=...
"""

import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand

from apps.governance import engine

TOOLS = [f"tool.t{i}" for i in range(40)]
OPERATIONS = ["read", "create", "update", "delete", "send"]
ENTITIES = [f"entity_{i}" for i in range(20)]
VARIANTS = ["itsm", "finance", "hr", "vendor"]
# Conditions by effect, as rule authors write them: guardrails (deny, require_approval) fire on
# the unusual action, redaction on personal data, allows on the everyday case. Thresholds are drawn
# per rule, so most rules are distinct conditions. The context (see _action) has amounts 0-200,000,
# 0-70 trace steps, injection scores 0-1, 0-3 target ids and rate() always counting 3.
CONDITIONS = {
    "deny": [
        "action.params.amount > {big}",
        "action.params.amount > {big} && action.params.currency == 'EUR'",
        "input.injection > 0.9{d}",
        "trace.steps > {deep}",
        "!time.business_hours && action.params.amount > {big}",
        "has(action.params.priority) && action.params.priority == 'critical' && trace.steps > {deep}",
        "rate('tool:' + action.tool, 60) > {burst}",
    ],
    "require_approval": [
        "action.params.amount > {big} && principal.role == 'operator'",
        "action.target_ids.size() > {many}",
        "has(action.params.priority) && action.params.priority == 'critical'",
        "'iban' in data.pii && action.params.amount > {n}",
        "input.injection > 0.8{d} && trace.steps > {s}",
    ],
    "redact": [
        "'email' in data.pii",
        "'iban' in data.pii",
        "'email' in data.pii && principal.role == 'operator'",
    ],
    "allow": [
        "principal.role == 'operator' || principal.role == 'client_admin'",
        "action.params.amount < {n}",
        "trace.steps < {s} && input.injection < 0.{d}",
        "action.params.currency == 'EUR' || action.params.currency == 'USD'",
    ],
}
CLIENT_EFFECTS = {"deny": 3, "require_approval": 2, "redact": 2}  # client rules only tighten
OTHER_EFFECTS = {"allow": 6, "deny": 3, "require_approval": 2, "redact": 1}


def _rules(count: int, rnd: random.Random) -> list[dict]:
    rules = []
    for i in range(count):
        layer = rnd.choices(["vendor", "partner", "client"], weights=[2, 5, 3])[0]
        weights = CLIENT_EFFECTS if layer == "client" else OTHER_EFFECTS
        effect = rnd.choices(list(weights), weights=list(weights.values()))[0]
        selector: dict[str, list[str]] = {
            "tools": rnd.sample(TOOLS, rnd.choice([1, 1, 2])) if rnd.random() < 0.9 else [],
            "operations": rnd.sample(OPERATIONS, 1) if rnd.random() < 0.5 else [],
            "entities": rnd.sample(ENTITIES, rnd.choice([1, 2])) if rnd.random() < 0.6 else [],
            "variants": [rnd.choice(VARIANTS)] if rnd.random() < 0.3 else [],
        }
        condition = None
        # Guardrails always have a condition (an unconditional deny would deny every action it
        # selects); a fifth of allows are unconditional "this tool is fine here" rules.
        if effect != "allow" or rnd.random() < 0.8:
            condition = rnd.choice(CONDITIONS[effect]).format(
                n=rnd.randint(10, 200000),
                big=rnd.randint(150000, 200000),
                s=rnd.randint(1, 70),
                deep=rnd.randint(55, 75),
                many=rnd.randint(2, 4),
                burst=rnd.randint(2, 20),
                d=rnd.randint(1, 9),
            )
        rule: dict[str, object] = {
            "key": f"rule_{i}",
            "name": f"Rule {i}",
            "layer": layer,
            "selector": selector,
            "condition": condition,
            "effect": effect,
            "message": f"Rule {i} decided.",
            "mode": "shadow" if rnd.random() < 0.05 else "enforce",
        }
        if effect == "require_approval":
            rule["approver_role"] = rnd.choice(["client_admin", "operator"])
        if effect == "redact":
            rule["redact_fields"] = ["email"]
        rules.append(rule)
    # Broad allow rules per operation, as a vendor pack ships them.
    rules += [
        {
            "key": f"allow_{op}",
            "name": f"Allow {op}",
            "layer": "vendor",
            "effect": "allow",
            "message": "ok",
            "selector": {"operations": [op]},
        }
        for op in OPERATIONS
    ]
    return rules


def _action(rnd: random.Random) -> tuple[dict, dict]:
    action: dict[str, Any] = {
        "tool": rnd.choice(TOOLS),
        "operation": rnd.choice(OPERATIONS),
        "entity": rnd.choice(ENTITIES),
        "params": {
            "id": f"R-{rnd.randint(1, 9999)}",
            "amount": rnd.randint(0, 200000),
            "currency": rnd.choice(["EUR", "USD"]),
        },
        "target_ids": [f"R-{rnd.randint(1, 9999)}" for _ in range(rnd.randint(0, 3))],
    }
    if rnd.random() < 0.2:
        action["params"]["priority"] = rnd.choice(["low", "critical"])
    context = {
        "agent": {"variant": rnd.choice(VARIANTS), "version": "1.2.0", "deployment": "helpdesk"},
        "principal": {
            "kind": "user",
            "user": "u@example.com",
            "role": rnd.choice(["operator", "client_admin"]),
        },
        "tenant": {"slug": "acme", "jurisdiction": "EU", "attributes": {}},
        "input": {"injection": round(rnd.random(), 2), "flags": []},
        "data": {"classification": ["internal"], "pii": rnd.choice([[], ["email"], ["iban"]])},
        "trace": {"steps": rnd.randint(0, 70), "cost": 0.01, "depth": 1},
        "time": {
            "now": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
            "weekday": 1,
            "hour": 10,
            "business_hours": rnd.random() < 0.7,
        },
    }
    return action, context


class Command(BaseCommand):
    help = "Benchmark the governance engine: compile time and p50/p99 decision latency."

    def add_arguments(self, parser):
        parser.add_argument("--rules", type=int, default=1000)
        parser.add_argument("--actions", type=int, default=20000)
        parser.add_argument("--seed", type=int, default=4)

    def handle(self, *args, **options):
        rnd = random.Random(options["seed"])  # noqa: S311 — synthetic data, not security
        rules = _rules(options["rules"], rnd)
        allowlist = set(TOOLS[:36])  # a few tools are outside the allowlist: zero-trust denials
        engine.clear_cache()
        started = time.perf_counter()
        compiled = engine.compile_ruleset(rules, allowlist=allowlist)
        compile_ms = (time.perf_counter() - started) * 1000
        self.stdout.write(f"compile: rules={len(rules)} ms={compile_ms:.1f}")

        samples = [_action(rnd) for _ in range(options["actions"])]
        counter = lambda key, window: 3  # noqa: E731 — in-memory stand-in for Redis
        for action, context in samples[:2000]:  # warm-up: fills the candidate index
            engine.evaluate(compiled, action, context, rate_counter=counter)
        latencies = []
        effects: Counter[str] = Counter()
        candidates = 0
        for action, context in samples:
            began = time.perf_counter_ns()
            decision = engine.evaluate(compiled, action, context, rate_counter=counter)
            latencies.append((time.perf_counter_ns() - began) / 1000)
            effects[decision.effect] += 1
            candidates += decision.evaluated_count
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        self.stdout.write(
            f"evaluate: actions={len(samples)} p50_us={p50:.1f} p99_us={p99:.1f} "
            f"mean_us={statistics.fmean(latencies):.1f} candidates_mean={candidates / len(samples):.1f}"
        )
        self.stdout.write("effects: " + " ".join(f"{k}={v}" for k, v in sorted(effects.items())))
