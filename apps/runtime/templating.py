"""Workflow step parameters and conditions: `{{ inputs.x }}` templates and CEL `when` conditions.

Templates only look names up — `inputs.<name>`, `steps.<id>.<field>` (an earlier step's result; a
query's result has `rows` and `count`) and `now` — nothing is executed. A parameter that is exactly one
placeholder keeps the value's type (a number stays a number); placeholders inside text are formatted
into it. A name that does not resolve is an error, so a step never runs with a silently empty value.
`when` conditions are CEL over the same names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import cel

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
MAX_DEPTH = 20


class TemplateError(Exception):
    """A template or condition that cannot be resolved; the message names it."""


def lookup(path: str, names: Mapping[str, Any]) -> Any:
    value: Any = names
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(f"{{{{ {path} }}}}: {'.'.join(walked)} is not available here.")
    return value


def render(value: Any, names: Mapping[str, Any], *, depth: int = 0) -> Any:
    """`value` with every placeholder replaced (recursively through maps and lists)."""
    if depth > MAX_DEPTH:
        raise TemplateError("The parameters are nested too deeply.")
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return lookup(whole.group(1), names)
        return PLACEHOLDER.sub(lambda m: _text(lookup(m.group(1), names)), value)
    if isinstance(value, Mapping):
        return {key: render(item, names, depth=depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, names, depth=depth + 1) for item in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_holds(expression: str, names: Mapping[str, Any]) -> bool:
    """Evaluate a `when` condition; TemplateError when it does not compile, errors or is not a boolean."""
    try:
        program = cel.compile(expression)
        result = program.execute(cel.Context(_cel_safe(dict(names))))
    except Exception as exc:  # the CEL binding raises plain ValueError/RuntimeError/TypeError
        raise TemplateError(f"Condition `{expression}`: {exc}") from None
    if not isinstance(result, bool):
        raise TemplateError(f"Condition `{expression}` is not true or false.")
    return result


def _cel_safe(value: Any) -> Any:
    """CEL takes maps, lists, strings, numbers, booleans and null; anything else goes in as text."""
    if isinstance(value, Mapping):
        return {str(key): _cel_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cel_safe(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
