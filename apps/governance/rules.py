"""The governance rule format and its checks (no ORM): what a rule is, and what a publishable one must be.

A rule extends the factory's policy-pack rule (`apps.factory.policy.PolicyRule`:
key, name, selector, CEL condition, effect, approver role, redact fields,
message, severity) with the fields a tenant ruleset needs: the layer it belongs
to, its mode (`enforce` or `shadow`), its fail mode and its source.

Checks that need the CEL compiler (syntax with position, cost bound, variables
against the context schema) live here too, so the engine, the publish path and
the policy-pack editor all give the same answers.
"""

from __future__ import annotations

import re
from typing import Literal

import cel
from pydantic import Field, TypeAdapter, ValidationError, model_validator

from apps.core.exceptions import ApplicationError
from apps.factory.policy import PolicyRule

LAYERS = ("vendor", "partner", "client")
# Effects a client admin may add: only ones that make the decision stricter.
CLIENT_EFFECTS = frozenset({"deny", "require_approval", "redact"})

# The variables every condition can read and their fields (documented for rule authors in
# apps.governance.context.CONTEXT_DOC, shown in the editor). Fields below these (action.params.*,
# tenant.attributes.*) are free-form maps and are not checked.
CONTEXT_SCHEMA: dict[str, frozenset[str]] = {
    "action": frozenset({"tool", "operation", "entity", "params", "target_ids"}),
    "agent": frozenset({"variant", "version", "deployment", "deployment_name"}),
    "principal": frozenset({"kind", "id", "role", "channel"}),
    "tenant": frozenset(
        {"slug", "name", "jurisdiction", "timezone", "domains", "allowed_hosts", "attributes"}
    ),
    "input": frozenset({"injection", "flags"}),
    "data": frozenset({"classification", "fields", "pii"}),
    "trace": frozenset({"steps", "cost", "tokens", "depth"}),
    "time": frozenset({"now", "weekday", "hour", "business_hours"}),
}
CONTEXT_VARIABLES = frozenset(CONTEXT_SCHEMA)
# Functions we add to CEL's standard library.
CUSTOM_FUNCTIONS = frozenset({"rate"})

# Cost bound, checked when a ruleset is compiled or published: CEL always terminates, but a long or
# deeply nested expression, or nested comprehensions over big lists, can still be slow on every action.
MAX_CONDITION_LENGTH = 1000
# Rules one author's list may hold (a ruleset version, a policy pack); a compiled ruleset layers
# a pack's rules with a version's and is not bounded by it.
MAX_RULES = 1000
MAX_NESTING_DEPTH = 12
MAX_COMPREHENSIONS = 3

_FIELD_RE = re.compile(r"(?<![\w.])(" + "|".join(CONTEXT_SCHEMA) + r")\s*\.\s*([A-Za-z_]\w*)")
_MACRO_RE = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


class RulesetError(ApplicationError):
    """An invalid rule or ruleset; `errors` lists {path, message} (path like `rules[3].condition`)."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['path'] or '(ruleset)'}: {e['message']}" for e in errors))
        self.errors = errors


class GovernanceRule(PolicyRule):
    """One rule of a layered ruleset: the policy-pack rule plus layer, mode, fail mode and source."""

    layer: Literal["vendor", "partner", "client"] = "partner"
    mode: Literal["enforce", "shadow"] = "enforce"
    # closed: a condition that errors counts as matched for deny/require_approval/redact and as not
    # matched for allow (the safe outcome either way); open: an error never matches.
    fail_mode: Literal["closed", "open"] = "closed"
    source: Literal["policy_pack", "manual", "document"] = "manual"
    source_ref: str = Field(default="", max_length=200)
    # How long a held action waits for its approver before it expires.
    approval_ttl_minutes: int = Field(default=1440, ge=1, le=60 * 24 * 30)

    @model_validator(mode="after")
    def _layer_rules(self) -> GovernanceRule:
        if self.layer == "client" and self.effect not in CLIENT_EFFECTS:
            raise ValueError(
                "client rules can only make decisions stricter (deny, require_approval or redact)"
            )
        if self.layer == "client" and self.fail_mode != "closed":
            raise ValueError("client rules fail closed")
        return self


_RULES = TypeAdapter(list[GovernanceRule])


def _strip_strings(expression: str) -> str:
    return _STRING_RE.sub("''", expression)


def nesting_depth(expression: str) -> int:
    """The deepest bracket nesting in a CEL expression, ignoring brackets inside string literals."""
    depth = deepest = 0
    for char in _strip_strings(expression):
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def check_condition(expression: str) -> tuple[cel.Program | None, list[str]]:
    """Compile one condition and check it against the cost bound and the context schema.

    Returns the program (None when it cannot be compiled) and the error messages (empty when the
    condition is fine); a syntax error's
    message carries the line and column from the CEL parser.
    """
    if len(expression) > MAX_CONDITION_LENGTH:
        return None, [
            f"the condition is {len(expression)} characters long; the limit is {MAX_CONDITION_LENGTH}"
        ]
    depth = nesting_depth(expression)
    if depth > MAX_NESTING_DEPTH:
        return None, [f"the condition nests {depth} levels deep; the limit is {MAX_NESTING_DEPTH}"]
    stripped = _strip_strings(expression)
    macros = _MACRO_RE.findall(stripped)
    if len(macros) > MAX_COMPREHENSIONS:
        return None, [f"the condition uses {len(macros)} list macros; the limit is {MAX_COMPREHENSIONS}"]
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError, TypeError) as exc:
        return None, [f"CEL syntax error: {exc}"]
    # Comprehension variables (the `i` in `xs.all(i, ...)`) are reported as variables too.
    unknown = sorted(set(program.variables()) - CONTEXT_VARIABLES - set(macros))
    if unknown:
        known = ", ".join(sorted(CONTEXT_VARIABLES))
        return None, [f"unknown variable {', '.join(unknown)}; a condition can read {known}"]
    shadowed = set(macros)  # a comprehension variable may reuse a context name
    wrong = sorted(
        {
            f"{variable}.{name}"
            for variable, name in _FIELD_RE.findall(stripped)
            if variable not in shadowed and name not in CONTEXT_SCHEMA[variable]
        }
    )
    if wrong:
        variable = wrong[0].split(".")[0]
        fields = ", ".join(sorted(CONTEXT_SCHEMA[variable]))
        return None, [f"unknown field {', '.join(wrong)}; {variable} has {fields}"]
    return program, []


def validate_rules(
    data,
    *,
    layers: frozenset[str] = frozenset(LAYERS),
    check_conditions: bool = True,
    max_rules: int | None = MAX_RULES,
) -> list[dict]:
    """Validate a list of governance rules and return their normalised form.

    `layers` limits which layers the list may hold (a client draft holds partner and client rules;
    vendor rules come from the deployed version's policy pack). Raises RulesetError listing every
    problem with its path.
    """
    if max_rules is not None and isinstance(data, list) and len(data) > max_rules:
        raise RulesetError([{"path": "rules", "message": f"at most {max_rules} rules"}])
    try:
        rules = _RULES.validate_python(data)
    except ValidationError as exc:
        raise RulesetError(
            [
                {
                    "path": "rules"
                    + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]),
                    "message": err["msg"].removeprefix("Value error, "),
                }
                for err in exc.errors()
            ]
        ) from None
    errors: list[dict] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.key in seen:
            errors.append({"path": f"rules[{i}].key", "message": f"the rule key '{rule.key}' is used twice"})
        seen.add(rule.key)
        if rule.layer not in layers:
            errors.append(
                {"path": f"rules[{i}].layer", "message": f"{rule.layer} rules cannot be stored here"}
            )
        if check_conditions and rule.condition:
            for message in check_condition(rule.condition)[1]:
                errors.append({"path": f"rules[{i}].condition", "message": message})
    if errors:
        raise RulesetError(errors)
    return [rule.model_dump(mode="json") for rule in rules]


def vendor_rules(pack_rules: list[dict]) -> list[dict]:
    """A policy pack's rules as locked vendor-layer governance rules (validated, conditions not re-checked).

    Pack rules were validated by the factory when the pack was published; their conditions are
    compiled by the engine, and one that does not compile fails closed there.
    """
    return validate_rules(
        [{**rule, "layer": "vendor", "source": "policy_pack"} for rule in pack_rules],
        layers=frozenset({"vendor"}),
        check_conditions=False,
    )
