"""Simple flattened conditions compiled to Python, which decides them only where CEL's answer is certain.

A tokenizer and parser for the covered subset (slots, literals, comparisons, `in`, `!`, `&&`, `||`,
`rate()`), a writer that turns the parse tree into a Python function answering True, False or _U
(unknown: run the condition in CEL), and the helpers that generated code calls. See the comment
below for what is covered and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .evaluation import _RateReader

# Handing values to CEL is most of what an evaluation costs (~1 µs per string, ~2 µs per list, for
# a condition that runs in ~0.2 µs), and most conditions are plain comparisons of scalars. So a
# flattened condition made only of slots, literals, comparisons, `in`, `!`, `&&`, `||`, parentheses
# and `rate('literal' + slot, seconds)` is also compiled to a small Python function that decides it
# *only where the answer is certain*:
#
# - a comparison when both sides are exactly the same kind: int with int (within CEL's int range),
#   double with double (no NaN), string with string, bool with bool (== and != only);
# - `x in list` when the list holds only strings (or only ints) and x is one too;
# - `a && b` false when either side is false, true when both are; `a || b` alike (CEL's own rule:
#   `false && x` is false whatever x is, an error included);
# - `!b` of a bool; `rate(...)` through the same reader CEL calls.
#
# Anything else answers _U (unknown): a missing slot, mixed kinds (1 == 1.0), null, maps, a list of
# mixed kinds, a failed rate read. The condition then runs in CEL, exactly as before; so Python
# never decides something CEL would decide differently, it only declines to decide.


class _Unknown:
    """The Python form cannot vouch for an answer: run the condition in CEL."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "_U"


_U = _Unknown()
_INT_MIN, _INT_MAX = -(2**63), 2**63  # CEL's int; a Python int outside converts to uint or fails
_NATIVE_TOKEN_RE = re.compile(
    r"\s*(?:(?P<slot>__[vhn]\d+)(?!\w)"
    r"|(?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)(?![\w.])"
    r"|(?P<int>\d+)(?![\w.])"
    r"|(?P<str>'[^'\\\n]*'|\"[^\"\\\n]*\")"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],+-])"
    r"|(?P<word>true|false|in|rate)(?!\w))"
)
_RELATIONS = ("==", "!=", "<=", ">=", "<", ">", "in")
NativeCheck = Callable[[dict, "_RateReader | None"], object]


class _NotNative(Exception):
    """The condition uses something the Python form does not cover."""


def _tokens(source: str) -> list[tuple[str, object]]:
    """The condition's tokens, or _NotNative at the first thing outside the covered subset.

    String literals are only the plain kind (no escapes, no prefix, not triple-quoted: a prefix
    letter or a third quote becomes a token the parser rejects), so their text is their value.
    """
    out: list[tuple[str, object]] = []
    position, end = 0, len(source.rstrip())
    while position < end:
        match = _NATIVE_TOKEN_RE.match(source, position)
        if match is None:
            raise _NotNative
        position = match.end()
        kind = match.lastgroup or ""
        text = match.group(kind)
        value: object = text
        if kind == "int":
            value = int(text)
            if value >= _INT_MAX:
                raise _NotNative  # out of CEL's int range: CEL says what it makes of it
        elif kind == "float":
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise _NotNative
        elif kind == "str":
            value = text[1:-1]
        out.append((kind, value))
    return out


class _NativeParser:
    """CEL's precedence over the covered subset: `||` < `&&` < one relation < `!`/`-` < operand.

    Produces nested tuples: ("slot", name), ("lit", value), ("cmp", op, a, b), ("in", a, b),
    ("not", a), ("and", a, b), ("or", a, b), ("rate", parts, seconds).
    """

    def __init__(self, tokens: list[tuple[str, object]]):
        self.tokens = tokens
        self.at = 0

    def parse(self) -> tuple:
        node = self.disjunction()
        if self.at != len(self.tokens):
            raise _NotNative
        return node

    def peek(self, *texts: str) -> str | None:
        if self.at < len(self.tokens):
            kind, value = self.tokens[self.at]
            if kind in ("op", "word") and value in texts:
                return str(value)
        return None

    def take(self, text: str) -> None:
        if not self.peek(text):
            raise _NotNative
        self.at += 1

    def next(self) -> tuple[str, object]:
        if self.at >= len(self.tokens):
            raise _NotNative
        self.at += 1
        return self.tokens[self.at - 1]

    def disjunction(self) -> tuple:
        node = self.conjunction()
        while self.peek("||"):
            self.at += 1
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.relation()
        while self.peek("&&"):
            self.at += 1
            node = ("and", node, self.relation())
        return node

    def relation(self) -> tuple:
        left = self.unary()
        op = self.peek(*_RELATIONS)
        if op is None:
            return left
        self.at += 1
        right = self.unary()
        if self.peek(*_RELATIONS):
            raise _NotNative  # a < b < c: CEL chains it left to right; not covered
        return ("in", left, right) if op == "in" else ("cmp", op, left, right)

    def unary(self) -> tuple:
        if self.peek("!"):
            self.at += 1
            return ("not", self.unary())
        if self.peek("-"):
            self.at += 1
            kind, value = self.next()
            if kind not in ("int", "float"):
                raise _NotNative
            return ("lit", -value)  # type: ignore[operator]
        return self.operand()

    def operand(self) -> tuple:
        kind, value = self.next()
        if kind == "slot":
            return ("slot", value)
        if kind in ("int", "float", "str"):
            return ("lit", value)
        if value in ("true", "false") and kind == "word":
            return ("lit", value == "true")
        if value == "rate" and kind == "word":
            self.take("(")
            parts = [self.key_part()]
            while self.peek("+"):
                self.at += 1
                parts.append(self.key_part())
            self.take(",")
            kind, seconds = self.next()
            if kind != "int":
                raise _NotNative
            self.take(")")
            return ("rate", tuple(parts), seconds)
        if value == "(" and kind == "op":
            node = self.disjunction()
            self.take(")")
            return node
        if value == "[" and kind == "op":
            items = []
            while True:
                kind, item = self.next()
                if kind not in ("int", "str"):
                    raise _NotNative
                items.append(item)
                if self.peek("]"):
                    self.at += 1
                    return ("lit", tuple(items))
                self.take(",")
        raise _NotNative

    def key_part(self) -> tuple:
        kind, value = self.next()
        if kind not in ("str", "slot"):
            raise _NotNative
        return ("lit", value) if kind == "str" else ("slot", value)


class _NativeWriter:
    """Writes a parsed condition as the body of `def check(v, rate)`: each node into a temporary.

    Every temporary holds True, False, a value or _U. Literals become parameters (L0, L1, ...) and
    slots `v.get(name, _U)`, so nothing from the condition is ever executed as Python, and
    conditions differing only in their literals share one piece of code (see `_native`).
    """

    def __init__(self):
        self.lines: list[str] = []
        self.count = 0
        self.literals: list[object] = []

    def temp(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def write(self, node: tuple, depth: int) -> str:
        """Emits statements that compute `node`; returns the expression holding its value."""
        kind = node[0]
        if kind == "lit":
            self.literals.append(node[1])
            return f"L{len(self.literals) - 1}"
        if kind == "slot":
            name = self.temp()
            self.emit(depth, f"{name} = v.get({node[1]!r}, _U)")
            return name
        out = self.temp()
        if kind == "cmp":
            _, op, left, right = node
            a, b = self.write(left, depth), self.write(right, depth)
            check = f"_same_kind({a}, {b}, {op not in ('==', '!=')})"
            if left[0] == "lit" or right[0] == "lit":  # the literal's kind is known: check the other side
                literal, other = (left[1], b) if left[0] == "lit" else (right[1], a)
                check = _kind_check(literal, other, op not in ("==", "!="))
            self.emit(depth, f"{out} = ({a} {op} {b}) if {check} else _U")
        elif kind == "in":
            a, b = self.write(node[1], depth), self.write(node[2], depth)
            self.emit(depth, f"{out} = _contains({a}, {b})")
        elif kind == "not":
            a = self.write(node[1], depth)
            self.emit(depth, f"{out} = (not {a}) if type({a}) is bool else _U")
        elif kind in ("and", "or"):
            decisive, other = ("False", "True") if kind == "and" else ("True", "False")
            a = self.write(node[1], depth)
            self.emit(depth, f"if {a} is {decisive}:")
            self.emit(depth + 1, f"{out} = {decisive}")
            self.emit(depth, "else:")
            b = self.write(node[2], depth + 1)
            self.emit(depth + 1, f"if {b} is {decisive}:")
            self.emit(depth + 2, f"{out} = {decisive}")
            self.emit(depth + 1, f"elif {a} is {other} and {b} is {other}:")
            self.emit(depth + 2, f"{out} = {other}")
            self.emit(depth + 1, "else:")
            self.emit(depth + 2, f"{out} = _U")
        elif kind == "rate":
            parts = [self.write(part, depth) for part in node[1]]
            seconds = self.write(("lit", node[2]), depth)
            self.emit(depth, f"{out} = _rate(rate, ({', '.join(parts)},), {seconds})")
        return out


def _kind_check(literal: object, other: str, ordered: bool) -> str:
    """A Python test that `other` is exactly the kind of `literal` (see _same_kind)."""
    if type(literal) is bool:
        return "False" if ordered else f"type({other}) is bool"
    if type(literal) is int:  # slot values reach Python checks only when within CEL's int range
        return f"type({other}) is int"
    if type(literal) is float:
        return f"type({other}) is float and {other} == {other}"
    if type(literal) is str:
        return f"type({other}) is str"
    return "False"  # a list literal compared with ==: not covered


def _same_kind(a, b, ordered: bool) -> bool:
    """Whether CEL compares `a` and `b` exactly as Python does (same kind, in range, no NaN)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is int:
        return _INT_MIN <= a < _INT_MAX and _INT_MIN <= b < _INT_MAX
    if kind is str:
        return True
    if kind is float:
        return a == a and b == b  # CEL errors on ordering NaN and NaN never equals
    return kind is bool and not ordered


def _contains(needle, haystack):
    """`needle in haystack` for a list of strings or of ints (CEL's `in`), else _U."""
    if type(haystack) is not list and type(haystack) is not tuple:
        return _U
    kind = type(needle)
    if kind is not str and not (kind is int and _INT_MIN <= needle < _INT_MAX):
        return _U
    for item in haystack:
        if not _same_kind(needle, item, False):
            return _U
    return needle in haystack


def _rate(rate: _RateReader | None, parts: tuple, seconds: int):
    """`rate(a + b + ..., seconds)` through the evaluation's reader, when every part is a string."""
    if rate is None:
        return _U
    for part in parts:
        if type(part) is not str:
            return _U
    try:
        count = rate("".join(parts), seconds)
    except Exception:
        return _U  # CEL runs it again, meets the same failure (read once) and records it
    return count if _INT_MIN <= count < _INT_MAX else _U


_NATIVE_GLOBALS = {"_U": _U, "_same_kind": _same_kind, "_contains": _contains, "_rate": _rate}
# Generated code → the function making a check from its literals. Compiling Python costs ~0.2 ms,
# so conditions of one shape (`__v0 > 300` and `__v0 > 5000`) compile once, in any ruleset.
_native_makers: dict[str, Callable[..., NativeCheck]] = {}
_MAX_NATIVE_MAKERS = 4096


def _native(source: str) -> NativeCheck | None:
    """The Python form of a flattened condition, or None when it uses more than the covered subset."""
    try:
        node = _NativeParser(_tokens(source)).parse()
    except _NotNative:
        return None
    writer = _NativeWriter()
    result = writer.write(node, 2)
    if node[0] in ("lit", "slot", "rate"):  # may be a non-bool: CEL reports that
        writer.emit(2, f"return {result} if type({result}) is bool else _U")
    else:
        writer.emit(2, f"return {result}")
    parameters = ", ".join(f"L{i}" for i in range(len(writer.literals)))
    code = (
        f"def make({parameters}):\n    def check(v, rate):\n" + "\n".join(writer.lines) + "\n    return check"
    )
    make = _native_makers.get(code)
    if make is None:
        namespace: dict = {}
        # The code is written by _NativeWriter from the parse tree; no text of the condition is in it.
        exec(code, dict(_NATIVE_GLOBALS), namespace)  # noqa: S102
        if len(_native_makers) >= _MAX_NATIVE_MAKERS:
            _native_makers.clear()
        make = _native_makers[code] = namespace["make"]
    return make(*writer.literals)
