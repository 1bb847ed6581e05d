"""What the engine answers: Decision and ShadowOutcome, and how matched rules resolve to an effect.

Precedence lives here (deny > require_approval > redact > allow; then layer, then position), with the
fast positional constructors `evaluate` builds its answers with. Pure data and rules of precedence:
nothing here runs a condition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING

from ..rules import LAYERS

if TYPE_CHECKING:
    from .index import CompiledRule, CompiledRuleset, _Plan

EFFECT_ORDER = ("deny", "require_approval", "redact", "allow")
# Held actions: the stronger approver wins when several rules ask for approval.
APPROVER_RANK = {"client_admin": 0, "operator": 1}
LAYER_RANK = {layer: rank for rank, layer in enumerate(LAYERS)}
ZERO_TRUST = "zero_trust"
_POSITION = attrgetter("position")


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


def _resolve(*groups: list[CompiledRule]) -> tuple:
    """(effect, reason, deciding rule, approver role, ttl, redact fields) for these matches.

    Each group is in position order (enforced matches; with the shadow report, shadow matches as a
    second group): taking groups rather than one merged list spares a sort on every evaluation.
    """
    deny = allow = None
    held: list[CompiledRule] = []
    redacting: list[CompiledRule] = []
    for group in groups:
        for rule in group:
            effect = rule.effect
            if effect == "allow":  # the commonest match, so tested first
                if allow is None or rule.position < allow.position:
                    allow = rule
            elif effect == "deny":
                if deny is None or rule.position < deny.position:
                    deny = rule
                break  # the group's first deny; later rules of the group cannot change the outcome
            elif effect == "require_approval":
                held.append(rule)
            elif effect == "redact":
                redacting.append(rule)
    if deny is not None:
        return "deny", deny.message, deny, None, None, ()
    if held:
        rule = min(held, key=lambda r: (APPROVER_RANK.get(r.approver_role or "", 9), r.position))
        ttl = min(r.approval_ttl_minutes for r in held)
        return "require_approval", rule.message, rule, rule.approver_role, ttl, ()
    if allow is None:
        return (
            "deny",
            "No allow rule matched this action (zero trust: no rule, no action).",
            None,
            None,
            None,
            (),
        )
    if redacting:
        fields = tuple(sorted({name for r in redacting for name in r.redact_fields}))
        first = min(redacting, key=_POSITION)
        return "redact", first.message, first, None, None, fields
    return "allow", allow.message, allow, None, None, ()


def _builder(cls):
    """A positional constructor for a frozen, slotted dataclass that skips its generated __init__.

    A frozen dataclass sets each field through `object.__setattr__`, and keyword arguments cost
    more again: building a Decision that way takes ~2.5 µs, a tenth of an evaluation. This sets the
    slots directly, fields in declaration order (written out the way `dataclasses` writes
    __init__); the object is the same (equality, immutability, `dataclasses.replace`).
    """
    names = [f.name for f in fields(cls)]
    namespace = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": cls.__dict__[name].__set__ for name in names})
    body = "".join(f"    set_{name}(obj, {name})\n" for name in names)
    exec(f"def build({', '.join(names)}):\n    obj = new(cls)\n{body}    return obj\n", namespace)  # noqa: S102
    return namespace["build"]


_new_decision = _builder(Decision)
_new_shadow = _builder(ShadowOutcome)


def _decision(
    compiled: CompiledRuleset,
    plan: _Plan,
    matched: list[CompiledRule],
    shadow_matched: list[CompiledRule],
    errors: list[tuple[str, str]],
    shadow_errors: list[tuple[str, str]],
    digest: str,
    started: int,
) -> Decision:
    """The Decision for these matches, with the shadow report when shadow rules matched or erred."""
    effect, reason, deciding, approver, ttl, redacted = _resolve(matched)
    shadow = None
    if shadow_matched or shadow_errors:
        s_effect, _, s_rule, s_approver, _, s_redacted = _resolve(matched, shadow_matched)
        shadow = _new_shadow(
            tuple([r.key for r in shadow_matched]),
            tuple(shadow_errors),
            s_effect,
            s_rule.key if s_rule else None,
            (s_effect, s_approver, s_redacted) != (effect, approver, redacted),
        )
    return _new_decision(
        effect,
        reason,
        deciding.key if deciding else None,
        deciding.layer if deciding else ZERO_TRUST,
        tuple([r.key for r in matched]),
        tuple(errors),
        len(plan.rules),
        digest,
        compiled.key,
        approver,
        ttl,
        redacted,
        shadow,
        (time.perf_counter_ns() - started) / 1000,
    )
