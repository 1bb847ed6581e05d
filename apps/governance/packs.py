"""Vendor policy packs as governance rules: check a new pack version, publish it, read its history.

The factory stores pack versions (`apps.factory.services.policy_pack_publish`) but may not import
governance, so it only checks the rule *format*. Here a pack's rules are checked the way the
engine will run them: each as a locked vendor rule (layer "vendor", source "policy_pack") through
`apps.governance.rules.validate_rules`, which compiles every condition (CEL syntax with its
position, the cost bound, variables limited to the context). The editor in the super-admin portal
calls `policy_pack_check` for its preview and `policy_pack_publish_checked` to publish.

Rules are edited as YAML: a mapping with one key, `rules`, holding the list (the factory's safe
loader: JSON values only, no aliases or tags). Every error carries its path (`rules[3].condition`),
the rule's key when known, and the YAML line it points at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import Http404

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.factory import selectors as factory_selectors
from apps.factory import services as factory_services
from apps.factory.models import AgentVariant, AgentVersion, PolicyPack, PolicyPackVersion
from apps.factory.policy import PolicyRule, RuleSelector
from apps.factory.yaml_spec import _Dumper, _Loader, _refuse_duplicate_keys, line_of_path
from apps.tenancy.selectors import HistoryEntry

from .diff import RuleChange, rules_diff
from .rules import GovernanceRule, RulesetError, check_condition, validate_rules

__all__ = [
    "PackCheck",
    "access_policy_pack",
    "pack_version_get",
    "pack_versions",
    "policy_pack_check",
    "policy_pack_history",
    "policy_pack_publish_checked",
    "policy_pack_usage",
    "rules_from_yaml",
    "rules_to_yaml",
]

MAX_YAML_BYTES = 200_000
PACK_FIELDS = frozenset(PolicyRule.model_fields)
GOVERNANCE_ONLY = frozenset(GovernanceRule.model_fields) - PACK_FIELDS
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([A-Za-z_][A-Za-z0-9_]*)")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+)")


# ---------------------------------------------------------------- YAML


class _RulesDumper(_Dumper):
    """The spec editor's block style; long or quote-laden strings (CEL conditions) as literal blocks."""

    def ignore_aliases(self, data) -> bool:
        # Rules may share a selector list in memory; the loader refuses aliases, so never write one.
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A long string would be folded over lines, and a condition that needs quoting would get its own
    # quotes doubled or escaped: both read and edit best as typed, in a literal block.
    needs_quotes = not dumper.analyze_scalar(value).allow_block_plain
    if "\n" in value or len(value) > 80 or (needs_quotes and any(char in value for char in "'\"\\")):
        value = "\n".join(line.rstrip() for line in value.split("\n"))
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_RulesDumper.add_representer(str, _represent_str)


def _compact_rule(rule: dict) -> dict:
    """A rule in the field order of the format, without its empty values (the defaults).

    Stored rules come back from PostgreSQL (jsonb) with their keys reordered; a person reads them
    key, name, selector, condition, effect… as the format lists them.
    """
    ordered = [name for name in PolicyRule.model_fields if name in rule]
    ordered += [name for name in rule if name not in PolicyRule.model_fields]
    out = {}
    for name in ordered:
        value = rule[name]
        if name == "selector" and isinstance(value, dict):
            dimensions = [d for d in RuleSelector.model_fields if d in value]
            dimensions += [d for d in value if d not in RuleSelector.model_fields]
            value = {dimension: value[dimension] for dimension in dimensions if value[dimension]}
        if value is None or value == "" or value == [] or value == {}:
            continue
        out[name] = value
    return out


def rules_to_yaml(rules: list[dict]) -> str:
    """A pack's rules as the editor shows them: `rules:` then one block per rule, empty values left out."""
    document = {"rules": [_compact_rule(rule) if isinstance(rule, dict) else rule for rule in rules]}
    return yaml.dump(
        document,
        Dumper=_RulesDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def rules_from_yaml(text: str) -> Any:
    """Read the editor's YAML: the value of its `rules` key (not validated yet).

    Raises RulesetError (one error, with its `line`) for a YAML syntax error, an alias, a tag or a
    document that is not a mapping with `rules`.
    """
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        raise RulesetError([_error("", f"The rules are too large ({size} bytes; at most {MAX_YAML_BYTES}).")])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
        _refuse_duplicate_keys(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark is not None else None
        raise RulesetError([_error("", f"YAML syntax error: {problem}", line=line)]) from None
    except yaml.YAMLError as exc:
        raise RulesetError([_error("", f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise RulesetError([_error("", "The YAML is nested too deeply.")]) from None
    except (ValueError, UnicodeError) as exc:
        raise RulesetError([_error("", f"The YAML cannot be read: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or set(data) != {"rules"}:
        raise RulesetError(
            [_error("", "Write a mapping with one key, `rules`, holding the list of rules.", line=1)]
        )
    return data["rules"]


# ---------------------------------------------------------------- checking


def _error(path: str, message: str, *, line: int | None = None, rule: str = "") -> dict:
    return {"path": path, "message": message, "line": line, "rule": rule, "position": ""}


def _dotted(path: str) -> str:
    """`rules[3].selector.tools[0]` → `rules.3.selector.tools.0` (the YAML path `line_of_path` walks)."""
    return ".".join(index or name for index, name in _PATH_PART.findall(path))


def _rule_index(path: str) -> int | None:
    found = re.match(r"rules\[(\d+)\]", path)
    return int(found.group(1)) if found else None


def _governance_form(rule: Any) -> Any:
    # The engine runs pack rules as locked vendor rules (apps.governance.rules.vendor_rules).
    return {**rule, "layer": "vendor", "source": "policy_pack"} if isinstance(rule, dict) else rule


def _check_rules(data: Any) -> list[dict]:
    """Every problem with these pack rules, each {path, message}; [] when they can be published."""
    if not isinstance(data, list):
        return [{"path": "rules", "message": "the rules are a list"}]
    if not data:
        return [{"path": "rules", "message": "a pack needs at least one rule"}]
    errors: list[dict] = []
    # Pack rules are vendor rules, always enforced: the governance-only fields are not theirs to set.
    for i, rule in enumerate(data):
        if isinstance(rule, dict):
            errors += [
                {"path": f"rules[{i}].{name}", "message": f"'{name}' is set by the platform for pack rules"}
                for name in rule
                if name in GOVERNANCE_ONLY
            ]
    try:
        validate_rules([_governance_form(rule) for rule in data], layers=frozenset({"vendor"}))
    except RulesetError as exc:
        errors += exc.errors
    # A format error stops validate_rules before it compiles any condition: compile the rest anyway,
    # so a person sees every problem at once.
    reported = {error["path"] for error in errors}
    for i, rule in enumerate(data):
        condition = rule.get("condition") if isinstance(rule, dict) else None
        if isinstance(condition, str) and condition.strip() and f"rules[{i}].condition" not in reported:
            errors += [
                {"path": f"rules[{i}].condition", "message": message}
                for message in check_condition(condition)[1]
            ]
    return errors


def _located(errors: list[dict], data: Any, text: str | None) -> list[dict]:
    """Add the rule key, the YAML line and, for a CEL syntax error, its line:column in the condition."""
    located = []
    for error in errors:
        path = error.get("path") or ""
        index = _rule_index(path)
        rule = data[index] if isinstance(data, list) and index is not None and index < len(data) else None
        key = rule.get("key") if isinstance(rule, dict) and isinstance(rule.get("key"), str) else ""
        position = _CEL_POSITION.search(error["message"])
        located.append(
            {
                "path": path,
                "message": error["message"],
                "line": error.get("line") or (line_of_path(text, _dotted(path)) if text and path else None),
                "rule": key,
                "position": f"{position.group(1)}:{position.group(2)}" if position else "",
            }
        )
    return located


def _check_version(pack: PolicyPack | None, version: str) -> list[dict]:
    try:
        semver = factory_services.parse_semver(version)
    except ApplicationError as exc:
        return [_error("version", exc.message)]
    latest = factory_selectors.policy_pack_latest(pack) if pack is not None else None
    if latest is not None and semver <= factory_services.parse_semver(latest.version):
        return [_error("version", f"The version must be above the latest version, {latest.version}.")]
    if pack is not None and pack.versions.filter(version=version.strip()).exists():
        return [_error("version", f"{pack.key} {version.strip()} already exists.")]
    return []


@dataclass(frozen=True)
class PackCheck:
    """What publishing these rules would do: the rules as stored, the errors, the changes since `latest`."""

    rules: list[dict]
    errors: list[dict]
    latest: PolicyPackVersion | None
    changes: list[RuleChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def policy_pack_check(*, pack: PolicyPack | None, rules: list | str, version: str | None = None) -> PackCheck:
    """Check a new version of a pack without publishing it (no writes).

    `rules` is the editor's YAML or a list of rules. With `version`, the number is checked too (a
    semantic version above the pack's latest). Errors are dicts: path (`rules[2].condition`,
    `version`), message, line (in the YAML), rule (its key) and position (`line:column` of a CEL
    syntax error inside the condition). `changes` is the rule diff against the latest version.
    """
    latest = factory_selectors.policy_pack_latest(pack) if pack is not None else None
    text = rules if isinstance(rules, str) else None
    try:
        data = rules_from_yaml(rules) if isinstance(rules, str) else rules
    except RulesetError as exc:
        return PackCheck(rules=[], errors=_located(exc.errors, None, text), latest=latest)
    errors = _located(_check_rules(data), data, text)
    if version is not None:
        errors += _check_version(pack, version)
    if errors:
        return PackCheck(rules=[], errors=errors, latest=latest)
    stored = [PolicyRule.model_validate(rule).model_dump(mode="json") for rule in data]
    return PackCheck(
        rules=stored, errors=[], latest=latest, changes=rules_diff(latest.rules if latest else [], stored)
    )


@transaction.atomic
def policy_pack_publish_checked(
    *,
    pack_key: str,
    version: str,
    rules: list | str,
    changelog: str,
    actor: User | None,
    name: str | None = None,
    description: str | None = None,
) -> PolicyPackVersion:
    """Publish a new version of a policy pack after the governance checks; it is immutable from then on.

    `rules` is YAML text (as the editor sends it) or a list. Raises RulesetError listing every
    problem (with YAML lines) when a rule would not run as a vendor rule, ApplicationError for the
    version number or changelog. A new pack needs a `name`; an existing one keeps its name and
    description unless given. The publication is recorded in the audit log with the actor.
    """
    pack = factory_selectors.policy_pack_get(pack_key)
    checked = policy_pack_check(pack=pack, rules=rules)
    if not checked.ok:
        raise RulesetError(checked.errors)
    if pack is None and not (name or "").strip():
        raise ApplicationError("A new policy pack needs a name.", field="name")
    published = factory_services.policy_pack_publish(
        pack_key=pack_key,
        name=name if name is not None else pack.name if pack else "",
        description=description if description is not None else pack.description if pack else "",
        version=version,
        rules=checked.rules,
        changelog=changelog,
    )
    # The factory does not audit pack versions itself (and they record no author): log it here.
    LogEntry.objects.log_create(
        published,
        force_log=True,
        action=LogEntry.Action.CREATE,
        actor=actor if actor is not None and actor.pk else None,
        changes={
            "version": [None, published.version],
            "status": [None, published.status],
            "changelog": [None, published.changelog],
            "rules": [None, f"{len(published.rules)} rules"],
        },
        additional_data={
            "pack": published.pack.key,
            "previous": checked.latest.version if checked.latest else None,
        },
    )
    return published


# ---------------------------------------------------------------- reads


def access_policy_pack(key: str) -> PolicyPack:
    """The pack with this key; 404 if there is none."""
    pack = factory_selectors.policy_pack_get(key)
    if pack is None:
        raise Http404("No such policy pack.")
    return pack


def pack_versions(pack: PolicyPack) -> list[PolicyPackVersion]:
    """The pack's versions, highest version first."""
    return sorted(
        pack.versions.all(), key=lambda v: tuple(int(part) for part in v.version.split(".")), reverse=True
    )


def pack_version_get(pack: PolicyPack, version: str) -> PolicyPackVersion:
    """The pack's version with this number; 404 if there is none."""
    found = pack.versions.select_related("pack").filter(version=version).first()
    if found is None:
        raise Http404("No such policy pack version.")
    return found


@dataclass(frozen=True)
class PackUsage:
    """A variant whose current version names the pack, and the pack version that version pins."""

    variant: AgentVariant
    current: AgentVersion
    pinned: PolicyPackVersion | None


def policy_pack_usage(pack: PolicyPack) -> list[PackUsage]:
    """The variants whose current (latest published) version names this pack, by variant name."""
    current: dict[int, AgentVersion] = {}
    for version in (
        AgentVersion.objects.filter(status=AgentVersion.Status.PUBLISHED)
        .select_related("variant", "policy_pack_version")
        .order_by("variant_id", *factory_selectors.NEWEST_FIRST)
    ):
        current.setdefault(version.variant_id, version)
    usage = [
        PackUsage(version.variant, version, version.policy_pack_version)
        for version in current.values()
        if (version.spec or {}).get("policy_pack") == pack.key
    ]
    return sorted(usage, key=lambda use: use.variant.name)


def policy_pack_history(pack: PolicyPack, *, limit: int = 50) -> list[HistoryEntry]:
    """Audit-log entries of the pack's versions (who published what), newest first."""
    version_type = ContentType.objects.get_for_model(PolicyPackVersion)
    ids = [str(pk) for pk in pack.versions.values_list("pk", flat=True)]
    rows = (
        LogEntry.objects.filter(content_type=version_type, object_pk__in=ids)
        .select_related("actor")
        .order_by("-timestamp", "-pk")[:limit]
    )
    return [
        HistoryEntry(
            timestamp=row.timestamp,
            actor=row.actor,
            action_label=row.get_action_display(),
            object_label=f"policy pack version “{row.object_repr}”",
            changes=row.changes_dict or {},
        )
        for row in rows
    ]
