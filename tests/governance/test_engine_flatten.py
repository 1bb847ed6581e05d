"""The engine's fast path: conditions flattened over scalar slots, and the simple ones decided in Python.

Every test holds the fast path to the original engine's behaviour, which is plain CEL on the pruned
variables: the same matches, the same errors and the same error messages.
"""

import math

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.governance import engine
from apps.governance.engine import compile_ruleset, evaluate, read_paths
from apps.governance.engine.evaluation import _RateReader
from apps.governance.engine.native import _U, _native
from apps.governance.engine.paths import _flatten, _minimal_paths, _pruned, _Slot

ALLOW = {"key": "allow_all", "name": "allow_all", "effect": "allow", "message": "ok"}
ROOTS = frozenset({"action", "data", "trace", "principal"})


def rule(key, effect, condition, **extra):
    data = {"key": key, "name": key, "effect": effect, "message": key, "condition": condition}
    if effect == "require_approval":
        data["approver_role"] = "operator"
    if effect == "redact":
        data["redact_fields"] = ["email"]
    return {**data, **extra}


def original(condition, action, context):
    """What the engine did before the fast path: the condition on its pruned variables."""
    program = cel.compile(condition)
    paths = read_paths(condition, set(program.variables()))
    env = {name: value for name, value in context.items() if value is not None}
    env["action"] = action
    try:
        cel_context = cel.Context(variables=_pruned(env, _minimal_paths(set(paths))))
    except (ValueError, TypeError) as exc:
        return None, f"the context cannot be read by CEL: {exc}"
    try:
        result = program.execute(cel_context)
    except KeyError as exc:
        return None, f"no such field: {exc.args[0]}"
    except Exception as exc:
        return None, str(exc) or type(exc).__name__
    if isinstance(result, bool):
        return result, None
    return None, f"the condition returned {type(result).__name__}, not a bool"


def decide(condition, action, context, effect="deny"):
    """(matched?, error message or None) for one rule with `condition`, next to an allow-all rule."""
    decision = evaluate(compile_ruleset([ALLOW, rule("x", effect, condition)]), action, context)
    errors = dict(decision.errors)
    return "x" in decision.matched, errors.get("x")


def action_with(**params):
    return {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": params,
        "target_ids": [],
    }


CASES = [
    # Missing fields error where the original errors, with its message.
    ("action.params.missing > 1", {"amount": 5}, {}),
    ("action.params.meta.x == 1", {}, {}),
    ("principal.role == 'operator'", {}, {}),
    ("principal.role == 'operator'", {}, {"principal": None}),
    # has(): present, absent, present as null, on a scalar, under a missing map.
    ("has(action.params.priority) && action.params.priority == 'critical'", {"priority": "critical"}, {}),
    ("has(action.params.priority) && action.params.priority == 'critical'", {}, {}),
    ("has(action.params.priority)", {"priority": None}, {}),
    ("has(action.params.amount.x)", {"amount": 3}, {}),
    ("has(action.params.meta.x)", {}, {}),
    ("has(action.params.meta.x)", {"meta": {"x": [1, {"y": None}]}}, {}),
    # Maps and scalars along a path.
    ("action.params.meta.x == 1", {"meta": {"x": 1}}, {}),
    ("action.params.meta.x == 1", {"meta": 5}, {}),
    ("action.params.meta.x == 1", {"meta": {"y": 1}}, {}),
    ("action.params.meta == {'x': 1}", {"meta": {"x": 1}}, {}),
    ("size(action.params.meta) == 2", {"meta": {"x": 1, "y": 2}}, {}),
    ("action.params.size() > 1", {"a": 1, "b": 2}, {}),
    # Lists: indexing, size, membership of mixed kinds.
    ("action.params.ids[0] == 'a'", {"ids": []}, {}),
    ("action.params.ids[0] == 'a'", {"ids": ["a"]}, {}),
    ("action.params.ids.size() > 1", {"ids": ["a", "b"]}, {}),
    ("size(action.params.ids) > 1", {"ids": "ab"}, {}),
    ("'x' in data.pii", {}, {"data": {"pii": ["x", 1]}}),
    ("1 in data.pii", {}, {"data": {"pii": ["x", 1]}}),
    ("'x' in data.pii", {}, {"data": {"pii": "x"}}),
    # A string literal that reads like a path is a string.
    ("action.params.name == 'action.params.amount'", {"name": "action.params.amount"}, {}),
    ('action.params.name != "has(action.params.x)"', {"name": "a"}, {}),
    # Comprehension variables are not context variables.
    ("action.params.ids.exists(t, t == action.params.name)", {"ids": ["a", "b"], "name": "b"}, {}),
    ("action.params.ids.all(data, data != 'a')", {"ids": ["a"]}, {"data": {"pii": []}}),
    # Kinds CEL compares its own way: Python must not decide these.
    ("size(action.params.name) == 2", {"name": "é"}, {}),
    ("action.params.x == null", {"x": None}, {}),
    ("action.params.amount == 1.0", {"amount": 1}, {}),
    ("action.params.amount > 1", {"amount": 2**63 + 1}, {}),
    ("action.params.amount > 0.0", {"amount": math.nan}, {}),
    ("action.params.amount == action.params.amount", {"amount": math.nan}, {}),
    ("1.0 / action.params.amount < 0.0", {"amount": -0.0}, {}),
    ("action.params.flag == 1", {"flag": True}, {}),
    ("!action.params.flag", {"flag": 0}, {}),
    ("action.params.flag || action.params.missing", {"flag": True}, {}),
    ("action.params.missing || action.params.flag", {"flag": True}, {}),
    ("action.params.missing && action.params.flag", {"flag": False}, {}),
    ("action.params.name > 'a'", {"name": "é"}, {}),
    ("action.tool", {}, {}),
    ("action.params.amount / action.params.divisor > 2", {"amount": 4, "divisor": 0}, {}),
]


@pytest.mark.parametrize("effect", ["deny", "allow"])
@pytest.mark.parametrize(("condition", "params", "context"), CASES)
def test_fast_path_matches_the_original(condition, params, context, effect):
    action = action_with(**params)
    result, message = original(condition, action, context)
    matched_on_error = effect != "allow"
    expected = (matched_on_error if message is not None else result, message)
    assert decide(condition, action, context, effect) == expected


def test_flatten_rewrites_reads_into_slots():
    slots: dict = {}

    def slot_for(kind, path):
        return slots.setdefault((kind, path), _Slot(len(slots), f"s{len(slots)}", kind, path))

    source, used = _flatten(
        "action.params.amount > 5 && has(action.params.x) && action.target_ids.size() > 1"
        " && size(data.pii) == 0 && action.params.name.startsWith('a.b') && 'trace.steps' != 'x'",
        ROOTS,
        slot_for,
    )
    assert source == "s0 > 5 && s1 && s2 > 1 && s3 == 0 && s4.startsWith('a.b') && 'trace.steps' != 'x'"
    assert [(slot.kind, slot.path) for slot in used] == [
        ("value", ("action", "params", "amount")),
        ("has", ("action", "params", "x")),
        ("size", ("action", "target_ids")),
        ("size", ("data", "pii")),
        ("value", ("action", "params", "name")),
    ]


@pytest.mark.parametrize(
    "condition",
    [
        "action.target_ids.exists(action, action == 'a')",  # shadows a context variable
        "cel.bind(data, 1, data > 0)",
        "action.params.__v0 > 1",  # could clash with a generated name
    ],
)
def test_flatten_refuses_what_it_cannot_rewrite_safely(condition):
    assert _flatten(condition, ROOTS, lambda kind, path: None) is None


def test_an_unflattened_condition_runs_the_original_way():
    rules = [ALLOW, rule("x", "deny", "action.params.ids.exists(action, action == 'a')")]
    compiled = compile_ruleset(rules)
    assert not compiled.rules[1].flat
    assert evaluate(compiled, action_with(ids=["a"]), {}).effect == "deny"
    assert evaluate(compiled, action_with(ids=["b"]), {}).effect == "allow"


@pytest.mark.parametrize(
    "params",
    [
        {"amount": {1, 2}},  # a set: CEL cannot take it
        {"amount": "\ud800"},  # a lone surrogate, as json.loads can produce
        {"priority": {1}},  # only has() reads it, yet the original copies it into CEL
        {"ids": [object()]},  # only size() reads it
    ],
)
def test_a_value_cel_refuses_fails_every_condition_as_before(params):
    rules = [
        ALLOW,
        rule("a", "deny", "action.params.amount > 5"),
        rule("h", "redact", "has(action.params.priority)"),
        rule("n", "require_approval", "action.params.ids.size() > 9"),
    ]
    action = action_with(**{"amount": 1, "ids": [], **params})
    decision = evaluate(compile_ruleset(rules), action, {})
    assert [key for key, _ in decision.errors] == ["a", "h", "n"]
    assert all(message.startswith("the context cannot be read by CEL") for _, message in decision.errors)
    assert decision.effect == "deny"


def test_rate_is_read_once_per_key_and_window_in_a_decision():
    rules = [
        ALLOW,
        rule("a", "deny", "rate('tool:' + action.tool, 60) > 5"),
        rule("b", "require_approval", "rate('tool:' + action.tool, 60) > 2 && action.params.missing"),
        rule("c", "redact", "rate('tool:' + action.tool, 3600) > 100"),
    ]
    calls = []

    def counter(key, window):
        calls.append((key, window))
        return 3

    decision = evaluate(compile_ruleset(rules), action_with(), {}, rate_counter=counter)
    assert calls == [("tool:db.update", 60), ("tool:db.update", 3600)]
    assert decision.effect == "require_approval" and [key for key, _ in decision.errors] == ["b"]


def test_a_failing_counter_is_called_once_and_fails_closed():
    rules = [ALLOW, rule("a", "deny", "rate('k', 60) > 5"), rule("b", "deny", "rate('k', 60) < 5")]
    calls = []

    def counter(key, window):
        calls.append(key)
        raise ConnectionError("redis is down")

    decision = evaluate(compile_ruleset(rules), action_with(), {}, rate_counter=counter)
    assert calls == ["k"]
    assert decision.effect == "deny" and [key for key, _ in decision.errors] == ["a", "b"]
    assert all("redis is down" in message for _, message in decision.errors)


def test_decisions_are_ordinary_frozen_dataclasses():
    import dataclasses

    decision = evaluate(compile_ruleset([ALLOW]), action_with(), {})
    assert decision == engine.Decision(
        **{f.name: getattr(decision, f.name) for f in dataclasses.fields(decision)}
    )
    assert dataclasses.replace(decision, effect="deny").effect == "deny"
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.effect = "deny"  # type: ignore[misc]


# --- The Python form of simple conditions -------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "r'a' == __v0",  # raw string
        "'a\\'b' == __v0",  # escapes
        "'''a''' == __v0",  # triple quotes
        "__v0 > 1u",  # uint
        "__v0 > 0x10",  # hex
        "__v0 > 9223372036854775808",  # beyond CEL's int
        "__v0 < __v1 < 3",  # chained relation
        "__v0 + 1 > 2",
        "__v0.size() > 1",
        "size(__v0) > 1",
        "__v0 ? true : false",
        "rate(__v0, __v1) > 1",
        "// a comment\n__v0",
    ],
)
def test_python_form_declines_what_it_does_not_cover(source):
    assert _native(source) is None


def test_conditions_of_one_shape_share_their_code():
    first, second = _native("__v0 > 300 && __v1 == 'EUR'"), _native("__v0 > 5 && __v1 == 'USD'")
    assert first is not None and second is not None and first.__code__ is second.__code__
    assert (first({"__v0": 301, "__v1": "EUR"}, None), second({"__v0": 301, "__v1": "EUR"}, None)) == (
        True,
        False,
    )


SLOTS = ["__v0", "__v1", "__v2"]
i64 = st.integers(-(2**63), 2**63 - 1)
slot_values = st.one_of(
    st.integers(-3, 3),
    i64,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, -0.0, 0.0, 1.5, 2.0, math.inf, -math.inf]),
    st.sampled_from(["a", "b", "é", "", "EUR"]),
    st.booleans(),
    st.none(),
    st.lists(
        st.one_of(st.integers(-2, 2), st.sampled_from(["a", "b"]), st.booleans(), st.floats()), max_size=3
    ),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2),
)
literals = st.one_of(
    st.integers(-3, 3).map(str),
    i64.map(lambda n: f"-{-n}" if n < 0 else str(n)).filter(lambda text: text != "-9223372036854775808"),
    st.sampled_from(["0.0", "-0.0", "1.5", "2.0", "1e300", "-2.5e-3"]),
    st.sampled_from(["'a'", "'b'", '"é"', "''", "'EUR'"]),
    st.sampled_from(["true", "false"]),
    st.sampled_from(["[1, 2]", "['a', 'b']", "[1, 'a']", "[true]"]),
)
operands = st.one_of(st.sampled_from(SLOTS), literals)
comparisons = st.builds(
    lambda a, op, b: f"{a} {op} {b}",
    operands,
    st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in"]),
    operands,
)
rates = st.builds(
    lambda slot, op, n: f"rate('k:' + {slot}, 60) {op} {n}",
    st.sampled_from(SLOTS),
    st.sampled_from([">", "=="]),
    st.integers(0, 5),
)
conditions = st.recursive(
    st.one_of(comparisons, rates, st.sampled_from(SLOTS), st.sampled_from(["true", "false"])),
    lambda inner: st.one_of(
        inner.map(lambda c: f"!({c})"),
        st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["&&", "||"]), inner),
    ),
    max_leaves=4,
)


@settings(max_examples=1500, deadline=None)
@given(conditions, st.dictionaries(st.sampled_from(SLOTS), slot_values), st.integers(0, 5))
def test_python_decides_only_as_cel_would(source, values, count):
    check = _native(source)
    try:
        program = cel.compile(source)
    except ValueError:
        return  # not CEL at all
    if check is None:
        return
    rate = _RateReader(lambda key, window: count)
    answer = check(values, rate)
    if answer is _U:
        return
    assert type(answer) is bool
    assert program.execute(cel.Context(variables=values, functions={"rate": rate})) is answer


GRID_VALUES = [0, 1, -1, 2**63 - 1, 1.0, -0.0, 0.0, math.nan, math.inf, "a", "é", "", True, False, None]
GRID_VALUES += [[1], ["a"], [1, "a"], [1.0], {"a": 1}]
GRID_LITERALS = ["1", "-1", "1.0", "0.0", "-0.0", "'a'", "'é'", "true", "[1, 2]", "['a']", "[1, 'a']"]


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">=", "in"])
@pytest.mark.parametrize("literal", GRID_LITERALS)
def test_python_comparisons_agree_with_cel_on_every_kind(op, literal):
    for source in (f"__v0 {op} {literal}", f"{literal} {op} __v0"):
        check = _native(source)
        program = cel.compile(source)
        assert check is not None
        for value in GRID_VALUES:
            answer = check({"__v0": value}, None)
            if answer is not _U:
                assert program.execute(cel.Context(variables={"__v0": value})) is answer, (source, value)


@pytest.mark.parametrize("op", ["&&", "||"])
def test_python_logic_agrees_with_cel_whatever_the_other_side(op):
    sides = {"true": True, "false": False, "missing": None, "string": "x", "null": None}
    check = _native(f"__v0 {op} __v1")
    program = cel.compile(f"__v0 {op} __v1")
    for left, a in sides.items():
        for right, b in sides.items():
            values = {
                name: v for name, v, side in (("__v0", a, left), ("__v1", b, right)) if side != "missing"
            }
            answer = check(values, None)
            if answer is not _U:
                assert program.execute(cel.Context(variables=values)) is answer, (left, right)


json_values = st.recursive(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
        st.booleans(),
        st.none(),
        st.datetimes(),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_action_hash_is_the_sha256_of_the_canonical_json(action):
    import hashlib
    import json

    canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), default=str)
    assert engine.action_hash(action) == hashlib.sha256(canonical.encode()).hexdigest()
