"""Compiling a ruleset: validation, each distinct condition compiled once, and the in-process cache.

`compile_ruleset` orders rules by layer, compiles every condition in its original and flattened
forms (handing out the ruleset's slots), and builds the CompiledRuleset, cached by `ruleset_key`,
a hash of the rules and the allowlist.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

import cel

from ..rules import RulesetError, check_condition, validate_rules
from .decisions import LAYER_RANK
from .index import _SELECTOR_DIMENSIONS, CompiledRule, CompiledRuleset
from .paths import _SLOT_PREFIX, _compile_flat, _Slot, read_paths

_MAX_CACHED_RULESETS = 128
_cache: OrderedDict[str, CompiledRuleset] = OrderedDict()
_cache_lock = threading.Lock()


def ruleset_key(rules: list[dict], allowlist: Iterable[str] | None) -> str:
    """A content hash of a ruleset and its allowlist: the compiled-ruleset cache key."""
    payload = json.dumps(
        {"rules": rules, "allowlist": None if allowlist is None else sorted(allowlist)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _order(rules: list[dict]) -> list[dict]:
    # Vendor rules first, then partner, then client; a stable sort keeps authors' order within a layer.
    return sorted(rules, key=lambda rule: LAYER_RANK[rule.get("layer", "partner")])


def compile_ruleset(
    rules: list[dict], *, allowlist: set[str] | frozenset[str] | None = None, validate: bool = True
) -> CompiledRuleset:
    """Compile rules (all layers together) into a cached CompiledRuleset.

    `allowlist` is the deployed version's tool allowlist; None means no allowlist check (rule
    tests in isolation; the runtime always passes one). Raises RulesetError when a rule is invalid
    or a condition does not compile or exceeds the cost bound.
    """
    key = ruleset_key(rules, allowlist)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    checked = validate_rules(rules, check_conditions=False, max_rules=None) if validate else rules
    compiled_rules = []
    errors: list[dict] = []
    conditions: dict[str, tuple] = {}  # each distinct condition is compiled once
    selectors = []
    slots: dict[tuple[str, tuple[str, ...]], _Slot] = {}

    def slot_for(kind: str, path: tuple[str, ...]) -> _Slot:
        found = slots.get((kind, path))
        if found is None:
            index = len(slots)
            found = slots[kind, path] = _Slot(index, f"{_SLOT_PREFIX[kind]}{index}", kind, path)
        return found

    for position, rule in enumerate(_order(checked)):
        condition = rule.get("condition") or None
        program = None
        variables: frozenset[str] = frozenset()
        paths: frozenset[tuple[str, ...]] = frozenset()
        uses_rate = False
        flat = None
        if condition:
            if condition not in conditions:
                conditions[condition] = _compile_condition(condition, slot_for)
            hard, program, variables, paths, uses_rate, flat = conditions[condition]
            if hard:
                errors.extend({"path": f"rules[{rule['key']}].condition", "message": m} for m in hard)
                continue
        effect = rule["effect"]
        fail_open = rule.get("fail_mode", "closed") == "open"
        compiled_rules.append(
            CompiledRule(
                position=position,
                key=rule["key"],
                name=rule["name"],
                layer=rule.get("layer", "partner"),
                effect=effect,
                mode=rule.get("mode", "enforce"),
                message=rule["message"],
                severity=rule.get("severity", "medium"),
                approver_role=rule.get("approver_role"),
                redact_fields=tuple(rule.get("redact_fields") or ()),
                approval_ttl_minutes=rule.get("approval_ttl_minutes", 1440),
                program=program,
                variables=variables,
                paths=paths,
                uses_rate=uses_rate,
                error_matches=effect != "allow" and not fail_open,
                flat_program=None if flat is None else flat[0],
                flat=program is None or flat is not None,
                slot_mask=0 if flat is None else _slot_mask(flat[1]),
                enforced=rule.get("mode", "enforce") == "enforce",
                native=None if flat is None else flat[2],
            )
        )
        selectors.append(
            {d: frozenset((rule.get("selector") or {}).get(d) or ()) for d in _SELECTOR_DIMENSIONS}
        )
    if errors:
        raise RulesetError(errors)
    frozen_allowlist = None if allowlist is None else frozenset(allowlist)
    ordered_slots = tuple(sorted(slots.values(), key=lambda slot: slot.index))
    compiled = CompiledRuleset(key, tuple(compiled_rules), selectors, frozen_allowlist, ordered_slots)
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > _MAX_CACHED_RULESETS:
            _cache.popitem(last=False)
    return compiled


def _compile_condition(condition: str, slot_for: Callable[[str, tuple[str, ...]], _Slot]) -> tuple:
    """(errors, program, variables, paths, uses rate, flattened form) of one condition.

    Only what cannot run at all is an error here: unknown variables and fields are reported by the
    publish checks, and at run time they error and fail closed.
    """
    program, messages = check_condition(condition)
    hard = [m for m in messages if not m.startswith(("unknown variable", "unknown field"))]
    if hard:
        return hard, None, frozenset(), frozenset(), False, None
    if program is None:
        program = cel.compile(condition)
    variables = frozenset(program.variables())
    paths = read_paths(condition, variables)
    flat = _compile_flat(condition, variables, paths, slot_for)
    return [], program, variables, paths, "rate" in program.functions(), flat


def _slot_mask(slots: Iterable[_Slot]) -> int:
    mask = 0
    for slot in slots:
        mask |= 1 << slot.index
    return mask


def clear_cache() -> None:
    """Forget every compiled ruleset (tests, benchmarks)."""
    with _cache_lock:
        _cache.clear()
