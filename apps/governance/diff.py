"""What changed between two lists of governance rules, rule by rule (by key) and field by field.

    for change in rules_diff(active.rules, draft.rules):
        change.kind     # "added" | "removed" | "changed"
        change.changes  # [FieldChange("condition", "a > 1", "a > 2"), FieldChange("selector.tools", ...)]

Rules are matched by key, so inserting a rule does not make the rules after it look
changed. Selector dimensions are compared one by one (`selector.tools`), every other
field as a whole value. Order matters to the engine (within a layer the first rule of
the deciding effect decides), so a rule that moved relative to the rules both lists
share is reported as changed, with a `position` field change (1-based, among those
shared rules). Only the rules that moved are reported: those outside the longest
run of shared rules that kept their relative order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FieldChange", "RuleChange", "rules_diff"]

# The fields shown first, in this order; any other field follows in alphabetical order.
FIELD_ORDER = (
    "key",
    "name",
    "layer",
    "selector",
    "condition",
    "effect",
    "approver_role",
    "approval_ttl_minutes",
    "redact_fields",
    "message",
    "severity",
    "mode",
    "fail_mode",
    "source",
    "source_ref",
)
SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")


@dataclass(frozen=True)
class FieldChange:
    """One field of a rule that differs: `old` / `new` are None where the field is absent."""

    field: str
    old: Any
    new: Any

    @property
    def old_text(self) -> str:
        return self._text(self.old)

    @property
    def new_text(self) -> str:
        return self._text(self.new)

    def _text(self, value: Any) -> str:
        """The value as a page shows it: lists comma-separated, an empty selector dimension as "any"."""
        if value is None or value == "" or value == []:
            return "any" if self.field.startswith("selector.") else ""
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return str(value)


@dataclass(frozen=True)
class RuleChange:
    """One rule added, removed or changed; `old` is None for an addition, `new` for a removal."""

    key: str
    kind: Literal["added", "removed", "changed"]
    old: dict | None
    new: dict | None
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def rule(self) -> dict:
        """The rule as it is after the change (as it was, for a removal)."""
        return self.new if self.new is not None else self.old or {}

    @property
    def name(self) -> str:
        return str(self.rule.get("name") or self.key)


def _field_order(names: set[str]) -> list[str]:
    known = [name for name in FIELD_ORDER if name in names]
    return known + sorted(names - set(FIELD_ORDER))


def _field_changes(old: dict, new: dict) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for name in _field_order(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if name == "selector" and isinstance(before or {}, dict) and isinstance(after or {}, dict):
            before, after = before or {}, after or {}
            dimensions = [
                *SELECTOR_DIMENSIONS,
                *sorted((set(before) | set(after)) - set(SELECTOR_DIMENSIONS)),
            ]
            for dimension in dimensions:
                # An absent dimension and an empty one both mean "any".
                was, now = before.get(dimension) or [], after.get(dimension) or []
                if was != now:
                    changes.append(FieldChange(f"selector.{dimension}", was, now))
            continue
        changes.append(FieldChange(name, before, after))
    return changes


def _kept_in_order(old: list[str], new: list[str]) -> set[str]:
    """The keys of a longest common subsequence of two orderings of the same keys."""
    if old == new:
        return set(old)
    # Classic LCS table; rulesets hold tens to a few hundred rules.
    rows, cols = len(old), len(new)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if old[i] == new[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    kept: set[str] = set()
    i = j = 0
    while i < rows and j < cols:
        if old[i] == new[j]:
            kept.add(old[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def rules_diff(old_rules: list[dict] | None, new_rules: list[dict] | None) -> list[RuleChange]:
    """Every rule added, removed or changed from `old_rules` to `new_rules`, matched by `key`.

    Added and changed rules come in the order of `new_rules`, then removed ones in the order of
    `old_rules`. A rule whose place among the shared rules changed gets a `position` change.
    """
    old_by_key = {rule["key"]: rule for rule in old_rules or []}
    new_by_key = {rule["key"]: rule for rule in new_rules or []}
    old_order = [key for key in old_by_key if key in new_by_key]
    new_order = [key for key in new_by_key if key in old_by_key]
    old_position = {key: index for index, key in enumerate(old_order, start=1)}
    new_position = {key: index for index, key in enumerate(new_order, start=1)}
    moved = set(new_order) - _kept_in_order(old_order, new_order)

    result: list[RuleChange] = []
    for key, new in new_by_key.items():
        old = old_by_key.get(key)
        if old is None:
            result.append(RuleChange(key, "added", None, new))
            continue
        changes = _field_changes(old, new)
        if key in moved:
            changes.append(FieldChange("position", old_position[key], new_position[key]))
        if changes:
            result.append(RuleChange(key, "changed", old, new, changes))
    result += [
        RuleChange(key, "removed", old, None) for key, old in old_by_key.items() if key not in new_by_key
    ]
    return result
