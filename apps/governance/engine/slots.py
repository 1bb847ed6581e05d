"""Looking up the values of a plan's slots in an action and its context, for the fast path.

`_slot_values` reads every case; `_slot_reader` writes the common case (dicts all the way down) out
as Python once per slot set. Both say whether Python may decide on the values (`_plain`) and raise
_Unvouched when only the original evaluation can be exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .native import _INT_MAX, _INT_MIN
from .paths import _MAPPINGS, _Slot

if TYPE_CHECKING:
    from .index import _Plan


class _Unvouched(Exception):
    """The original path would hand CEL a value the fast path does not; evaluate the original way."""


_MISSING = object()
_PLAIN_SCALARS = frozenset({bool, float, type(None)})
_MAX_PLAIN_DEPTH = 32


def _plain(value, depth: int = 0) -> bool:
    """Whether CEL surely converts `value` (JSON-like data); False is always safe, just slower.

    Where the fast path does not hand a value to CEL (has(), size(), conditions decided in Python)
    while the original path does, the value must be one CEL takes: a value CEL might refuse sends
    the evaluation the original way, where the refusal fails every condition alike.
    """
    kind = type(value)
    if kind is str:
        return value.isascii() or _utf8(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is int:
        return -(2**63) <= value < 2**64
    if depth >= _MAX_PLAIN_DEPTH:
        return False
    if kind is list or kind is tuple:
        for item in value:  # a loop, not all(): lists of a few strings are the common case
            if type(item) is str:
                if not item.isascii() and not _utf8(item):
                    return False
            elif type(item) not in _PLAIN_SCALARS and not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        return all(type(k) is str and _plain(k) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _utf8(text: str) -> bool:
    """False for a string CEL cannot take (a lone surrogate, as json.loads may produce)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _derived(slot: _Slot, value):
    """A has() or size() slot from the value its walk reached (`_MISSING`: leave it undefined)."""
    if slot.kind == "has":
        if not isinstance(value, _MAPPINGS):
            if not _plain(value):
                raise _Unvouched
            return _MISSING  # has() on a non-map errors: the original form says how
        name = slot.path[-1]
        if name not in value:
            return False
        if not _plain(value[name]):  # the original copies the field's value into CEL
            raise _Unvouched
        return True
    if not _plain(value):  # size(): the original converts the whole collection
        raise _Unvouched
    if type(value) in (list, tuple, dict):
        return len(value)
    return _MISSING  # size() of a string, bytes or a scalar: the original form decides


def _slot_values(plan: _Plan, action: Mapping, context: Mapping) -> tuple[dict, bool]:
    """The values of the slots the candidates read, and whether Python may decide on them.

    The second is True when every value is `_plain` (CEL would take it, so deciding without
    handing it over changes nothing) and every int is within CEL's int range.

    Each slot is looked up the way `_pruned` copies its path, so both forms see the same value. A
    missing value leaves its slot out, so a condition reading it errors as the original would. A
    value the original would copy into CEL but this path does not convert must be one CEL surely
    takes (`_plain`), else the evaluation goes the original way (`_Unvouched`).
    """
    values = {}
    plain = True
    value: Any
    for slot in plan.slots:
        root = slot.root
        if root == "action":
            value = action
        else:
            value = context.get(root)
            if value is None:
                continue  # an absent context variable is undefined (see _Env)
        for key in slot.steps:
            if type(value) is dict:
                value = value.get(key, _MISSING)
            elif isinstance(value, Mapping):
                value = value[key] if key in value else _MISSING  # noqa: SIM401 — as _pruned reads it
            else:
                if not _plain(value):  # the original copies this non-map into CEL
                    raise _Unvouched
                value = _MISSING
            if value is _MISSING:
                break
        else:
            if slot.kind != "value":
                value = _derived(slot, value)
            if value is not _MISSING:
                values[slot.name] = value
                if plain:
                    kind = type(value)
                    if kind is int:  # Python checks compare ints without a range check
                        plain = _INT_MIN <= value < _INT_MAX
                    elif kind is str:
                        plain = value.isascii() or _utf8(value)
                    elif kind is not bool and kind is not float and value is not None:
                        plain = _plain(value)
    return values, plain


SlotReader = Callable[[Mapping, Mapping], "tuple[dict, bool] | None"]


def _slot_reader(slots: tuple[_Slot, ...]) -> SlotReader:
    """`_slot_values` for one set of slots, written out as Python: shared path prefixes walked once.

    Plans share a few slot sets, so each set is written once (see `CompiledRuleset.plan`). The
    function handles the common case, where every map along every path is a dict; it answers None
    at anything else, and the caller falls back to `_slot_values`, which reads every other case.
    Keys are written with repr(); nothing from a condition is executed.
    """
    tree: dict = {}  # root → {"ends": [slots], "children": {key: node}}
    for slot in slots:
        node = tree.setdefault(slot.root, {"ends": [], "children": {}})
        for key in slot.steps:
            node = node["children"].setdefault(key, {"ends": [], "children": {}})
        node["ends"].append(slot)
    lines = ["def read(action, context):", "    values = {}", "    plain = True"]
    names = (f"x{i}" for i in itertools.count())

    def emit(depth: int, line: str) -> None:
        lines.append("    " * depth + line)

    def visit(node: dict, var: str, depth: int) -> None:
        for slot in node["ends"]:
            value = var
            if slot.kind != "value":
                value = next(names)
                emit(depth, f"{value} = _derived(SLOTS[{slots.index(slot)}], {var})")
                emit(depth, f"if {value} is not _MISSING:")
                depth += 1
            emit(depth, f"values[{slot.name!r}] = {value}")
            # _native_ok(value), spelled out for the common kinds.
            emit(depth, f"if type({value}) is int:")
            emit(depth + 1, f"if not {_INT_MIN} <= {value} < {_INT_MAX}:")
            emit(depth + 2, "plain = False")
            emit(depth, f"elif type({value}) is str:")
            emit(depth + 1, f"if not {value}.isascii() and not _utf8({value}):")
            emit(depth + 2, "plain = False")
            emit(depth, f"elif type({value}) is not bool and not _native_ok({value}):")
            emit(depth + 1, "plain = False")
            if slot.kind != "value":
                depth -= 1
        if node["children"]:
            emit(depth, f"if type({var}) is not dict:")
            emit(depth + 1, "return None")
        for key, child in node["children"].items():
            name = next(names)
            emit(depth, f"{name} = {var}.get({key!r}, _MISSING)")
            emit(depth, f"if {name} is not _MISSING:")
            visit(child, name, depth + 1)

    for root, node in tree.items():
        name = next(names)
        if root == "action":
            emit(1, f"{name} = action")
            visit(node, name, 1)
        else:
            emit(1, f"{name} = context.get({root!r})")
            emit(1, f"if {name} is not None:")  # an absent context variable is undefined (see _Env)
            visit(node, name, 2)
    emit(1, "return values, plain")
    namespace: dict = {}
    scope = {
        "_MISSING": _MISSING,
        "_derived": _derived,
        "_native_ok": _native_ok,
        "_utf8": _utf8,
        "SLOTS": slots,
    }
    exec("\n".join(lines), scope, namespace)  # noqa: S102
    return namespace["read"]


def _native_ok(value) -> bool:
    """Whether Python may decide on `value` (see `_slot_values`)."""
    kind = type(value)
    if kind is int:
        return _INT_MIN <= value < _INT_MAX
    if kind is str:
        return value.isascii() or _utf8(value)
    return kind is bool or kind is float or value is None or _plain(value)
