"""Field mappings as YAML: how a client's tables and columns carry a deployment's canonical data.

    entities:
      ticket:
        table: hd_tkt                 # main table (may be schema-qualified: sales.hd_tkt)
        key: tkt_id                   # its primary key column: the canonical field `id`
        fields:                       # canonical field -> column of the main table, or side_table.column
          subject: tkt_subj
          description: hd_tkt_txt.body
          team_id: null               # not in this client's database: tools leave it out
        joins:                        # side tables: which of their columns holds which main-table column
          hd_tkt_txt: {column: tkt_ref, references: tkt_id}

`parse_mapping_yaml` checks the text against the deployment's pinned spec
(`data`: entities, fields, types, required flags) and returns the normalised
spec the client-database layer reads, or raises MappingError with every problem
and the YAML line it is on. Identifiers are plain SQL names only (letters,
digits, `_`, `$`), so nothing typed here can become SQL beyond a name.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.core.exceptions import ApplicationError

# The agent spec editor's safe loader (JSON values only, no aliases, no custom tags, bounded depth)
# and its walk from an error path to a YAML line.
from apps.factory.yaml_spec import _line, _Loader, _refuse_duplicate_keys, _TooDeep

__all__ = ["MappingError", "parse_mapping_yaml", "starter_yaml"]

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]*"
COLUMN_RE = re.compile(rf"^{IDENTIFIER}$")
TABLE_RE = re.compile(rf"^{IDENTIFIER}(\.{IDENTIFIER})?$")
FIELD_REF_RE = re.compile(rf"^{IDENTIFIER}(\.{IDENTIFIER}){{0,2}}$")
CANONICAL_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_IDENTIFIER = 63  # PostgreSQL's limit, the strictest of the three engines
KEY_FIELD = "id"


class MappingError(ApplicationError):
    """An invalid mapping; `errors` is a list of {path, message, line}."""

    def __init__(self, errors: list[dict]):
        summary = "; ".join(f"{e['path'] or '(mapping)'}: {e['message']}" for e in errors)
        super().__init__(f"The field mapping has errors: {summary}", field="yaml")
        self.errors = errors


# --- Structure (pydantic) ------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Join(_Strict):
    column: str = Field(description="The side table's column that holds the main table's value.")
    references: str = Field(description="The main table's column it holds (usually the key).")


class _Entity(_Strict):
    table: str
    key: str
    fields: dict[str, str | None] = Field(default_factory=dict)
    joins: dict[str, _Join] = Field(default_factory=dict)


class _Document(_Strict):
    entities: dict[str, _Entity] = Field(min_length=1)


# --- Parsing -------------------------------------------------------------------------------------


def _error(path: str, message: str) -> dict:
    return {"path": path, "message": message, "line": None}


def _load(text: str, max_bytes: int) -> tuple[Any, Any]:
    """(data, root node) of the YAML text; MappingError with the line of a syntax problem."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise MappingError([_error("", f"The mapping is too large ({size} bytes; at most {max_bytes}).")])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
        _refuse_duplicate_keys(root)
    except _TooDeep as exc:
        mark = exc.problem_mark
        raise MappingError(
            [{"path": "", "message": str(exc.problem), "line": mark.line + 1 if mark else None}]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        problem = problem.replace("in a spec", "in a mapping")
        raise MappingError(
            [
                {
                    "path": "",
                    "message": f"YAML syntax error: {problem}",
                    "line": mark.line + 1 if mark is not None else None,
                }
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise MappingError([_error("", f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise MappingError([_error("", "The YAML is nested too deeply.")]) from None
    except (ValueError, UnicodeError) as exc:
        raise MappingError([_error("", f"The YAML cannot be read: {exc}")]) from None
    finally:
        loader.dispose()
    return data, root


def parse_mapping_yaml(text: str, *, data: list[dict], max_bytes: int = 100_000) -> dict:
    """Validate a mapping typed as YAML against the agent's canonical `data`; return the normalised spec.

    `data` is the pinned version's `spec["data"]`: [{name, fields: [{name, type, required, …}]}].
    The result: {"entities": {entity: {table, key, fields: {field: column | "side.column" | None},
    joins: {side: {column, references}}, types: {field: type}}}, "warnings": [str]}. Every canonical
    field of a mapped entity appears in `fields`; None means "not in this database" (tools leave it out).
    Raises MappingError; each error carries the 1-based `line` it concerns.
    """
    document, root = _load(text, max_bytes)
    if not isinstance(document, dict):
        raise MappingError(
            [{"path": "", "message": "The mapping must be a YAML mapping with `entities:`.", "line": 1}]
        )
    try:
        parsed = _Document.model_validate(document)
    except ValidationError as exc:
        errors = [
            _error(".".join(str(part) for part in err["loc"]), re.sub(r"^Value error, ", "", err["msg"]))
            for err in exc.errors()
        ]
        raise MappingError(_with_lines(errors, root)) from None
    spec, errors, warnings = _check(parsed, data)
    if errors:
        raise MappingError(_with_lines(errors, root))
    spec["warnings"] = warnings
    return spec


def _with_lines(errors: list[dict], root: Any) -> list[dict]:
    return [{**error, "line": _line(root, error["path"])} for error in errors]


def _identifier(value: str, pattern: re.Pattern, what: str) -> str | None:
    """The problem with a SQL name, or None."""
    if not pattern.match(value):
        return (
            f"'{value}' is not a valid {what}: letters, digits, _ and $ only, "
            "not starting with a digit" + (" (schema.table allowed)" if pattern is TABLE_RE else "")
        )
    if any(len(part) > MAX_IDENTIFIER for part in value.split(".")):
        return f"'{value}' is longer than {MAX_IDENTIFIER} characters"
    return None


def _check(parsed: _Document, data: list[dict]) -> tuple[dict, list[dict], list[str]]:
    """Cross-check the structure with the agent's data; (normalised spec, errors, warnings)."""
    errors: list[dict] = []
    warnings: list[str] = []
    canonical = {entity["name"]: entity for entity in data if isinstance(entity, dict) and "name" in entity}
    entities: dict[str, dict] = {}
    for name, entity in parsed.entities.items():
        path = f"entities.{name}"
        known = canonical.get(name)
        if known is None:
            choices = ", ".join(sorted(canonical)) or "none"
            errors.append(_error(path, f"'{name}' is not an entity of this agent (its entities: {choices})"))
            continue
        entities[name] = _check_entity(path, entity, known, errors, warnings)
    for name in canonical:
        if name not in parsed.entities:
            warnings.append(f"Entity '{name}' is not mapped: the agent's tools cannot reach it.")
    return {"entities": entities}, errors, warnings


def _check_entity(path: str, entity: _Entity, known: dict, errors: list[dict], warnings: list[str]) -> dict:
    fields_spec = {field["name"]: field for field in known.get("fields", []) if isinstance(field, dict)}
    for value, pattern, what, where in (
        (entity.table, TABLE_RE, "table name", "table"),
        (entity.key, COLUMN_RE, "column name", "key"),
    ):
        if problem := _identifier(value, pattern, what):
            errors.append(_error(f"{path}.{where}", problem))
    for side, join in entity.joins.items():
        if problem := _identifier(side, TABLE_RE, "table name"):
            errors.append(_error(f"{path}.joins.{side}", problem))
        elif side == entity.table:
            errors.append(_error(f"{path}.joins.{side}", "a side table cannot be the main table itself"))
        for attribute in ("column", "references"):
            if problem := _identifier(getattr(join, attribute), COLUMN_RE, "column name"):
                errors.append(_error(f"{path}.joins.{side}.{attribute}", problem))

    fields: dict[str, str | None] = {}
    columns: dict[str, str] = {f"{entity.table}.{entity.key}": KEY_FIELD}
    used_joins: set[str] = set()
    for field, column in entity.fields.items():
        where = f"{path}.fields.{field}"
        if field == KEY_FIELD:
            errors.append(_error(where, f"'{KEY_FIELD}' is the entity's key: set it with `key:`"))
            continue
        if field not in fields_spec:
            choices = ", ".join(sorted(set(fields_spec) - {KEY_FIELD})) or "none"
            errors.append(
                _error(where, f"'{field}' is not a field of {known['name']} (its fields: {choices})")
            )
            continue
        if column is None:
            if fields_spec[field].get("required"):
                errors.append(
                    _error(where, f"'{field}' is required by the agent and must be mapped to a column")
                )
            fields[field] = None
            continue
        if problem := _identifier(column, FIELD_REF_RE, "column reference"):
            errors.append(_error(where, problem))
            continue
        table, _, name = column.rpartition(".")
        if table:
            if table not in entity.joins:
                errors.append(
                    _error(
                        where,
                        f"'{column}' is in side table '{table}', which has no entry under joins "
                        "(how its rows join the main table)",
                    )
                )
                continue
            used_joins.add(table)
        qualified = f"{table or entity.table}.{name}"
        if qualified in columns:
            errors.append(_error(where, f"column '{column}' is already mapped to '{columns[qualified]}'"))
            continue
        columns[qualified] = field
        fields[field] = column
    for field, spec in fields_spec.items():
        if field == KEY_FIELD or field in entity.fields:
            continue
        if spec.get("required"):
            errors.append(
                _error(f"{path}.fields", f"'{field}' is required by the agent and must be mapped to a column")
            )
        else:
            fields[field] = None
            warnings.append(f"{known['name']}.{field} is not mapped: tools leave it out.")
    for side in entity.joins:
        if side not in used_joins:
            warnings.append(f"{known['name']}: side table '{side}' is joined but no field uses it.")
    return {
        "table": entity.table,
        "key": entity.key,
        "fields": fields,
        "joins": {side: join.model_dump() for side, join in entity.joins.items()},
        "types": {name: spec.get("type", "string") for name, spec in fields_spec.items()},
    }


def starter_yaml(data: list[dict]) -> str:
    """A first mapping to edit: every canonical entity onto a table of its name, each field onto a column
    of its name (the next step is to replace the names with the client's own)."""
    lines = [
        "# Map each canonical entity onto the client's table, and each field onto a column.",
        "# A field in another table: side_table.column, with that table under joins.",
        "# A field the client's database does not have: null.",
        "entities:",
    ]
    for entity in data:
        if not isinstance(entity, dict) or not entity.get("name"):
            continue
        names = [f["name"] for f in entity.get("fields", []) if isinstance(f, dict) and f.get("name")]
        names = [name for name in names if name != KEY_FIELD]
        lines += [f"  {entity['name']}:", f"    table: {entity['name']}", f"    key: {KEY_FIELD}"]
        lines += (
            ["    fields:", *(f"      {name}: {name}" for name in names)] if names else ["    fields: {}"]
        )
    return "\n".join(lines) + "\n"
