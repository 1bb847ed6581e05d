"""Property test: the indexed, cached, flattened engine agrees with a plain reference evaluation.

The reference checks every rule's selector by hand and runs each condition with `cel.evaluate` on the
full variables, then applies the decided semantics directly. Conditions and values are chosen to reach
every path of the engine: flattened slots, has() and size() computed in Python, conditions decided in
Python, conditions CEL decides (mixed kinds, null, NaN, uints, lists of mixed kinds), missing fields
re-run in their original form, and comprehension variables and literals that look like paths.
"""

import cel
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.governance.engine import compile_ruleset, evaluate

TOOLS = ["db.query", "db.update", "notify.email"]
OPS = ["read", "update", "send"]
ENTITIES = ["ticket", "invoice"]
VARIANTS = ["itsm", "finance"]
CONDITIONS = [
    None,
    "action.params.amount > 50",
    "action.params.amount / action.params.divisor > 2",
    "has(action.params.priority) && action.params.priority == 'critical'",
    "action.params.priority == 'critical'",
    "trace.steps > 5",
    "'iban' in data.pii",
    "action.target_ids.size() > 1",
    "principal.role == 'operator'",
    "rate('t:' + action.tool, 60) > 2",
    "action.tool",
    "action.params.meta.x == 1",
    "has(action.params.meta.x) || size(action.params.meta) > 1",
    "action.params.flag == true || action.params.amount < 10",
    "!action.params.flag && action.params.amount >= -1",
    "action.params.name == 'action.params.amount'",
    "action.target_ids[0] == 'a'",
    "action.target_ids.exists(t, t == 'b')",
    "action.params.amount > 1.5",
    "action.params.amount == null || action.params.amount in [1, 'a', 2.5]",
    "action.params.name.startsWith('a')",
    "'a' in action.target_ids || data.pii.size() == 0",
    "action.params.amount < 9223372036854775807 && action.params.amount != 3",
    "action.params.name < 'b' || action.params.name == action.params.priority",
    "action.target_ids.exists(data, data == 'a')",  # shadows a context variable: not flattened
]


@st.composite
def rules(draw):
    out = []
    for i in range(draw(st.integers(0, 8))):
        layer = draw(st.sampled_from(["vendor", "partner", "client"]))
        effects = ["deny", "require_approval", "redact"] + ([] if layer == "client" else ["allow", "allow"])
        effect = draw(st.sampled_from(effects))
        rule = {
            "key": f"r{i}",
            "name": f"r{i}",
            "layer": layer,
            "effect": effect,
            "message": f"r{i}",
            "mode": draw(st.sampled_from(["enforce", "enforce", "shadow"])),
            "fail_mode": "closed"
            if layer == "client"
            else draw(st.sampled_from(["closed", "closed", "open"])),
            "condition": draw(st.sampled_from(CONDITIONS)),
            "selector": {
                "tools": draw(st.lists(st.sampled_from(TOOLS), max_size=2, unique=True)),
                "operations": draw(st.lists(st.sampled_from(OPS), max_size=1)),
                "entities": draw(st.lists(st.sampled_from(ENTITIES), max_size=1)),
                "variants": draw(st.lists(st.sampled_from(VARIANTS), max_size=1)),
            },
        }
        if effect == "require_approval":
            rule["approver_role"] = draw(st.sampled_from(["operator", "client_admin"]))
        if effect == "redact":
            rule["redact_fields"] = ["email"]
        out.append(rule)
    return out


# Values of every kind CEL converts (values CEL refuses are tested in test_engine_flatten.py: the
# reference converts the whole context, the engine only what the candidates read).
scalars = st.one_of(
    st.integers(-3, 3),
    st.integers(0, 100),
    st.integers(2**63 - 2, 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "critical", "low", "é", ""]),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2)
    ),
    max_leaves=4,
)
params = st.fixed_dictionaries(
    {"amount": st.one_of(st.integers(0, 100), values), "divisor": st.integers(0, 2)},
    optional={
        "priority": st.sampled_from(["low", "critical"]) | values,
        "flag": st.booleans() | values,
        "meta": st.fixed_dictionaries({}, optional={"x": values}) | values,
        "name": st.sampled_from(["a", "b", "action.params.amount"]) | values,
    },
)
actions = st.fixed_dictionaries(
    {
        "tool": st.sampled_from([*TOOLS, "shell.exec"]),
        "operation": st.sampled_from(OPS),
        "entity": st.sampled_from(ENTITIES),
        "params": params,
        "target_ids": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3) | values,
    }
)
contexts = st.fixed_dictionaries(
    {"agent": st.fixed_dictionaries({"variant": st.sampled_from(VARIANTS)})},
    optional={
        "trace": st.fixed_dictionaries({"steps": st.integers(0, 10) | values}),
        "data": st.fixed_dictionaries(
            {"pii": st.lists(st.sampled_from(["iban", "email"]), max_size=2) | values}
        ),
        "principal": st.fixed_dictionaries({"role": st.sampled_from(["operator", "client_admin"])}),
    },
)


def reference(rule_list, action, context, allowlist, counter):
    if action["tool"] not in allowlist:
        return "deny", (), ()
    layer_rank = {"vendor": 0, "partner": 1, "client": 2}
    ordered = sorted(rule_list, key=lambda r: layer_rank[r["layer"]])
    variables = {**context, "action": action, "rate": counter}
    matched = []
    errored = []
    for r in ordered:
        values = {
            "tools": action["tool"],
            "operations": action["operation"],
            "entities": action["entity"],
            "variants": context["agent"]["variant"],
        }
        if any(r["selector"][d] and values[d] not in r["selector"][d] for d in values):
            continue
        if r["condition"] is None:
            hit = True
        else:
            try:
                hit = cel.evaluate(r["condition"], variables)
                if not isinstance(hit, bool):
                    raise TypeError("not a bool")
            except Exception:
                hit = r["effect"] != "allow" and r["fail_mode"] == "closed"
                if r["mode"] == "enforce":
                    errored.append(r["key"])
        if hit and r["mode"] == "enforce":
            matched.append(r)
    effects = {r["effect"] for r in matched}
    if "deny" in effects:
        effect = "deny"
    elif "require_approval" in effects:
        effect = "require_approval"
    elif "allow" not in effects:
        effect = "deny"
    elif "redact" in effects:
        effect = "redact"
    else:
        effect = "allow"
    return effect, tuple(r["key"] for r in matched), tuple(errored)


@settings(max_examples=600, deadline=None)
@given(rules(), actions, contexts, st.integers(0, 5))
def test_engine_agrees_with_reference(rule_list, action, context, count):
    allowlist = frozenset(TOOLS)
    counter = lambda key, window: count  # noqa: E731
    decision = evaluate(
        compile_ruleset(rule_list, allowlist=allowlist), action, context, rate_counter=counter
    )
    errored = tuple(key for key, _ in decision.errors)
    assert (decision.effect, decision.matched, errored) == reference(
        rule_list, action, context, allowlist, counter
    )
    # Cached and indexed: a second evaluation is identical.
    again = evaluate(compile_ruleset(rule_list, allowlist=allowlist), action, context, rate_counter=counter)
    assert again == decision
