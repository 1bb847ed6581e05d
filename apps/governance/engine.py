"""The governance engine: deterministic decisions on proposed agent actions (pure Python + CEL, no ORM).

    compiled = compile_ruleset(rules, allowlist={"db.query", "db.update"})
    decision = evaluate(compiled, action, context, rate_counter=counter)

Semantics (issue 4, decided):

- Zero trust: an action is allowed only when its tool is in the allowlist, at least one `allow` rule
  matches and no `deny` / `require_approval` rule matches; otherwise it is denied, with the reason.
- Precedence: deny > require_approval > redact > allow. Among rules of the deciding effect, the
  first by layer (vendor, partner, client) and then by position decides.
- Errors fail closed: a condition that errors at run time counts as matched for deny,
  require_approval and redact rules and as not matched for allow rules (a rule may opt into
  `fail_mode: open`, where an error never matches); the decision records every error.
- Shadow rules are evaluated and reported in `decision.shadow`, never in the decision itself.
- Deterministic: the same compiled ruleset, action and context give the same decision (the only
  outside input is `rate()`, which reads counters the caller passes in).

Speed: each condition is compiled once per ruleset; rulesets are cached in-process by a hash of
their content; an index on variant/tool/operation/entity finds the candidate rules of an action
(memoised per combination), so only their conditions run; one `cel.Context` per evaluation holds
just the variables those conditions read (converting a variable to CEL costs ~1 µs per key).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import cel

from .rules import _STRING_RE, LAYERS, RulesetError, check_condition, validate_rules

# rate(key, window_seconds) -> how many times `key` happened in the last window.
RateCounter = Callable[[str, int], int]

EFFECT_ORDER = ("deny", "require_approval", "redact", "allow")
# Held actions: the stronger approver wins when several rules ask for approval.
APPROVER_RANK = {"client_admin": 0, "operator": 1}
LAYER_RANK = {layer: rank for rank, layer in enumerate(LAYERS)}
ZERO_TRUST = "zero_trust"

_SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")
_MAX_PLANS = 8192
_MAX_CACHED_RULESETS = 128


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule ready to run: its program (None when unconditional) and the variables it reads."""

    position: int
    key: str
    name: str
    layer: str
    effect: str
    mode: str
    message: str
    severity: str
    approver_role: str | None
    redact_fields: tuple[str, ...]
    approval_ttl_minutes: int
    program: cel.Program | None
    variables: frozenset[str]
    # The dotted paths the condition reads (("action", "params", "amount"), ...): the CEL context is
    # built from just these subtrees, since converting values to CEL costs ~1 µs per map key.
    paths: frozenset[tuple[str, ...]]
    uses_rate: bool
    # What an error in the condition means for this rule (fail closed unless fail_mode is open).
    error_matches: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    """The candidate rules for one (variant, tool, operation, entity) and what their conditions need."""

    rules: tuple[CompiledRule, ...]
    paths: tuple[tuple[str, ...], ...]
    uses_rate: bool


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """What the shadow rules would have done: their matches and the decision had they been enforced."""

    matched: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    effect: str
    deciding_rule: str | None
    changed: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one action; `elapsed_us` is left out of equality (timing is not a decision)."""

    effect: str
    reason: str
    deciding_rule: str | None
    layer: str | None
    matched: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    evaluated_count: int
    action_hash: str
    ruleset_key: str
    approver_role: str | None = None
    approval_ttl_minutes: int | None = None
    redact_fields: tuple[str, ...] = ()
    shadow: ShadowOutcome | None = None
    elapsed_us: float = field(default=0.0, compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect in ("allow", "redact")

    def as_dict(self) -> dict:
        """A JSON-ready form, for the decision log and the API."""
        shadow = self.shadow
        return {
            "effect": self.effect,
            "reason": self.reason,
            "deciding_rule": self.deciding_rule,
            "layer": self.layer,
            "matched": list(self.matched),
            "errors": [{"rule": key, "error": message} for key, message in self.errors],
            "evaluated_count": self.evaluated_count,
            "elapsed_us": round(self.elapsed_us, 1),
            "action_hash": self.action_hash,
            "ruleset_key": self.ruleset_key,
            "approver_role": self.approver_role,
            "approval_ttl_minutes": self.approval_ttl_minutes,
            "redact_fields": list(self.redact_fields),
            "shadow": None
            if shadow is None
            else {
                "matched": list(shadow.matched),
                "errors": [{"rule": key, "error": message} for key, message in shadow.errors],
                "effect": shadow.effect,
                "deciding_rule": shadow.deciding_rule,
                "changed": shadow.changed,
            },
        }


class CompiledRuleset:
    """A ruleset's rules compiled once, with the selector index; shared by every evaluation."""

    def __init__(
        self,
        key: str,
        rules: tuple[CompiledRule, ...],
        selectors: list[dict[str, frozenset[str]]],
        allowlist: frozenset[str] | None,
    ):
        self.key = key
        self.rules = rules
        self.allowlist = allowlist
        self._all = (1 << len(rules)) - 1
        # Per dimension: value → bitmask of rules naming it, plus the mask of rules that name none (any).
        self._index: list[tuple[dict[str, int], int]] = []
        for dimension in _SELECTOR_DIMENSIONS:
            by_value: dict[str, int] = {}
            any_mask = 0
            for rule, selector in zip(rules, selectors, strict=True):
                values = selector[dimension]
                if not values:
                    any_mask |= 1 << rule.position
                for value in values:
                    by_value[value] = by_value.get(value, 0) | (1 << rule.position)
            self._index.append((by_value, any_mask))
        self._plans: dict[tuple, _Plan] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def plan(self, variant, tool, operation, entity) -> _Plan:
        """The candidate rules for these selector values (memoised; the set of combinations is small)."""
        combo = (variant, tool, operation, entity)
        found = self._plans.get(combo)
        if found is not None:
            return found
        mask = self._all
        for (by_value, any_mask), value in zip(self._index, combo, strict=True):
            mask &= any_mask | (by_value.get(value, 0) if isinstance(value, str) else 0)
        candidates = []
        while mask:
            low = mask & -mask
            candidates.append(self.rules[low.bit_length() - 1])
            mask ^= low
        paths = _minimal_paths({path for rule in candidates for path in rule.paths})
        plan = _Plan(tuple(candidates), paths, any(rule.uses_rate for rule in candidates))
        if len(self._plans) >= _MAX_PLANS:
            # Selector values come from proposed actions; never let them grow the cache without bound.
            self._plans.clear()
        self._plans[combo] = plan
        return plan


# --- What a condition reads ---------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CHAIN_RE = re.compile(rf"(?<![\w.])({_IDENT})((?:\s*\.\s*{_IDENT})*)")
_SEGMENT_RE = re.compile(rf"\.\s*({_IDENT})")
_CALL_RE = re.compile(r"\s*\(")


def read_paths(condition: str, variables: Iterable[str]) -> frozenset[tuple[str, ...]]:
    """The dotted field paths a condition reads from its variables.

    `action.params.amount > 5 && action.target_ids.size() > 1` reads ("action", "params", "amount")
    and ("action", "target_ids"): a chain stops before a method call, and any other use (index,
    `in`, a bare variable) reads the whole subtree at the chain. Conservative by construction: a
    subtree is kept whole below the last plain field selection.
    """
    roots = set(variables)
    stripped = _STRING_RE.sub("''", condition)
    found: set[tuple[str, ...]] = set()
    for match in _CHAIN_RE.finditer(stripped):
        root, rest = match.group(1), match.group(2)
        if root not in roots:
            continue
        path = [root, *_SEGMENT_RE.findall(rest)]
        if len(path) > 1 and _CALL_RE.match(stripped, match.end()):
            path.pop()  # `action.target_ids.size()`: a method call; the chain ends at its receiver
        found.add(tuple(path))
    # A variable that only shows up in ways the pattern does not see is read whole.
    for name in roots - {path[0] for path in found}:
        found.add((name,))
    return frozenset(found)


def _minimal_paths(paths: set[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Drop every path that lies under a shorter one (its subtree is already copied whole)."""
    kept: list[tuple[str, ...]] = []
    for path in sorted(paths, key=len):
        if not any(path[: len(short)] == short for short in kept):
            kept.append(path)
    return tuple(sorted(kept))


_MAPPINGS = (dict, Mapping)  # dict first: the plain-dict check is cheap, the ABC check is not


def _pruned(env: Mapping, paths: tuple[tuple[str, ...], ...]) -> dict:
    """A copy of `env` holding only `paths`; parents are made as maps, so a missing field errors alike."""
    out: dict = {}
    for path in paths:
        source = env
        target = out
        last = len(path) - 1
        for depth, key in enumerate(path):
            if not isinstance(source, _MAPPINGS) or key not in source:
                break
            value = source[key]
            if depth == last or not isinstance(value, _MAPPINGS):
                target[key] = value
                break
            source = value
            target = target.setdefault(key, {})
    return out


# --- Compiling ----------------------------------------------------------------------

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
    checked = validate_rules(rules, check_conditions=False) if validate else rules
    compiled_rules = []
    errors: list[dict] = []
    programs: dict[str, tuple] = {}
    selectors = []
    for position, rule in enumerate(_order(checked)):
        condition = rule.get("condition") or None
        program = None
        variables: frozenset[str] = frozenset()
        paths: frozenset[tuple[str, ...]] = frozenset()
        uses_rate = False
        if condition:
            if condition not in programs:
                programs[condition] = check_condition(condition)
            program, messages = programs[condition]
            if messages:
                # Unknown variables are reported by publish checks; here only what cannot run at all.
                hard = [m for m in messages if not m.startswith("unknown variable")]
                if hard:
                    errors.extend({"path": f"rules[{rule['key']}].condition", "message": m} for m in hard)
                    continue
                program = cel.compile(condition)
            variables = frozenset(program.variables())
            paths = read_paths(condition, variables)
            uses_rate = "rate" in program.functions()
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
            )
        )
        selectors.append(
            {d: frozenset((rule.get("selector") or {}).get(d) or ()) for d in _SELECTOR_DIMENSIONS}
        )
    if errors:
        raise RulesetError(errors)
    frozen_allowlist = None if allowlist is None else frozenset(allowlist)
    compiled = CompiledRuleset(key, tuple(compiled_rules), selectors, frozen_allowlist)
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > _MAX_CACHED_RULESETS:
            _cache.popitem(last=False)
    return compiled


def clear_cache() -> None:
    """Forget every compiled ruleset (tests, benchmarks)."""
    with _cache_lock:
        _cache.clear()


# --- Evaluating ---------------------------------------------------------------------


def action_hash(action: Mapping) -> str:
    """The SHA-256 of an action's canonical JSON: ties a decision to exactly one action."""
    return hashlib.sha256(
        json.dumps(action, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _rate_function(counter: RateCounter | None) -> Callable:
    def rate(key, window) -> int:
        if counter is None:
            raise RuntimeError("rate() has no counter in this evaluation")
        seconds = int(window.total_seconds()) if isinstance(window, timedelta) else int(window)
        if seconds <= 0:
            raise ValueError("rate() needs a positive window")
        return int(counter(str(key), seconds))

    return rate


def _resolve(matched: list[CompiledRule], errors: list) -> tuple:
    """(effect, reason, deciding rule, layer, approver role, ttl, redact fields) for enforced matches."""
    by_effect: dict[str, list[CompiledRule]] = {}
    for rule in matched:
        by_effect.setdefault(rule.effect, []).append(rule)
    if "deny" in by_effect:
        rule = by_effect["deny"][0]
        return "deny", rule.message, rule, None, None, ()
    if "require_approval" in by_effect:
        held = by_effect["require_approval"]
        rule = min(held, key=lambda r: (APPROVER_RANK.get(r.approver_role or "", 9), r.position))
        ttl = min(r.approval_ttl_minutes for r in held)
        return "require_approval", rule.message, rule, rule.approver_role, ttl, ()
    if "allow" not in by_effect:
        return (
            "deny",
            "No allow rule matched this action (zero trust: no rule, no action).",
            None,
            None,
            None,
            (),
        )
    if "redact" in by_effect:
        redacting = by_effect["redact"]
        fields = tuple(sorted({name for r in redacting for name in r.redact_fields}))
        rule = redacting[0]
        return "redact", rule.message, rule, None, None, fields
    rule = by_effect["allow"][0]
    return "allow", rule.message, rule, None, None, ()


class _Env(Mapping):
    """The variables a condition sees: `action` from the action, everything else from the context."""

    __slots__ = ("_action", "_context")

    def __init__(self, action: Mapping, context: Mapping):
        self._action = action
        self._context = context

    def __getitem__(self, key):
        if key == "action":
            return self._action
        value = self._context[key]
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        return key == "action" or self._context.get(key) is not None

    def __iter__(self):
        yield "action"
        yield from (k for k, v in self._context.items() if v is not None and k != "action")

    def __len__(self) -> int:
        return sum(1 for _ in self)


def evaluate(
    compiled: CompiledRuleset,
    action: Mapping,
    context: Mapping,
    *,
    rate_counter: RateCounter | None = None,
) -> Decision:
    """Decide one proposed action.

    `action` has tool, operation, entity, params, target_ids; `context` has agent, principal,
    tenant, input, data, trace, time (any may be missing; a condition that reads a missing one
    errors and fails closed). `rate_counter(key, window_seconds)` backs `rate()` in conditions.
    """
    started = time.perf_counter_ns()
    digest = action_hash(action)
    tool = action.get("tool")
    if compiled.allowlist is not None and tool not in compiled.allowlist:
        return Decision(
            effect="deny",
            reason=f"The tool '{tool}' is not in this agent's allowlist (zero trust).",
            deciding_rule=None,
            layer=ZERO_TRUST,
            matched=(),
            errors=(),
            evaluated_count=0,
            action_hash=digest,
            ruleset_key=compiled.key,
            elapsed_us=(time.perf_counter_ns() - started) / 1000,
        )
    agent = context.get("agent")
    variant = agent.get("variant") if isinstance(agent, Mapping) else None
    plan = compiled.plan(variant, tool, action.get("operation"), action.get("entity"))

    # One CEL context for the whole evaluation, holding only what the candidates' conditions read.
    cel_context = None
    context_error = None
    if plan.paths or plan.uses_rate:
        try:
            variables = _pruned(_Env(action, context), plan.paths)
            functions = {"rate": _rate_function(rate_counter)} if plan.uses_rate else None
            cel_context = cel.Context(variables=variables, functions=functions)
        except (ValueError, TypeError) as exc:
            context_error = f"the context cannot be read by CEL: {exc}"

    matched: list[CompiledRule] = []
    shadow_matched: list[CompiledRule] = []
    errors: list[tuple[str, str]] = []
    shadow_errors: list[tuple[str, str]] = []
    for rule in plan.rules:
        program = rule.program
        if program is None:
            hit = True
        else:
            error = context_error
            if error is None:
                try:
                    result = program.execute(cel_context)
                except KeyError as exc:
                    error = f"no such field: {exc.args[0] if exc.args else '?'}"
                except Exception as exc:  # every runtime failure fails closed, by design
                    error = str(exc) or type(exc).__name__
                else:
                    if result is True or result is False:
                        hit = result
                    else:
                        error = f"the condition returned {type(result).__name__}, not a bool"
            if error is not None:
                hit = rule.error_matches
                (errors if rule.mode == "enforce" else shadow_errors).append((rule.key, error))
        if hit:
            (matched if rule.mode == "enforce" else shadow_matched).append(rule)

    effect, reason, deciding, approver, ttl, fields = _resolve(matched, errors)
    shadow = None
    if shadow_matched or shadow_errors:
        with_shadow = sorted(matched + shadow_matched, key=lambda r: r.position)
        s_effect, _, s_rule, s_approver, _, s_fields = _resolve(with_shadow, errors)
        shadow = ShadowOutcome(
            matched=tuple(r.key for r in shadow_matched),
            errors=tuple(shadow_errors),
            effect=s_effect,
            deciding_rule=s_rule.key if s_rule else None,
            changed=(s_effect, s_approver, s_fields) != (effect, approver, fields),
        )
    return Decision(
        effect=effect,
        reason=reason,
        deciding_rule=deciding.key if deciding else None,
        layer=deciding.layer if deciding else ZERO_TRUST,
        matched=tuple(r.key for r in matched),
        errors=tuple(errors),
        evaluated_count=len(plan.rules),
        action_hash=digest,
        ruleset_key=compiled.key,
        approver_role=approver,
        approval_ttl_minutes=ttl,
        redact_fields=fields,
        shadow=shadow,
        elapsed_us=(time.perf_counter_ns() - started) / 1000,
    )
