"""Benchmark the governance engine: compile time and decision latency.

    python manage.py bench_governance --rules 1000 --actions 20000

Builds a synthetic ruleset (vendor, partner and client layers; selectors over
40 tools, 5 operations and 20 entities; most rules conditional, some reading
nested params, trace, input or time, a few shadow rules) and random actions
with a realistic context, all from a fixed seed. Times `compile_ruleset` with
an empty cache, then `evaluate` for every action (after a short warm-up that
fills the candidate index). Pure engine: no database, no Redis (rate() reads an
in-memory counter).

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
CONDITIONS = [
    "action.params.amount > {n}",
    "action.params.amount > {n} && action.params.currency == 'EUR'",
    "has(action.params.priority) && action.params.priority == 'critical'",
    "trace.steps > {s}",
    "input.injection > 0.{d}",
    "'iban' in data.pii",
    "!time.business_hours && action.params.amount > {n}",
    "principal.role == 'operator' && action.params.amount > {n}",
    "action.target_ids.size() > {s}",
    "rate('tool:' + action.tool, 60) > {s}",
]


def _rules(count: int, rnd: random.Random) -> list[dict]:
    rules = []
    for i in range(count):
        layer = rnd.choices(["vendor", "partner", "client"], weights=[2, 5, 3])[0]
        effects = (
            ["deny", "require_approval", "redact"]
            if layer == "client"
            else ["allow", "deny", "require_approval", "redact"]
        )
        effect = rnd.choice(effects)
        selector: dict[str, list[str]] = {
            "tools": rnd.sample(TOOLS, rnd.choice([1, 1, 2])) if rnd.random() < 0.9 else [],
            "operations": rnd.sample(OPERATIONS, 1) if rnd.random() < 0.5 else [],
            "entities": rnd.sample(ENTITIES, rnd.choice([1, 2])) if rnd.random() < 0.6 else [],
            "variants": [rnd.choice(VARIANTS)] if rnd.random() < 0.3 else [],
        }
        condition = None
        if rnd.random() < 0.85:
            condition = rnd.choice(CONDITIONS).format(
                n=rnd.randint(10, 100000), s=rnd.randint(1, 60), d=rnd.randint(1, 9)
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
    # Broad allow rules per operation, so decisions are not all zero-trust denials.
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
