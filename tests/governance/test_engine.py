"""The engine's semantics table: zero trust, precedence, layers, fail-closed errors, shadow, determinism."""

import pytest

from apps.governance.engine import compile_ruleset, evaluate, read_paths
from apps.governance.rules import RulesetError, validate_rules


def rule(key, effect, *, condition=None, layer="partner", mode="enforce", **extra):
    data = {
        "key": key,
        "name": key,
        "effect": effect,
        "message": f"{key} decided",
        "layer": layer,
        "mode": mode,
    }
    if condition:
        data["condition"] = condition
    if effect == "require_approval":
        data.setdefault("approver_role", extra.pop("approver_role", "operator"))
    if effect == "redact":
        data.setdefault("redact_fields", extra.pop("redact_fields", ["email"]))
    return {**data, **extra}


ALLOW = rule("allow_all", "allow")
ACTION = {
    "tool": "db.update",
    "operation": "update",
    "entity": "ticket",
    "params": {"id": "T-1", "amount": 50},
}
CONTEXT = {"trace": {"steps": 3}, "principal": {"role": "operator"}, "agent": {"variant": "itsm"}}


def decide(rules, action=ACTION, context=CONTEXT, allowlist=frozenset({"db.update", "db.query"}), **kw):
    return evaluate(compile_ruleset(rules, allowlist=allowlist), action, context, **kw)


@pytest.mark.parametrize(
    ("rules", "effect", "deciding"),
    [
        ([], "deny", None),  # no rule, no action
        ([ALLOW], "allow", "allow_all"),
        ([rule("only_reads", "allow", selector={"operations": ["read"]})], "deny", None),
        ([ALLOW, rule("d", "deny")], "deny", "d"),
        ([ALLOW, rule("h", "require_approval")], "require_approval", "h"),
        ([ALLOW, rule("r", "redact")], "redact", "r"),
        ([ALLOW, rule("d", "deny"), rule("h", "require_approval"), rule("r", "redact")], "deny", "d"),
        ([ALLOW, rule("h", "require_approval"), rule("r", "redact")], "require_approval", "h"),
        ([rule("r", "redact")], "deny", None),  # redact alone allows nothing
        ([rule("h", "require_approval")], "require_approval", "h"),  # held even without an allow
        ([ALLOW, rule("d", "deny", condition="action.params.amount > 100")], "allow", "allow_all"),
        ([ALLOW, rule("d", "deny", condition="action.params.amount > 10")], "deny", "d"),
    ],
)
def test_precedence_and_zero_trust(rules, effect, deciding):
    decision = decide(rules)
    assert (decision.effect, decision.deciding_rule) == (effect, deciding)
    if deciding is None:
        assert decision.layer == "zero_trust" and decision.reason


def test_tool_outside_the_allowlist_is_denied_whatever_the_rules():
    decision = decide([ALLOW], action={**ACTION, "tool": "shell.exec"})
    assert decision.effect == "deny" and decision.layer == "zero_trust" and "allowlist" in decision.reason


@pytest.mark.parametrize(
    ("effect", "matched_on_error"),
    [("deny", True), ("require_approval", True), ("redact", True), ("allow", False)],
)
@pytest.mark.parametrize(
    "condition",
    ["action.params.missing > 1", "action.params.amount / 0 > 1", "action.tool + 1 == 2", "action.tool"],
)
def test_errors_fail_closed(effect, matched_on_error, condition):
    rules = [
        rule("base", "allow", condition="action.params.amount < 0"),
        rule("x", effect, condition=condition),
    ]
    decision = decide(rules)
    assert ("x" in decision.matched) is matched_on_error
    assert [key for key, _ in decision.errors] == ["x"]
    if effect == "allow":
        assert decision.effect == "deny"


def test_fail_open_rule_does_not_match_on_error():
    decision = decide([ALLOW, rule("d", "deny", condition="action.params.missing", fail_mode="open")])
    assert decision.effect == "allow" and decision.errors


def test_missing_context_variable_fails_closed():
    decision = decide([ALLOW, rule("d", "deny", condition="principal.role == 'viewer'")], context={})
    assert decision.effect == "deny" and decision.errors


def test_layers_vendor_decides_before_partner_and_client():
    rules = [
        rule("client_deny", "deny", layer="client"),
        rule("partner_deny", "deny"),
        rule("vendor_deny", "deny", layer="vendor"),
        ALLOW,
    ]
    decision = decide(rules)
    assert decision.deciding_rule == "vendor_deny" and decision.layer == "vendor"
    assert decide([*rules[:2], ALLOW]).layer == "partner"
    assert decide([*rules[:1], ALLOW]).layer == "client"


def test_partner_allow_cannot_override_vendor_deny():
    decision = decide([rule("vendor_deny", "deny", layer="vendor"), rule("partner_allow", "allow")])
    assert decision.effect == "deny" and decision.layer == "vendor"


def test_client_rules_cannot_allow():
    with pytest.raises(RulesetError) as exc:
        validate_rules([rule("c", "allow", layer="client")])
    assert "stricter" in str(exc.value)
    validate_rules([rule("c", e, layer="client") for e in ("deny", "require_approval", "redact")][:1])


def test_stronger_approver_and_union_of_redactions():
    rules = [
        ALLOW,
        rule("op", "require_approval", approver_role="operator"),
        rule("admin", "require_approval", approver_role="client_admin"),
    ]
    assert decide(rules).approver_role == "client_admin"
    redacted = decide(
        [ALLOW, rule("a", "redact", redact_fields=["email"]), rule("b", "redact", redact_fields=["phone"])]
    )
    assert redacted.effect == "redact" and redacted.redact_fields == ("email", "phone")


@pytest.mark.parametrize("shadow_effect", ["deny", "require_approval", "redact", "allow"])
def test_shadow_rules_never_change_the_decision(shadow_effect):
    enforced = [ALLOW, rule("h", "require_approval", condition="action.params.amount > 10")]
    base = decide(enforced)
    with_shadow = decide(
        [
            *enforced,
            rule("s", shadow_effect, mode="shadow"),
            rule("s2", "deny", mode="shadow", condition="x.y"),
        ]
    )
    assert (with_shadow.effect, with_shadow.deciding_rule, with_shadow.matched) == (
        base.effect,
        base.deciding_rule,
        base.matched,
    )
    assert "s" in with_shadow.shadow.matched
    assert with_shadow.shadow.changed == (shadow_effect == "deny" or True)  # s2 errors → matched → deny


def test_shadow_report_says_when_it_would_change():
    decision = decide([ALLOW, rule("s", "deny", mode="shadow", condition="action.params.amount > 10")])
    assert decision.effect == "allow" and decision.shadow.effect == "deny" and decision.shadow.changed


def test_deterministic():
    rules = [
        ALLOW,
        rule("h", "require_approval", condition="trace.steps > 2"),
        rule("s", "deny", mode="shadow"),
    ]
    first = decide(rules)
    assert all(decide(rules) == first for _ in range(20))
    assert first.action_hash == decide(rules, action=dict(reversed(list(ACTION.items())))).action_hash


def test_rate_function_uses_the_injected_counter():
    rules = [ALLOW, rule("limit", "deny", condition="rate('tool:' + action.tool, duration('60s')) > 5")]
    calls = []
    assert decide(rules, rate_counter=lambda key, window: calls.append((key, window)) or 3).effect == "allow"
    assert calls == [("tool:db.update", 60)]
    assert decide(rules, rate_counter=lambda key, window: 9).effect == "deny"
    assert decide(rules).effect == "deny"  # no counter: an error, fails closed


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("action.params.amount >", "syntax"),
        ("x" * 1001, "limit"),
        ("(" * 13 + "true" + ")" * 13, "nests"),
        ("resource.is_internal", "unknown variable"),
    ],
)
def test_cost_bound_and_schema_checked_at_validation(condition, message):
    with pytest.raises(RulesetError) as exc:
        validate_rules([rule("r", "deny", condition=condition)])
    assert message in str(exc.value) and "rules[0].condition" in str(exc.value)


def test_compile_refuses_what_cannot_run():
    with pytest.raises(RulesetError):
        compile_ruleset([rule("r", "deny", condition="action.params.amount >")])


def test_read_paths():
    paths = read_paths(
        "action.params.amount > 5 && action.target_ids.size() > 1 && 'iban' in data.pii && size(trace) > 0",
        {"action", "data", "trace"},
    )
    assert paths == {("action", "params", "amount"), ("action", "target_ids"), ("data", "pii"), ("trace",)}


def test_read_paths_ignores_literals_and_comments():
    paths = read_paths(
        "action.tool == 'data.pii' && r\"trace.\\\\\" != '''it's input.x'''"
        " // principal.role\n && action.params.x",
        {"action", "data", "trace", "input", "principal"},
    )
    assert paths == {
        ("action", "tool"),
        ("action", "params", "x"),
        ("data",),
        ("trace",),
        ("input",),
        ("principal",),
    }
