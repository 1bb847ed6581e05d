"""The agent spec as YAML, the form a person reads and edits in the spec editor.

`spec_to_yaml` writes a stable, block-style document; `parse_spec_yaml` reads
one back and validates it, reporting every error with the line it is on: the
line of a YAML syntax error, or for a validation error the line of the node its
path leads to (the nearest existing parent when the node itself is missing).
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from .spec import SpecError, validate_spec

__all__ = ["line_of_path", "parse_spec_yaml", "spec_to_yaml"]

TOP_LEVEL_ORDER = ("instructions", "tools", "data", "workflows", "planner", "policy_pack")
# Free-form mappings (step parameters, tool settings): their contents are written as they are.
FREE_FORM = ("params", "settings")


# ---------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as literal blocks (`|`)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        # Indent list items under their key, which reads better than PyYAML's default.
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        # Literal blocks cannot carry trailing spaces on a line; strip them so the style holds.
        value = "\n".join(line.rstrip() for line in value.split("\n"))
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    # Short lists of plain words (entities, inputs) read best on one line: [ticket, person].
    flow = (
        bool(value)
        and all(isinstance(item, str | int | float) and "\n" not in str(item) for item in value)
        and sum(len(str(item)) + 2 for item in value) <= 80
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def spec_to_yaml(spec: dict) -> str:
    """The spec as YAML: top-level keys in the canonical order, empty optional values left out."""
    ordered = {key: spec[key] for key in TOP_LEVEL_ORDER if key in spec}
    ordered.update({key: value for key, value in spec.items() if key not in ordered})
    document = {key: _compact(value) for key, value in ordered.items()}
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )


def _compact(value: Any) -> Any:
    """Drop None / "" / [] / {} values below the top level (they are the schema's defaults)."""
    if isinstance(value, list):
        return [_compact(item) for item in value]
    if isinstance(value, dict):
        return {
            key: item if key in FREE_FORM else _compact(item)
            for key, item in value.items()
            if not _empty(item)
        }
    return value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# ---------------------------------------------------------------- reading


# Deeper than any real spec; refused before PyYAML's recursive composer can hit Python's recursion limit.
MAX_DEPTH = 64
# Implicit types that are not JSON: a date or time stays the string that was typed, `=` is just text.
_NOT_JSON_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")
# Explicit tags whose values are not JSON (bytes, sets, ordered pairs, dates): refused with their line.
_REFUSED_TAGS = (
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
    "tag:yaml.org,2002:timestamp",
)


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting past MAX_DEPTH; reported as it is, not as a syntax error."""


class _Loader(yaml.SafeLoader):
    """A safe loader that builds only JSON values: str, int, finite float, bool, None, list, dict.

    It refuses aliases (`*name`: they can expand a small text into a huge spec),
    nesting deeper than MAX_DEPTH, tags for non-JSON values (`!!binary`, `!!set`,
    custom `!tags`…) and `.nan`/`.inf`; dates are not recognised, so they stay strings.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _NOT_JSON_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    yaml_constructors = {
        tag: constructor
        for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
        if tag not in _REFUSED_TAGS
    }

    _depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a spec", event.start_mark
            )
        if self._depth >= MAX_DEPTH:
            raise _TooDeep(
                problem="The YAML is nested too deeply.", problem_mark=self.peek_event().start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        # An explicit tag on a value it cannot hold (`!!int abc`, `!!bool maybe`) fails inside PyYAML
        # with a plain ValueError/KeyError; report it on the value's line instead.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{node.value}' cannot be read as {_short(node.tag)}", node.start_mark
            ) from exc

    def construct_finite_float(self, node):
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"'{node.value}' is not a finite number, which a spec needs", node.start_mark
            )
        return value

    def construct_refused(self, node):
        raise yaml.constructor.ConstructorError(
            None, None, f"the tag {_short(node.tag)} is not allowed in a spec", node.start_mark
        )


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_finite_float)
_Loader.add_constructor(None, _Loader.construct_refused)


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def parse_spec_yaml(text: str, *, max_bytes: int = 200_000) -> dict:
    """Parse and validate a spec written as YAML; return the normalised spec.

    Raises SpecError whose errors carry the 1-based `line` they refer to.
    """
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise SpecError(
            [
                {
                    "path": "",
                    "message": f"The spec is too large ({size} bytes; at most {max_bytes}).",
                    "line": None,
                }
            ]
        )
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
        _refuse_duplicate_keys(root)
    except _TooDeep as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError([{"path": "", "message": exc.problem, "line": line}]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SpecError(
            [
                {
                    "path": "",
                    "message": f"YAML syntax error: {problem}",
                    "line": mark.line + 1 if mark is not None else None,
                }
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([{"path": "", "message": f"YAML syntax error: {exc}", "line": None}]) from None
    except RecursionError:
        # MAX_DEPTH should stop it first; kept so no input can turn into a server error.
        raise SpecError([{"path": "", "message": "The YAML is nested too deeply.", "line": None}]) from None
    except (ValueError, UnicodeError) as exc:
        raise SpecError([{"path": "", "message": f"The YAML cannot be read: {exc}", "line": None}]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(
            [
                {
                    "path": "",
                    "message": "The spec must be a mapping with instructions, tools, data, workflows…",
                    "line": 1,
                }
            ]
        )
    try:
        return validate_spec(data)
    except SpecError as exc:
        errors = []
        for error in exc.errors:
            path = error["path"] or _locate_model_error(data) or ""
            errors.append({**error, "path": path, "line": _line(root, path)})
        raise SpecError(errors) from None


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _refuse_duplicate_keys(node: Node | None) -> None:
    # PyYAML keeps the last of two equal keys without a word; a person should hear about it.
    if isinstance(node, MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise _DuplicateKey(
                    problem=f"duplicate key '{key_node.value}'", problem_mark=key_node.start_mark
                )
            seen.add(key_node.value)
            _refuse_duplicate_keys(value_node)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item)


def line_of_path(text: str, path: str) -> int | None:
    """The 1-based line of the node at a dotted error path in YAML text (None if it does not parse)."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    return _line(root, path)


def _line(root: Node | None, path: str) -> int | None:
    """Walk `a.0.b` through the node tree; stop at the deepest node that exists."""
    if root is None:
        return None
    node: Node = root
    line = root.start_mark.line + 1
    for part in path.split(".") if path else []:
        if isinstance(node, MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == part), None)
            if found is None:
                break
            key_node, node = found
            line = key_node.start_mark.line + 1
        elif isinstance(node, SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _locate_model_error(data: dict) -> str | None:
    """The path of the first cross-reference problem in a spec whose fields are otherwise valid.

    The spec's consistency checks (unique names, tools naming known entities,
    steps naming allowed tools and known entities) report on the whole spec; this
    finds the offending node, in the same order, so the editor can point at its line.
    """

    def name(value: Any) -> str:
        return value.strip() if isinstance(value, str) else value

    def first_duplicate(items: list, key: str, prefix: str) -> str | None:
        seen = set()
        for index, item in enumerate(items):
            value = name(item.get(key)) if isinstance(item, dict) else None
            if value in seen:
                return f"{prefix}.{index}.{key}"
            seen.add(value)
        return None

    tools = data.get("tools") or []
    entities = data.get("data") or []
    workflows = data.get("workflows") or []
    if not all(isinstance(x, list) for x in (tools, entities, workflows)):
        return None
    for items, prefix in ((tools, "tools"), (entities, "data"), (workflows, "workflows")):
        if found := first_duplicate(items, "name", prefix):
            return found
    entity_names = {name(e.get("name")) for e in entities if isinstance(e, dict)}
    tool_names = {name(t.get("name")) for t in tools if isinstance(t, dict)}
    for t_index, tool in enumerate(tools):
        for e_index, entity in enumerate((tool or {}).get("entities") or []):
            if name(entity) not in entity_names:
                return f"tools.{t_index}.entities.{e_index}"
    for w_index, workflow in enumerate(workflows):
        for s_index, step in enumerate((workflow or {}).get("steps") or []):
            if not isinstance(step, dict):
                continue
            if name(step.get("tool")) not in tool_names:
                return f"workflows.{w_index}.steps.{s_index}.tool"
            if step.get("entity") and name(step["entity"]) not in entity_names:
                return f"workflows.{w_index}.steps.{s_index}.entity"
    return None
