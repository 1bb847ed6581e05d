"""What a condition reads, and conditions rewritten to read scalar slots instead.

`read_paths` finds the dotted field paths a condition reads (the original evaluation copies just
those subtrees into CEL, `_pruned`); `_flatten` and `_compile_flat` rewrite a condition so each path
it reads becomes one variable (a _Slot), checked against `read_paths` so both forms read the same
values. Works on the condition's text with string literals and comments blanked out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import cel

from ..rules import CONTEXT_VARIABLES
from .native import NativeCheck, _native


@dataclass(frozen=True, slots=True)
class _Slot:
    """One variable of a flattened condition, looked up in Python at evaluation time.

    `kind` is "value" (the value at `path`), "has" (whether the map at `path[:-1]` holds the key
    `path[-1]`, i.e. CEL's `has()`) or "size" (the length of the list or map at `path`). `steps`
    are the keys walked from the root variable: to the value, or to the map `has()` looks in.
    """

    index: int
    name: str
    kind: str
    path: tuple[str, ...]
    root: str = field(init=False)
    steps: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "root", self.path[0])
        object.__setattr__(self, "steps", self.path[1:-1] if self.kind == "has" else self.path[1:])


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CHAIN_RE = re.compile(rf"(?<![\w.])({_IDENT})((?:\s*\.\s*{_IDENT})*)")
_SEGMENT_RE = re.compile(rf"\.\s*({_IDENT})")
_CALL_RE = re.compile(r"\s*\(")


def _blank_literals(condition: str) -> str:
    """The condition with every string/bytes literal and `//` comment blanked out to spaces.

    Offsets are kept, so spans found in the blanked text apply to the original. Follows CEL's
    lexical grammar: optional r/b prefixes, single, double and triple quotes, backslash escapes
    except in raw strings. Text that looks like a path inside a literal must never be read or
    rewritten as one.
    """
    if "'" not in condition and '"' not in condition and "//" not in condition:
        return condition
    out: list[str] = []
    i, n = 0, len(condition)
    while True:
        found = _LITERAL_START_RE.search(condition, i)
        if found is None:
            out.append(condition[i:])
            return "".join(out)
        start = found.start()
        if found.group() == "//":
            end = condition.find("\n", start)
            end = n if end < 0 else end
        else:
            char = found.group()
            # Up to two prefix letters (r, b, rb, br) belong to the literal, unless they end a name.
            while start > i and found.start() - start < 2 and condition[start - 1] in "rRbB":
                start -= 1
            if start > 0 and (condition[start - 1].isalnum() or condition[start - 1] == "_"):
                start = found.start()
            raw = "r" in condition[start : found.start()].lower()
            quote = char * 3 if condition.startswith(char * 3, found.start()) else char
            j = found.start() + len(quote)
            while j < n and not condition.startswith(quote, j):
                j += 2 if condition[j] == "\\" and not raw else 1
            end = min(n, j + len(quote))
        out.append(condition[i:start])
        out.append(" " * (end - start))
        i = end


_LITERAL_START_RE = re.compile(r"['\"]|//")


def read_paths(condition: str, variables: Iterable[str]) -> frozenset[tuple[str, ...]]:
    """The dotted field paths a condition reads from its variables.

    `action.params.amount > 5 && action.target_ids.size() > 1` reads ("action", "params", "amount")
    and ("action", "target_ids"): a chain stops before a method call, and any other use (index,
    `in`, a bare variable) reads the whole subtree at the chain. Conservative by construction: a
    subtree is kept whole below the last plain field selection.
    """
    roots = set(variables)
    stripped = _blank_literals(condition)
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


# --- Flattening conditions ----------------------------------------------------------

# One pass over a blanked condition, left to right: has(chain), size(chain), or a chain
# (identifier.field.field...). A chain is consumed whole, so its field names are never taken for
# variables.
_FLAT_RE = re.compile(
    rf"(?P<has>has\s*\(\s*(?P<has_chain>{_IDENT}(?:\s*\.\s*{_IDENT})+)\s*\))"
    rf"|(?P<size>size\s*\(\s*(?P<size_chain>{_IDENT}(?:\s*\.\s*{_IDENT})*)\s*\))"
    rf"|(?P<chain>{_IDENT}(?:\s*\.\s*{_IDENT})*)"
)
_IDENT_RE = re.compile(_IDENT)
_EMPTY_CALL_RE = re.compile(r"\s*\(\s*\)")
# A name bound by a macro or cel.bind: `xs.all(x, ...)`, `m.all(k, v, ...)`, `cel.bind(x, ...)`.
_BINDING_RE = re.compile(rf"\(\s*(?:{_IDENT}\s*,\s*)?({_IDENT})\s*,")
_SLOT_PREFIX = {"value": "__v", "has": "__h", "size": "__n"}


def _preceding(text: str, index: int) -> str:
    """The last non-blank character before `index` ('' at the start)."""
    stripped = text[:index].rstrip()
    return stripped[-1] if stripped else ""


def _flatten(
    condition: str, roots: frozenset[str], slot_for: Callable[[str, tuple[str, ...]], _Slot]
) -> tuple[str, list[_Slot]] | None:
    """Rewrite a condition so that it reads scalar slots instead of walking `roots`' maps.

    Returns the rewritten source and the slots it reads, or None when the condition cannot be
    flattened safely (then it runs in its original form). `slot_for(kind, path)` hands out the
    ruleset's slot for a path, so conditions reading the same field share one variable.
    """
    blanked = _blank_literals(condition)
    if "__" in blanked:
        return None  # could clash with a generated name
    if any(match.group(1) in roots for match in _BINDING_RE.finditer(blanked)):
        return None  # a comprehension variable named like a context variable shadows it
    pieces: list[str] = []
    used: list[_Slot] = []
    copied = 0

    def replace(start: int, end: int, kind: str, path: tuple[str, ...]) -> None:
        nonlocal copied
        slot = slot_for(kind, path)
        pieces.append(condition[copied:start])
        pieces.append(slot.name)
        used.append(slot)
        copied = end

    for match in _FLAT_RE.finditer(blanked):
        before = _preceding(blanked, match.start())
        if before == "." or (
            before == "?" and _preceding(blanked, blanked.rindex("?", 0, match.start())) == "."
        ):
            continue  # a field or method name after `.` / `.?`, not a variable
        if match.group("has"):
            path = tuple(_IDENT_RE.findall(match.group("has_chain")))
            if path[0] in roots:
                replace(match.start(), match.end(), "has", path)
            continue
        if match.group("size"):
            path = tuple(_IDENT_RE.findall(match.group("size_chain")))
            if path[0] in roots:
                replace(match.start(), match.end(), "size", path)
            continue
        segments = list(_IDENT_RE.finditer(blanked, match.start(), match.end()))
        if segments[0].group() not in roots:
            continue
        path = tuple(segment.group() for segment in segments)
        if _CALL_RE.match(blanked, match.end()):
            if len(path) == 1:
                continue  # a function named like a variable: CEL reports it
            empty_call = _EMPTY_CALL_RE.match(blanked, match.end())
            if path[-1] == "size" and empty_call:
                replace(match.start(), empty_call.end(), "size", path[:-1])
            else:  # a method call: its receiver is the value read
                replace(match.start(), segments[-2].end(), "value", path[:-1])
            continue
        replace(match.start(), match.end(), "value", path)
    pieces.append(condition[copied:])
    return "".join(pieces), used


def _slot_paths(slots: Iterable[_Slot]) -> set[tuple[str, ...]]:
    """The paths the original condition reads for these slots (what its pruned context copies)."""
    return {slot.path for slot in slots}


def _compile_flat(
    condition: str,
    variables: frozenset[str],
    paths: frozenset[tuple[str, ...]],
    slot_for: Callable[[str, tuple[str, ...]], _Slot],
) -> tuple[cel.Program, list[_Slot], NativeCheck | None] | None:
    """The flattened program of a condition, its slots and its Python form, or None (run unflattened).

    Checked, not trusted: the rewritten program must read no context variable, every slot it names
    must be a variable of the program (so none landed in a literal), and its slots must cover
    exactly the paths `read_paths` finds (so both forms read, and convert, the same values).
    """
    roots = variables & CONTEXT_VARIABLES
    flattened = _flatten(condition, roots, slot_for)
    if flattened is None:
        return None
    source, slots = flattened
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError, TypeError):
        return None
    program_variables = set(program.variables())
    if program_variables & roots or not {slot.name for slot in slots} <= program_variables:
        return None
    if _minimal_paths(_slot_paths(slots)) != _minimal_paths({p for p in paths if p[0] in roots}):
        return None
    return program, slots, _native(source)
