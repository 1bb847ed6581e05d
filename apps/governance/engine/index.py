"""Compiled rules and the selector index: which rules are candidates for an action.

A CompiledRuleset holds its CompiledRules and a bitmask index on variant/tool/operation/entity,
split on the most selective dimension; `CompiledRuleset.plan` turns one combination of selector
values into a memoised _Plan (the candidates, the slots their conditions read, and how to read them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cel

from .paths import _minimal_paths, _Slot
from .slots import SlotReader, _slot_reader

if TYPE_CHECKING:
    from .evaluation import _RateReader

_SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")
_MAX_PLANS = 8192


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
    # The dotted paths the condition reads (("action", "params", "amount"), ...): the original path
    # builds its CEL context from just these subtrees, since converting values costs ~1 µs per map key.
    paths: frozenset[tuple[str, ...]]
    uses_rate: bool
    # What an error in the condition means for this rule (fail closed unless fail_mode is open).
    error_matches: bool
    # The condition compiled over scalar slots (see the module docstring); None when the rule is
    # unconditional or its condition could not be flattened (then `flat` is False).
    flat_program: cel.Program | None = None
    flat: bool = True
    # Bit i set: the flattened condition reads the ruleset's slot i.
    slot_mask: int = 0
    enforced: bool = True  # mode == "enforce", read once per candidate on every evaluation
    # The flattened condition as Python, for the simple ones (see "Running simple flattened
    # conditions in Python"); it answers True, False or _U (unknown: run it in CEL).
    native: Callable[[dict, _RateReader | None], object] | None = None


class _Plan:
    """The candidate rules for one (variant, tool, operation, entity) and what their conditions need.

    A plain slotted class, not a dataclass: one is built for every new combination of selector
    values, and a frozen dataclass costs a microsecond more to build. Treat it as immutable.
    """

    __slots__ = ("conditional", "exact", "read", "rules", "slots", "uses_rate")

    def __init__(self, rules, slots, read, uses_rate: bool, conditional: bool, exact: bool):
        self.rules: tuple[CompiledRule, ...] = rules
        self.slots: tuple[_Slot, ...] = slots
        self.read: SlotReader = read  # the slots' values, for the common case (see _slot_reader)
        self.uses_rate = uses_rate
        self.conditional = conditional
        # Some candidate's condition could not be flattened: the whole plan runs the original way.
        self.exact = exact

    def paths(self) -> tuple[tuple[str, ...], ...]:
        """The subtrees the original conditions read (only the original, slower path needs them)."""
        return _minimal_paths({path for rule in self.rules for path in rule.paths})


class _Part:
    """The rules one value of the partition dimension can select, with a bitmask index over just them.

    Bit i of a mask stands for `rules[i]`. Keeping masks narrow (the rules of one tool, say, rather
    than the whole ruleset) keeps turning a mask into rules cheap, which matters because every new
    combination of selector values builds a plan.
    """

    __slots__ = ("all", "conditional", "index", "rate", "rules", "unflat")

    def __init__(self, rules: list[CompiledRule], selectors: list[dict[str, frozenset[str]]], dims):
        self.rules = tuple(rules)
        self.all = (1 << len(rules)) - 1
        # Per dimension in `dims`: (value → mask of rules naming it, mask of rules naming none), and
        # the dimension's place in a plan's (variant, tool, operation, entity).
        self.index: list[tuple[tuple[dict[str, int], int], int]] = []
        for dimension in dims:
            by_value: dict[str, int] = {}
            any_mask = 0
            for bit, selector in enumerate(selectors):
                values = selector[dimension]
                if not values:
                    any_mask |= 1 << bit
                for value in values:
                    by_value[value] = by_value.get(value, 0) | (1 << bit)
            self.index.append(((by_value, any_mask), _SELECTOR_DIMENSIONS.index(dimension)))
        self.conditional = self.rate = self.unflat = 0
        for bit, rule in enumerate(rules):
            if rule.program is not None:
                self.conditional |= 1 << bit
                self.rate |= rule.uses_rate << bit
                self.unflat |= (not rule.flat) << bit


# The set bits of each byte value: turns a mask into items a byte at a time.
_BITS = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))


def _members(mask: int, items: tuple) -> list:
    """The items whose bits are set in `mask`, in order."""
    out = []
    base = 0
    for byte in mask.to_bytes((mask.bit_length() + 7) // 8, "little"):
        if byte:
            for bit in _BITS[byte]:
                out.append(items[base + bit])
        base += 8
    return out


class CompiledRuleset:
    """A ruleset's rules compiled once, with the selector index; shared by every evaluation."""

    def __init__(
        self,
        key: str,
        rules: tuple[CompiledRule, ...],
        selectors: list[dict[str, frozenset[str]]],
        allowlist: frozenset[str] | None,
        slots: tuple[_Slot, ...] = (),
    ):
        self.key = key
        self.rules = rules
        self.allowlist = allowlist
        self.slots = slots
        # The index is split on the most selective dimension (usually tools): one part per value
        # named by some rule, holding the rules naming it plus those naming no value, and a rest part
        # for values no rule names. Each part indexes the other dimensions.
        self._split = _split_dimension(selectors)
        dims = tuple(d for i, d in enumerate(_SELECTOR_DIMENSIONS) if i != self._split)
        self._parts: dict[str, _Part] = {}
        if self._split is None:
            self._rest = _Part(list(rules), selectors, dims)
        else:
            dimension = _SELECTOR_DIMENSIONS[self._split]
            unnamed: list[int] = []
            naming: dict[str, list[int]] = {}
            for i, selector in enumerate(selectors):
                if not selector[dimension]:
                    unnamed.append(i)
                for value in selector[dimension]:
                    naming.setdefault(value, []).append(i)
            for value, chosen in naming.items():
                chosen = sorted(chosen + unnamed)  # position order
                self._parts[value] = _Part([rules[i] for i in chosen], [selectors[i] for i in chosen], dims)
            self._rest = _Part([rules[i] for i in unnamed], [selectors[i] for i in unnamed], dims)
        self._plans: dict[tuple, _Plan] = {}
        # Slot mask → (its slots, their reader): plans share a few slot sets.
        self._slot_sets: dict[int, tuple[tuple[_Slot, ...], SlotReader]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def plan(self, variant, tool, operation, entity) -> _Plan:
        """The candidate rules for these selector values (memoised; the set of combinations is small)."""
        combo = (variant, tool, operation, entity)
        found = self._plans.get(combo)
        if found is not None:
            return found
        # Misses are common too (every new combination of selector values): keep this path cheap.
        part = self._rest
        if self._split is not None and isinstance(combo[self._split], str):
            part = self._parts.get(combo[self._split], part)
        mask = part.all
        for (by_value, any_mask), i in part.index:
            value = combo[i]
            mask &= any_mask | (by_value.get(value, 0) if isinstance(value, str) else 0)
        # The candidates, and the slots their conditions read, a byte of the mask at a time.
        candidates = []
        slot_mask = 0
        rules = part.rules
        base = 0
        for byte in mask.to_bytes((mask.bit_length() + 7) // 8, "little"):
            if byte:
                for bit in _BITS[byte]:
                    rule = rules[base + bit]
                    candidates.append(rule)
                    slot_mask |= rule.slot_mask
            base += 8
        slot_set = self._slot_sets.get(slot_mask)
        if slot_set is None:
            slots = tuple(_members(slot_mask, self.slots))
            slot_set = self._slot_sets[slot_mask] = (slots, _slot_reader(slots))
        plan = _Plan(
            tuple(candidates),
            *slot_set,
            bool(mask & part.rate),
            bool(mask & part.conditional),
            bool(mask & part.unflat),
        )
        if len(self._plans) >= _MAX_PLANS:
            # Selector values come from proposed actions; never let them grow the cache without bound.
            self._plans.clear()
            self._slot_sets.clear()
        self._plans[combo] = plan
        return plan


def _split_dimension(selectors: list[dict[str, frozenset[str]]]) -> int | None:
    """The selector dimension whose values pick the fewest rules on average (None: no split helps).

    A rule naming no value of the dimension is copied into every part, so a split that would copy
    the ruleset many times over is refused.
    """
    best, best_size = None, float(len(selectors))
    for i, dimension in enumerate(_SELECTOR_DIMENSIONS):
        counts: dict[str, int] = {}
        unnamed = 0
        for selector in selectors:
            unnamed += not selector[dimension]
            for value in selector[dimension]:
                counts[value] = counts.get(value, 0) + 1
        if not counts:
            continue
        size = sum(counts.values()) / len(counts) + unnamed
        total = sum(counts.values()) + (len(counts) + 1) * unnamed
        if size < best_size and total <= 32 * len(selectors) + 1024:
            best, best_size = i, size
    return best
