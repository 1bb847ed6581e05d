"""Evaluating one action against a compiled ruleset: the fast path and the original one.

`evaluate` finds the plan for the action, reads its slots, decides simple conditions in Python and
the rest in CEL on the flattened forms; whatever the fast path cannot vouch for runs the original
way (`_evaluate_original`: the original programs on the pruned variables). Also `action_hash`, the
per-evaluation `rate()` reader and the mapping conditions see (_Env).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import timedelta

import cel

from .decisions import ZERO_TRUST, Decision, _decision
from .index import CompiledRule, CompiledRuleset, _Plan
from .native import _U
from .paths import _minimal_paths, _pruned
from .slots import _slot_values, _Unvouched

# rate(key, window_seconds) -> how many times `key` happened in the last window.
RateCounter = Callable[[str, int], int]

# The canonical JSON is json.dumps(action, sort_keys=True, separators=(",", ":"), default=str). That
# call builds a new encoder each time, which costs more than the hashing; this is the same C encoder
# with the same options built once (without the circular-reference check: an action is JSON data,
# and a circular one raises RecursionError instead of ValueError). Pure-Python builds fall back.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_canonical_chunks = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
)


def action_hash(action: Mapping) -> str:
    """The SHA-256 of an action's canonical JSON: ties a decision to exactly one action."""
    if _canonical_chunks is None:
        return hashlib.sha256(_CANONICAL.encode(action).encode()).hexdigest()
    return hashlib.sha256("".join(_canonical_chunks(action, 0)).encode()).hexdigest()


class _RateReader:
    """`rate()` for one evaluation: the caller's counter, read once per (key, window).

    Conditions sharing a counter see one value, and a condition decided again in CEL or in its
    original form (see `evaluate`) does not read the counter twice; a failed read fails alike.
    """

    __slots__ = ("counter", "seen")

    def __init__(self, counter: RateCounter | None):
        self.counter = counter
        self.seen: dict[tuple[str, int], int | Exception] = {}

    def __call__(self, key, window) -> int:
        if self.counter is None:
            raise RuntimeError("rate() has no counter in this evaluation")
        if type(window) is int:
            seconds = window
        else:
            seconds = int(window.total_seconds()) if isinstance(window, timedelta) else int(window)
        if seconds <= 0:
            raise ValueError("rate() needs a positive window")
        asked = (key if type(key) is str else str(key), seconds)
        found = self.seen.get(asked)
        if found is None:
            try:
                found = int(self.counter(*asked))
            except Exception as exc:
                found = exc
            self.seen[asked] = found
        if isinstance(found, Exception):
            raise found
        return found


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


def _cel_context(values: dict, rate: _RateReader | None):
    """One CEL context holding every slot value (CEL refusing one: evaluate the original way)."""
    try:
        return cel.Context(variables=values, functions=None if rate is None else {"rate": rate})
    except (ValueError, TypeError) as exc:
        raise _Unvouched from exc


def _outcome(program: cel.Program, cel_context) -> tuple[bool | None, str | None]:
    """Run one condition: (its result, None) or (None, the error message the decision records)."""
    try:
        result = program.execute(cel_context)
    except KeyError as exc:
        return None, f"no such field: {exc.args[0] if exc.args else '?'}"
    except Exception as exc:  # every runtime failure fails closed, by design
        return None, str(exc) or type(exc).__name__
    if result is True or result is False:
        return result, None
    return None, f"the condition returned {type(result).__name__}, not a bool"


def _original_outcome(
    rule: CompiledRule, action: Mapping, context: Mapping, rate: _RateReader | None
) -> tuple[bool | None, str | None]:
    """Run a rule's condition in its original form on its own pruned variables (exact error messages)."""
    try:
        cel_context = cel.Context(
            variables=_pruned(_Env(action, context), _minimal_paths(set(rule.paths))),
            functions=None if rate is None else {"rate": rate},
        )
    except (ValueError, TypeError) as exc:
        raise _Unvouched from exc
    assert rule.program is not None
    return _outcome(rule.program, cel_context)


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
    rate = _RateReader(rate_counter) if plan.uses_rate else None

    matched: list[CompiledRule] = []
    shadow_matched: list[CompiledRule] = []
    errors: list[tuple[str, str]] = []
    shadow_errors: list[tuple[str, str]] = []
    try:
        if plan.exact:
            raise _Unvouched
        values, plain = (
            (plan.read(action, context) or _slot_values(plan, action, context))
            if plan.conditional
            else ({}, True)
        )
        cel_context = None  # built on the first condition Python cannot decide
        hit: object
        for rule in plan.rules:
            native = rule.native
            if native is not None and plain:
                hit = native(values, rate)
                if hit is not _U:
                    if hit:
                        (matched if rule.enforced else shadow_matched).append(rule)
                    continue
            elif rule.flat_program is None:  # unconditional
                (matched if rule.enforced else shadow_matched).append(rule)
                continue
            if cel_context is None:
                cel_context = _cel_context(values, rate)
            hit, error = _flat_outcome(rule, cel_context, action, context, rate)
            if error is not None:
                hit = rule.error_matches
                (errors if rule.enforced else shadow_errors).append((rule.key, error))
            if hit:
                (matched if rule.enforced else shadow_matched).append(rule)
    except _Unvouched:
        matched, shadow_matched, errors, shadow_errors = _evaluate_original(plan, action, context, rate)
    return _decision(compiled, plan, matched, shadow_matched, errors, shadow_errors, digest, started)


def _flat_outcome(
    rule: CompiledRule, cel_context, action: Mapping, context: Mapping, rate: _RateReader | None
) -> tuple[bool | None, str | None]:
    """Run a rule's flattened condition in CEL; on an error, its original form decides (and says why)."""
    assert rule.flat_program is not None
    try:
        result = rule.flat_program.execute(cel_context)
    except Exception:
        # Often a missing field, whose slot is undefined: the original condition gives the error
        # (or, where CEL absorbs it, the result) and the message the decision records.
        return _original_outcome(rule, action, context, rate)
    if result is True or result is False:
        return result, None
    return None, f"the condition returned {type(result).__name__}, not a bool"


def _evaluate_original(
    plan: _Plan, action: Mapping, context: Mapping, rate: _RateReader | None
) -> tuple[list[CompiledRule], list[CompiledRule], list[tuple[str, str]], list[tuple[str, str]]]:
    """Every candidate's original condition on one CEL context of the pruned variables.

    The reference behaviour, taken when the fast path cannot vouch for an evaluation; a context
    CEL cannot read fails every conditional rule alike.
    """
    cel_context = None
    context_error = None
    if plan.conditional:
        try:
            cel_context = cel.Context(
                variables=_pruned(_Env(action, context), plan.paths()),
                functions=None if rate is None else {"rate": rate},
            )
        except (ValueError, TypeError) as exc:
            context_error = f"the context cannot be read by CEL: {exc}"
    matched: list[CompiledRule] = []
    shadow_matched: list[CompiledRule] = []
    errors: list[tuple[str, str]] = []
    shadow_errors: list[tuple[str, str]] = []
    for rule in plan.rules:
        hit: bool | None = True
        if rule.program is not None:
            hit, error = (None, context_error) if context_error else _outcome(rule.program, cel_context)
            if error is not None:
                hit = rule.error_matches
                (errors if rule.enforced else shadow_errors).append((rule.key, error))
        if hit:
            (matched if rule.enforced else shadow_matched).append(rule)
    return matched, shadow_matched, errors, shadow_errors
