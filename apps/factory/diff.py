"""Structured diff and three-way merge of agent specs.

Paths are dotted (`planner.max_steps`). A list whose items are all objects with
a unique `name` (tools, data, fields, workflows), or failing that a unique `id`
(workflow steps), is *keyed*: its items are addressed by that key, e.g.
`tools[db.update].entities` or `workflows[triage_ticket].steps[load].params.id`,
so inserting an item does not make every later item look changed. Any other
list (a tool's `entities`, a workflow's `inputs`) is compared as one value.

The order of a keyed list matters (workflow steps run in order): when the items
two lists share appear in a different order, the diff reports one `changed`
entry at the list's own path whose old/new values are the key sequences.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Conflict", "DiffEntry", "apply_resolutions", "spec_diff", "three_way_merge"]

ITEM_KEYS = ("name", "id")  # a keyed list is keyed by the first of these that every item has
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
_PLAIN_ITEM = re.compile(r"^[A-Za-z0-9_.\-]+$")


class _Missing:
    """A value that is not there (a removed key or list item), distinct from None."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# A path segment: ("key", dict key) or ("item", key field, key value) for an item of a keyed list.
Segment = tuple


@dataclass(frozen=True)
class DiffEntry:
    """One difference between two specs: `old` is None for additions, `new` is None for removals."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any
    new: Any


@dataclass(frozen=True)
class Conflict:
    """A path both sides changed differently; `base`/`ours`/`theirs` are None where the value is absent.

    `absent` names the sides on which the value does not exist (deleted or never
    there), `order` marks a conflict about the order of a keyed list (values are
    key sequences) and `segments` is the parsed path that `apply_resolutions` follows.
    """

    path: str
    base: Any
    ours: Any
    theirs: Any
    absent: frozenset = field(default=frozenset(), compare=False)
    order: bool = field(default=False, compare=False)
    segments: tuple = field(default=(), compare=False, repr=False)


def render_path(segments: tuple | list) -> str:
    parts: list[str] = []
    for segment in segments:
        if segment[0] == "key":
            key = str(segment[1])
            text = key if _PLAIN_KEY.match(key) else json.dumps(key)
            parts.append(text if not parts else f".{text}")
        else:
            value = str(segment[2])
            parts.append(f"[{value}]" if _PLAIN_ITEM.match(value) else f"[{json.dumps(value)}]")
    return "".join(parts)


# ---------------------------------------------------------------- keyed lists


def _list_key(*lists: Any) -> str | None:
    """The key field shared by these lists (missing ones ignored), or None to compare them whole."""
    present = [value for value in lists if value is not MISSING]
    if not all(isinstance(value, list) for value in present):
        return None
    items = [item for value in present for item in value]
    if not items:
        return None
    for key in ITEM_KEYS:
        if all(_keyable(value, key) for value in present):
            return key
    return None


def _keyable(items: list, key: str) -> bool:
    keys = []
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get(key), str | int)
            or isinstance(item[key], bool)
        ):
            return False
        keys.append(item[key])
    return len(keys) == len(set(keys))


def _by_key(items: Any, key: str) -> dict:
    if items is MISSING:
        return {}
    return {item[key]: item for item in items}


# ---------------------------------------------------------------- diff


def spec_diff(old: dict, new: dict) -> list[DiffEntry]:
    """Every difference from `old` to `new`, ordered by path (see the module docstring for paths)."""
    entries: list[DiffEntry] = []
    _diff(old, new, (), entries)
    return sorted(entries, key=lambda entry: entry.path)


def _diff(old: Any, new: Any, segments: tuple, out: list[DiffEntry]) -> None:
    if old == new:
        return
    path = render_path(segments)
    if old is MISSING:
        out.append(DiffEntry(path, "added", None, new))
    elif new is MISSING:
        out.append(DiffEntry(path, "removed", old, None))
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(old.get(key, MISSING), new.get(key, MISSING), (*segments, ("key", key)), out)
    elif (key := _list_key(old, new)) is not None:
        old_items, new_items = _by_key(old, key), _by_key(new, key)
        for name in [*old_items, *(k for k in new_items if k not in old_items)]:
            _diff(
                old_items.get(name, MISSING),
                new_items.get(name, MISSING),
                (*segments, ("item", key, name)),
                out,
            )
        old_order = [name for name in old_items if name in new_items]
        new_order = [name for name in new_items if name in old_items]
        if old_order != new_order:
            out.append(DiffEntry(path, "changed", old_order, new_order))
    else:
        out.append(DiffEntry(path, "changed", old, new))


# ---------------------------------------------------------------- three-way merge


def three_way_merge(base: dict, ours: dict, theirs: dict) -> tuple[dict, list[Conflict]]:
    """Apply the changes from `base` to `theirs` onto `ours`; return the merge and its conflicts.

    Changes made on one side only are taken; identical changes on both sides are
    taken once; a path changed differently on both sides (a deletion counts as a
    change) is a conflict and keeps `ours` in the merge until resolved. In a keyed
    list the merged order is ours' order, each item added by theirs placed after the
    item that precedes it in theirs (at the end when there is none); when only theirs
    reordered the shared items, theirs' order is taken, and when both reordered them
    differently that order is a conflict at the list's path.
    """
    conflicts: list[Conflict] = []
    merged = _merge(base, ours, theirs, (), conflicts)
    return (merged if merged is not MISSING else {}), conflicts


def _merge(base: Any, ours: Any, theirs: Any, segments: tuple, conflicts: list[Conflict]) -> Any:
    if ours == theirs:
        return ours
    if base == ours:
        return theirs
    if base == theirs:
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict) and (base is MISSING or isinstance(base, dict)):
        base_dict = base if isinstance(base, dict) else {}
        result: dict = {}
        for key in [*ours, *(k for k in theirs if k not in ours), *(k for k in base_dict if k not in ours)]:
            if key in result:
                continue
            value = _merge(
                base_dict.get(key, MISSING),
                ours.get(key, MISSING),
                theirs.get(key, MISSING),
                (*segments, ("key", key)),
                conflicts,
            )
            if value is not MISSING:
                result[key] = value
        return result
    if (
        isinstance(ours, list)
        and isinstance(theirs, list)
        and (key := _list_key(base if isinstance(base, list) else MISSING, ours, theirs)) is not None
    ):
        return _merge_keyed(
            base if isinstance(base, list) else MISSING, ours, theirs, key, segments, conflicts
        )
    conflicts.append(_conflict(segments, base, ours, theirs))
    return ours


def _merge_keyed(
    base: Any, ours: list, theirs: list, key: str, segments: tuple, conflicts: list[Conflict]
) -> list:
    base_items, our_items, their_items = _by_key(base, key), _by_key(ours, key), _by_key(theirs, key)
    merged: dict = {}
    for name in [*our_items, *their_items, *base_items]:
        if name in merged:
            continue
        merged[name] = _merge(
            base_items.get(name, MISSING),
            our_items.get(name, MISSING),
            their_items.get(name, MISSING),
            (*segments, ("item", key, name)),
            conflicts,
        )
    survivors = {name for name, value in merged.items() if value is not MISSING}

    shared = [name for name in base_items if name in our_items and name in their_items]
    base_order = shared
    our_order = [name for name in our_items if name in shared]
    their_order = [name for name in their_items if name in shared]
    primary, secondary = list(our_items), list(their_items)
    if our_order == base_order and their_order != base_order:
        primary, secondary = secondary, primary  # only theirs reordered: their order wins
    elif our_order != base_order and their_order not in (base_order, our_order):
        conflicts.append(
            Conflict(
                render_path(segments),
                base_order,
                our_order,
                their_order,
                order=True,
                segments=segments,
            )
        )
    order = [name for name in primary if name in survivors]
    anchor: Any = MISSING
    for name in secondary:
        if name in survivors and name not in order:
            position = order.index(anchor) + 1 if anchor is not MISSING and anchor in order else len(order)
            order.insert(position, name)
        if name in order:
            anchor = name
    order += [name for name in survivors if name not in order]
    return [merged[name] for name in order]


def _conflict(segments: tuple, base: Any, ours: Any, theirs: Any) -> Conflict:
    absent = frozenset(
        side for side, value in (("base", base), ("ours", ours), ("theirs", theirs)) if value is MISSING
    )

    def shown(value: Any) -> Any:
        return None if value is MISSING else value

    return Conflict(
        render_path(segments), shown(base), shown(ours), shown(theirs), absent=absent, segments=segments
    )


# ---------------------------------------------------------------- resolutions


def apply_resolutions(
    merged: dict, conflicts: list[Conflict], resolutions: dict[str, Literal["ours", "theirs"]]
) -> dict:
    """Return a copy of `merged` with each conflict settled by its resolution ("ours" or "theirs").

    A conflict without a resolution keeps ours (already in `merged`). An item that
    only theirs has is appended to its list.
    """
    result = json.loads(json.dumps(merged))
    for conflict in conflicts:
        choice = resolutions.get(conflict.path, "ours")
        if choice not in ("ours", "theirs"):
            raise ValueError(f"resolution for {conflict.path} must be 'ours' or 'theirs', not {choice!r}")
        value = conflict.ours if choice == "ours" else conflict.theirs
        segments = conflict.segments or parse_path(conflict.path)
        if conflict.order:
            _reorder(_locate(result, segments), value)
            continue
        _set(result, segments, MISSING if choice in conflict.absent else value)
    return result


def _reorder(items: Any, order: list) -> None:
    if not isinstance(items, list) or (key := _list_key(items)) is None:
        return
    rank = {name: index for index, name in enumerate(order)}
    items.sort(key=lambda item: rank.get(item[key], len(rank)))


def _locate(document: Any, segments: tuple | list) -> Any:
    node = document
    for segment in segments:
        if segment[0] == "key":
            node = node[segment[1]]
        else:
            node = next(item for item in node if _matches(item, segment))
    return node


def _matches(item: Any, segment: Segment) -> bool:
    _kind, key, value = segment
    if not isinstance(item, dict):
        return False
    # A segment parsed from text does not know the key field: `name`, else `id`.
    keys = [key] if key is not None else [k for k in ITEM_KEYS if k in item][:1]
    return any(k in item and str(item[k]) == str(value) for k in keys)


def _set(document: dict, segments: tuple | list, value: Any) -> None:
    if not segments:
        raise ValueError("cannot replace the whole spec")
    parent = _locate(document, segments[:-1])
    last = segments[-1]
    if last[0] == "key":
        if value is MISSING:
            parent.pop(last[1], None)
        else:
            parent[last[1]] = value
        return
    index = next((i for i, item in enumerate(parent) if _matches(item, last)), None)
    if value is MISSING:
        if index is not None:
            del parent[index]
    elif index is None:
        parent.append(value)
    else:
        parent[index] = value


_TOKEN = re.compile(r'\.?(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_\-]+))|\[(?:"((?:[^"\\]|\\.)*)"|([^\]]*))\]')


def parse_path(path: str) -> tuple:
    """Parse a rendered path back into segments (item keys are matched on `name` or `id`)."""
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise ValueError(f"not a spec path: {path!r}")
        quoted_key, key, quoted_item, item = match.groups()
        if quoted_key is not None or key is not None:
            segments.append(("key", json.loads(f'"{quoted_key}"') if quoted_key is not None else key))
        else:
            value = json.loads(f'"{quoted_item}"') if quoted_item is not None else item
            segments.append(("item", None, value))
        position = match.end()
    return tuple(segments)
