"""Writes for a client's governance: drafts, publishing with checks, rollback, rule tests, the decision log.

Every service takes the client and switches into its schema itself
(`tenant_context`), in one transaction, like the deployment services. Callers
check that the actor may work on the client (accounts.access); these services
enforce the product's rules: a published version never changes, vendor rules
stay locked, client rules only make decisions stricter, and nothing is
published while a rule does not compile or a test case fails.

Layering: the vendor rules of a deployment are the rules of the policy pack
pinned by its agent version (`AgentVersion.policy_pack_version`); they are
compiled in front of the partner and client rules of the ruleset version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.factory.models import PolicyPackVersion
from apps.tenancy.models import Client

from . import engine
from .context import (
    action_clean,
    agent_context,
    data_context,
    decision_context,
    input_context,
    principal_context,
    tenant_context_vars,
    time_context,
    trace_context,
)
from .models import DecisionLog, EvaluationKey, Ruleset, RulesetVersion, RuleTestCase
from .rates import RedisRateCounter
from .rules import CONTEXT_VARIABLES, RulesetError, validate_rules, vendor_rules

# Layers a ruleset version may hold; vendor rules come from policy packs only.
STORED_LAYERS = frozenset({"partner", "client"})


@contextmanager
def _in_client(client: Client) -> Iterator[None]:
    """The client's schema and one transaction (a savepoint when nested)."""
    if client.status != Client.Status.READY:
        raise ApplicationError(f"{client.name} is not ready yet ({client.get_status_display().lower()}).")
    with tenant_context(client), transaction.atomic():
        yield


def _ruleset() -> Ruleset:
    ruleset, _ = Ruleset.objects.get_or_create(slot=1)
    return ruleset


def _lock_version(client: Client, version: RulesetVersion) -> RulesetVersion:
    current = RulesetVersion.objects.select_for_update().filter(pk=version.pk).first()
    if current is None:
        raise ApplicationError("This ruleset version no longer exists.")
    return current


# --- Layering -------------------------------------------------------------------------


def deployment_vendor_rules(deployment: Deployment) -> list[dict]:
    """The locked vendor rules of a deployment: its pinned agent version's policy pack, as vendor layer."""
    pack_version = deployment.version.policy_pack_version
    return vendor_rules(pack_version.rules) if pack_version is not None else []


def deployment_allowlist(deployment: Deployment) -> frozenset[str]:
    """The tools the deployment's pinned agent version may call (zero trust: nothing else runs)."""
    return frozenset(tool["name"] for tool in (deployment.version.spec or {}).get("tools", []))


def _live_deployments() -> list[Deployment]:
    return list(
        Deployment.objects.exclude(status=Deployment.Status.RETIRED)
        .select_related("version__policy_pack_version")
        .order_by("pk")
    )


def ruleset_compile(*, rules: list[dict], deployment: Deployment | None) -> engine.CompiledRuleset:
    """Compile ruleset rules, layered behind the deployment's vendor rules and with its allowlist.

    Without a deployment, the rules alone and no allowlist (rule tests in isolation).
    Raises RulesetError when a rule is invalid or collides with a vendor rule.
    """
    if deployment is None:
        return engine.compile_ruleset(rules)
    vendor = deployment_vendor_rules(deployment)
    _check_vendor_locks(rules, vendor)
    return engine.compile_ruleset([*vendor, *rules], allowlist=deployment_allowlist(deployment))


def _check_pack_keys(rules: list[dict]) -> None:
    """Refuse rule keys that any policy pack uses: a deployment made later must never collide."""
    pack_keys = {
        rule["key"] for rules_ in PolicyPackVersion.objects.values_list("rules", flat=True) for rule in rules_
    }
    errors = [
        {
            "path": f"rules[{i}].key",
            "message": f"'{rule['key']}' is the key of a locked vendor rule in a policy pack; choose another",
        }
        for i, rule in enumerate(rules)
        if rule.get("key") in pack_keys
    ]
    if errors:
        raise RulesetError(errors)


def _check_vendor_locks(rules: list[dict], vendor: list[dict]) -> None:
    """Refuse rules that would replace a locked vendor rule (same key) or claim to be vendor rules."""
    locked = {rule["key"] for rule in vendor}
    errors = [
        {
            "path": f"rules[{i}].key",
            "message": f"'{rule['key']}' is a locked vendor rule; it cannot be changed",
        }
        for i, rule in enumerate(rules)
        if rule.get("key") in locked
    ]
    errors += [
        {"path": f"rules[{i}].layer", "message": "vendor rules come from the policy pack and are locked"}
        for i, rule in enumerate(rules)
        if rule.get("layer") == "vendor"
    ]
    if errors:
        raise RulesetError(errors)


# --- Drafts ---------------------------------------------------------------------------


def ruleset_save_draft(*, client: Client, rules: list, actor: User | None, notes: str = "") -> RulesetVersion:
    """Create or replace the client's draft ruleset version with `rules` (validated: partner, client layers).

    Raises RulesetError with every problem listed (paths like `rules[2].condition`).
    """
    with _in_client(client):
        normalised = validate_rules(rules, layers=STORED_LAYERS)
        for deployment in _live_deployments():
            _check_vendor_locks(normalised, deployment_vendor_rules(deployment))
        _check_pack_keys(normalised)
        ruleset = Ruleset.objects.select_for_update().get(pk=_ruleset().pk)
        draft = ruleset.versions.filter(status=RulesetVersion.Status.DRAFT).first()
        if draft is None:
            number = (ruleset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            draft = RulesetVersion(ruleset=ruleset, number=number, created_by=actor)
        draft.rules = normalised
        draft.notes = notes
        draft.full_clean()
        draft.save()
        return draft


def _draft_for_edit(ruleset: Ruleset, actor: User | None) -> RulesetVersion:
    """The draft (locked), made from the active version's rules when there is none."""
    draft = (
        RulesetVersion.objects.select_for_update()
        .filter(ruleset=ruleset, status=RulesetVersion.Status.DRAFT)
        .first()
    )
    if draft is not None:
        return draft
    active = ruleset.versions.filter(is_active=True).first()
    number = (ruleset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return RulesetVersion.objects.create(
        ruleset=ruleset, number=number, rules=list(active.rules) if active else [], created_by=actor
    )


def ruleset_draft(*, client: Client, actor: User | None) -> RulesetVersion:
    """The client's draft ruleset version, started from the active version's rules when there is none."""
    with _in_client(client):
        ruleset = Ruleset.objects.select_for_update().get(pk=_ruleset().pk)
        return _draft_for_edit(ruleset, actor)


def _owned(rule: dict, layer: str) -> None:
    if rule.get("layer") != layer:
        raise ApplicationError(
            f"'{rule['key']}' is a {rule.get('layer')} rule; only its {rule.get('layer')} team can change it."
        )


def rule_save(
    *, client: Client, rule: dict, layer: str, actor: User | None, replace_key: str | None = None
) -> RulesetVersion:
    """Add a rule to the draft, or replace the rule `replace_key` (which must be of the same layer).

    `layer` is the author's side: partner staff write partner rules, client admins client rules
    (which may only deny, hold for approval or redact). Vendor rules are never stored or replaced.
    Raises RulesetError (with paths) for an invalid rule, ApplicationError for a rule of another layer.
    """
    if layer not in STORED_LAYERS:
        raise ApplicationError("Vendor rules are edited in their policy pack.")
    with _in_client(client):
        ruleset = Ruleset.objects.select_for_update().get(pk=_ruleset().pk)
        draft = _draft_for_edit(ruleset, actor)
        rules = list(draft.rules)
        new_rule = {**rule, "layer": layer}
        if replace_key is not None:
            index = next((i for i, r in enumerate(rules) if r["key"] == replace_key), None)
            if index is None:
                raise ApplicationError(f"There is no rule '{replace_key}' in the draft.")
            _owned(rules[index], layer)
            rules[index] = new_rule
        else:
            index = len(rules)
            rules.append(new_rule)
        try:
            normalised = validate_rules(rules, layers=STORED_LAYERS)
            for deployment in _live_deployments():
                _check_vendor_locks(normalised, deployment_vendor_rules(deployment))
            _check_pack_keys(normalised)
        except RulesetError as exc:
            # Report the edited rule's problems as its own (paths relative to the rule).
            prefix = f"rules[{index}]"
            raise RulesetError(
                [
                    {**e, "path": e["path"].removeprefix(prefix).lstrip(".") or "rule"}
                    if e["path"].startswith(prefix)
                    else e
                    for e in exc.errors
                ]
            ) from None
        draft.rules = normalised
        draft.save(update_fields=["rules"])
        return draft


def rule_delete(*, client: Client, key: str, layer: str, actor: User | None) -> RulesetVersion:
    """Remove the rule `key` from the draft; only its own layer may (vendor rules cannot be removed)."""
    with _in_client(client):
        ruleset = Ruleset.objects.select_for_update().get(pk=_ruleset().pk)
        draft = _draft_for_edit(ruleset, actor)
        rule = next((r for r in draft.rules if r["key"] == key), None)
        if rule is None:
            raise ApplicationError(f"There is no rule '{key}' in the draft.")
        _owned(rule, layer)
        draft.rules = [r for r in draft.rules if r["key"] != key]
        draft.save(update_fields=["rules"])
        return draft


def ruleset_draft_discard(*, client: Client, actor: User | None, layer: str = "partner") -> None:
    """Undo your side's unpublished changes: `layer`'s rules go back to the active version's.

    The other side's draft changes stay (a partner never throws away a client admin's work, nor
    the reverse); when nothing is left to publish the draft is removed.
    """
    with _in_client(client):
        ruleset = Ruleset.objects.select_for_update().get(pk=_ruleset().pk)
        draft = ruleset.versions.select_for_update().filter(status=RulesetVersion.Status.DRAFT).first()
        if draft is None:
            return
        active = ruleset.versions.filter(is_active=True).first()
        active_rules = active.rules if active else []
        source = {layer: active_rules, **dict.fromkeys(STORED_LAYERS - {layer}, draft.rules)}
        kept = [rule for name in ("partner", "client") for rule in _layer_rules(source[name], name)]
        if kept == active_rules:
            draft.delete()
        else:
            draft.rules = kept
            draft.save(update_fields=["rules"])


def rule_test_case_delete(
    *, client: Client, case: RuleTestCase, actor: User | None, layer: str = "partner"
) -> None:
    """Remove a test case; only its own side (partner team or client admins) may."""
    with _in_client(client):
        current = RuleTestCase.objects.select_for_update().filter(pk=case.pk).first()
        if current is None:
            return
        _owned_case(current, layer)
        current.delete()


def _owned_case(case: RuleTestCase, layer: str) -> None:
    if case.layer != layer:
        raise ApplicationError(
            f"“{case.name}” is the {case.layer} team's test case; only they can change or remove it."
        )


MAX_TEST_CONTEXT_BYTES = 16 * 1024
TEST_CONTEXT_KEYS = (CONTEXT_VARIABLES - {"action"}) | {"rates"}


def test_context_clean(context) -> dict:
    """A test case's context: only known variables, each an object; `rates` maps keys to counts.

    Raises ApplicationError naming the problem; what the case leaves out is built when it runs.
    """
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise ApplicationError('A test context is an object, e.g. {"trace": {"steps": 51}}.', field="context")
    unknown = sorted(str(key) for key in set(context) - TEST_CONTEXT_KEYS)
    if unknown:
        known = ", ".join(sorted(TEST_CONTEXT_KEYS))
        raise ApplicationError(
            f"Unknown context variable {', '.join(unknown)}; use {known}.", field="context"
        )
    for name, value in context.items():
        if not isinstance(value, dict):
            raise ApplicationError(f"'{name}' is an object of its fields.", field="context")
    for name, fields in (
        ("principal", ("kind", "id", "role", "channel")),
        ("trace", ("steps", "cost", "tokens", "depth")),
    ):
        extra = sorted(set(context.get(name, {})) - set(fields))
        if extra:
            raise ApplicationError(
                f"'{name}' has {', '.join(fields)}; not {', '.join(extra)}.", field="context"
            )
    if any(not isinstance(v, str) for v in context.get("principal", {}).values()):
        raise ApplicationError("The principal's fields are text.", field="context")
    trace = context.get("trace", {})
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in trace.values()):
        raise ApplicationError("The trace's steps, cost, tokens and depth are numbers ≥ 0.", field="context")
    rates = context.get("rates", {})
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in rates.values()):
        raise ApplicationError(
            "Each rate is a whole number ≥ 0 (how many times the key happened).", field="context"
        )
    if len(json.dumps(context, default=str)) > MAX_TEST_CONTEXT_BYTES:
        raise ApplicationError(
            f"The context is larger than {MAX_TEST_CONTEXT_BYTES // 1024} KB.", field="context"
        )
    return context


def rule_test_case_save(
    *,
    client: Client,
    name: str,
    action: dict,
    context: dict | None = None,
    expected_effect: str,
    deployment: Deployment | None = None,
    actor: User | None,
    layer: str = "partner",
) -> RuleTestCase:
    """Add or replace (by name) a test case the ruleset must pass before it is published.

    A case belongs to the side that made it (`layer`): the other side cannot replace it.
    """
    if layer not in STORED_LAYERS:
        raise ApplicationError("Test cases are the partner team's or the client's.")
    with _in_client(client):
        action = action_clean(action)
        context = test_context_clean(context)
        case = RuleTestCase.objects.select_for_update().filter(ruleset=_ruleset(), name=name).first()
        if case is not None:
            _owned_case(case, layer)
        else:
            case = RuleTestCase(ruleset=_ruleset(), name=name, created_by=actor, layer=layer)
        case.action = action
        case.context = context
        case.expected_effect = expected_effect
        case.deployment = deployment
        case.full_clean()
        case.save()
        return case


# --- Checks and publishing --------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    """One test case run against a ruleset: what was expected, what came out, and why."""

    name: str
    expected: str
    actual: str
    reason: str
    deciding_rule: str | None

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def _fixed_rates(context: Mapping):
    # Test cases and replays are deterministic: rate() reads the context's `rates`, by "key|window" as
    # a decision records them or by key as a test case states them; 0 otherwise.
    rates = context.get("rates") or {}
    return lambda key, window: int(rates.get(f"{key}|{window}", rates.get(key, 0)))


# Test cases run at a fixed moment unless their context says otherwise: a Monday, 10:00 local time.
TEST_CASE_MOMENT = (2026, 1, 5, 10, 0)


def test_case_context(client: Client, case: RuleTestCase) -> dict:
    """The context a test case runs with: built like a real decision's, then overridden by the case's own.

    The case's context is merged over the built one variable by variable (a map merges field by
    field), so a case states only what matters to it (`{"trace": {"steps": 51}}`); `rates` gives
    the counts `rate()` reads.
    """
    given = case.context or {}
    action = case.action
    params = action.get("params") if isinstance(action.get("params"), Mapping) else {}
    spec = case.deployment.version.spec if case.deployment is not None else {}
    moment = datetime(*TEST_CASE_MOMENT, tzinfo=ZoneInfo(client.timezone))
    built: dict = {
        "principal": principal_context(given.get("principal")),
        "tenant": tenant_context_vars(client),
        "input": input_context(params),
        "data": data_context(spec or {}, action),
        "trace": trace_context(given.get("trace")),
        "time": time_context(moment, client.timezone),
    }
    if case.deployment is not None:
        built["agent"] = agent_context(case.deployment)
    for name, value in given.items():
        current = built.get(name)
        built[name] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    return built


def _run_tests(client: Client, rules: list[dict]) -> list[TestOutcome]:
    outcomes = []
    cases = RuleTestCase.objects.select_related(
        "deployment__variant", "deployment__version__policy_pack_version"
    ).order_by("name", "pk")
    for case in cases:
        compiled = ruleset_compile(rules=rules, deployment=case.deployment)
        context = test_case_context(client, case)
        decision = engine.evaluate(compiled, case.action, context, rate_counter=_fixed_rates(context))
        outcomes.append(
            TestOutcome(
                case.name, case.expected_effect, decision.effect, decision.reason, decision.deciding_rule
            )
        )
    return outcomes


def ruleset_tests_run(*, client: Client, version: RulesetVersion) -> list[TestOutcome]:
    """Run every test case of the client against `version`'s rules (nothing is written)."""
    with _in_client(client):
        return _run_tests(client, version.rules)


def _checks(client: Client, rules: list[dict]) -> tuple[list[dict], list[dict]]:
    """(errors, warnings) for publishing `rules`: validation, vendor locks, compiling, tests."""
    try:
        validate_rules(rules, layers=STORED_LAYERS)
    except RulesetError as exc:
        return exc.errors, []
    errors: list[dict] = []
    warnings: list[dict] = []
    deployments = _live_deployments()
    try:
        _check_pack_keys(rules)
        engine.compile_ruleset(rules)
        for deployment in deployments:
            ruleset_compile(rules=rules, deployment=deployment)
    except RulesetError as exc:
        return exc.errors, []
    allowlists = [deployment_allowlist(d) for d in deployments]
    every_tool = frozenset().union(*allowlists) if allowlists else None
    unconditional_denies = [r for r in rules if r["effect"] == "deny" and not r.get("condition")]
    for i, rule in enumerate(rules):
        tools = set(rule["selector"]["tools"])
        if every_tool is not None and tools and not tools & every_tool:
            warnings.append(
                {"path": f"rules[{i}]", "message": "can never match: no deployed agent has any of its tools"}
            )
        if rule["effect"] == "allow" and rule.get("mode") == "enforce":
            for deny in unconditional_denies:
                if deny.get("mode") == "enforce" and _covers(deny["selector"], rule["selector"]):
                    warnings.append(
                        {
                            "path": f"rules[{i}]",
                            "message": f"never allows anything: '{deny['key']}' always denies",
                        }
                    )
                    break
    try:
        outcomes = _run_tests(client, rules)
    except RulesetError as exc:
        # A test case pinned to a deployment whose vendor rules collide with these rules.
        return errors + exc.errors, warnings
    for outcome in outcomes:
        if not outcome.passed:
            errors.append(
                {
                    "path": f"test:{outcome.name}",
                    "message": f"expected {outcome.expected}, got {outcome.actual} ({outcome.reason})",
                }
            )
    return errors, warnings


def _covers(broad: dict, narrow: dict) -> bool:
    """True when every action the `narrow` selector picks is also picked by `broad`."""
    return all(not broad[d] or (narrow[d] and set(narrow[d]) <= set(broad[d])) for d in broad)


def ruleset_check(*, client: Client, version: RulesetVersion) -> tuple[list[dict], list[dict]]:
    """The publish checks for `version` without publishing: (errors that block, warnings that do not)."""
    with _in_client(client):
        return _checks(client, version.rules)


def rules_digest(rules: list[dict]) -> str:
    """A fingerprint of a list of rules: lets a reviewer publish exactly what was reviewed."""
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()


def _layer_rules(rules: list[dict], layer: str) -> list[dict]:
    return [rule for rule in rules if rule.get("layer") == layer]


def ruleset_publish(
    *,
    client: Client,
    version: RulesetVersion,
    actor: User | None,
    layer: str = "partner",
    reviewed_digest: str | None = None,
) -> RulesetVersion:
    """Publish the draft `version` and make it the active one.

    Refused (RulesetError listing every reason) when a rule is invalid or does not compile with a
    deployment's vendor rules, would replace a locked vendor rule, or any test case fails.
    `layer` is the publisher's side: a client admin (`client`) may publish only drafts whose
    partner rules are those already active (the partner team publishes its own changes). With
    `reviewed_digest` (rules_digest of what the publisher reviewed), a draft changed since is refused.
    """
    with _in_client(client):
        # Lock order everywhere: the ruleset, then its versions.
        Ruleset.objects.select_for_update().get(pk=version.ruleset_id)
        current = _lock_version(client, version)
        if current.status != RulesetVersion.Status.DRAFT:
            raise ApplicationError("Only a draft can be published; published versions never change.")
        if reviewed_digest is not None and reviewed_digest != rules_digest(current.rules):
            raise ApplicationError("The draft changed after you reviewed it; review the changes again.")
        if layer == "client":
            active = RulesetVersion.objects.filter(ruleset_id=current.ruleset_id, is_active=True).first()
            if _layer_rules(current.rules, "partner") != _layer_rules(
                active.rules if active else [], "partner"
            ):
                raise ApplicationError(
                    "The draft holds partner rule changes that are not published yet; "
                    "the partner team publishes those."
                )
        errors, _warnings = _checks(client, current.rules)
        if errors:
            raise RulesetError(errors)
        _activate(current, actor)
        return current


def _activate(version: RulesetVersion, actor: User | None) -> None:
    RulesetVersion.objects.filter(ruleset_id=version.ruleset_id, is_active=True).update(is_active=False)
    version.status = RulesetVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.published_by = actor
    version.is_active = True
    version.full_clean()
    version.save(update_fields=["status", "published_at", "published_by", "is_active"])


def ruleset_rollback(*, client: Client, to_version: RulesetVersion, actor: User | None) -> RulesetVersion:
    """Bring back an earlier published version's partner rules, as a new published version.

    A rollback is the partner team's: it restores the partner layer of `to_version` and keeps the
    client's rules as they are in the active version (a partner never removes a client's rule).
    The rules are checked against today's deployments (a vendor rule added since may collide), but
    test cases do not block a rollback: it is the way back when a publish went wrong.
    """
    with _in_client(client):
        ruleset = Ruleset.objects.select_for_update().get(pk=to_version.ruleset_id)
        source = _lock_version(client, to_version)
        if not source.is_published:
            raise ApplicationError("Only a published version can be rolled back to.")
        if source.is_active:
            raise ApplicationError("This version is already the active one.")
        active = ruleset.versions.filter(is_active=True).first()
        rules = [
            *_layer_rules(source.rules, "partner"),
            *_layer_rules(active.rules if active else [], "client"),
        ]
        _check_pack_keys(rules)
        for deployment in _live_deployments():
            ruleset_compile(rules=rules, deployment=deployment)
        top = ruleset.versions.aggregate(n=Max("number"))["n"] or 0
        draft = ruleset.versions.select_for_update().filter(status=RulesetVersion.Status.DRAFT).first()
        if draft is not None:
            # The draft stays the newest number, so history reads in order.
            draft.number = top + 2
            draft.save(update_fields=["number"])
        version = RulesetVersion.objects.create(
            ruleset=ruleset,
            number=top + 1,
            rules=rules,
            notes=f"Rollback to version {source.number} (partner rules; client rules kept).",
            rolled_back_from=source,
            created_by=actor,
        )
        _activate(version, actor)
        return version


# --- Decisions ------------------------------------------------------------------------


def active_version(*, client: Client) -> RulesetVersion | None:
    """The client's active ruleset version (None before anything is published)."""
    with tenant_context(client):
        return RulesetVersion.objects.filter(is_active=True).first()


def decision_evaluate(
    *,
    client: Client,
    deployment: Deployment,
    action: dict,
    context: dict,
    rate_counter: engine.RateCounter | None = None,
) -> tuple[engine.Decision, RulesetVersion | None]:
    """Decide `action` for `deployment` with the client's active ruleset (nothing is written)."""
    with tenant_context(client):
        version = RulesetVersion.objects.filter(is_active=True).first()
        deployment = Deployment.objects.select_related("version__policy_pack_version").get(pk=deployment.pk)
        compiled = ruleset_compile(rules=version.rules if version else [], deployment=deployment)
    return engine.evaluate(compiled, action, context, rate_counter=rate_counter), version


def decision_record(
    *,
    client: Client,
    decision: engine.Decision,
    action: dict,
    context: dict | None = None,
    ruleset_version: RulesetVersion | None = None,
    deployment: Deployment | None = None,
    trace_id: str = "",
) -> DecisionLog:
    """Append one decision to the client's decision log (append-only; the database refuses changes)."""
    if decision.action_hash != engine.action_hash(action):
        raise ApplicationError("This decision was made for a different action.")
    data = decision.as_dict()
    with _in_client(client):
        return DecisionLog.objects.create(
            ruleset_version=ruleset_version,
            ruleset_key=decision.ruleset_key,
            deployment=deployment,
            trace_id=trace_id,
            action_hash=decision.action_hash,
            action=action,
            context=context or {},
            effect=decision.effect,
            reason=decision.reason,
            matched=data["matched"],
            deciding_rule=decision.deciding_rule or "",
            layer=decision.layer or "",
            approver_role=decision.approver_role or "",
            redact_fields=list(decision.redact_fields),
            errors=data["errors"],
            evaluated_count=decision.evaluated_count,
            elapsed_us=decision.elapsed_us,
            shadow_results=data["shadow"],
        )


def decision_make(
    *,
    client: Client,
    deployment: Deployment,
    action: dict,
    principal: dict | None = None,
    trace: dict | None = None,
    trace_id: str = "",
    now: datetime | None = None,
    rate_counter: engine.RateCounter | None = None,
) -> tuple[engine.Decision, DecisionLog]:
    """Decide one proposed action of `deployment` and write the decision to the log.

    The action is checked (ApplicationError when malformed), the context is built from the client,
    the deployment, the guards and the clock, and the client's active ruleset decides (with the
    deployment's vendor rules and allowlist). `rate()` reads the client's Redis counters unless a
    counter is given. A deployment that is not deployed gets a deny without its rules running.
    """
    action = action_clean(action)
    with tenant_context(client):
        deployment = Deployment.objects.select_related("variant", "version__policy_pack_version").get(
            pk=deployment.pk
        )
        context = decision_context(
            client=client, deployment=deployment, action=action, principal=principal, trace=trace, now=now
        )
        version = RulesetVersion.objects.filter(is_active=True).first()
        unusable = None
        try:
            compiled = ruleset_compile(rules=version.rules if version else [], deployment=deployment)
        except RulesetError as exc:
            # E.g. a pack published since added a vendor rule with a stored rule's key: fail closed.
            unusable = f"The client's rules cannot be used with this agent ({exc.message}); nothing runs."
    if deployment.status != Deployment.Status.DEPLOYED or unusable:
        decision = engine.evaluate(engine.compile_ruleset([], allowlist=frozenset()), action, context)
        decision = replace(
            decision,
            reason=unusable
            or f"The deployment is {deployment.get_status_display().lower()}: nothing it proposes runs.",
        )
    else:
        recorded: dict[str, int] = {}
        counter = rate_counter or RedisRateCounter(client.schema_name)

        def reading(key: str, window: int) -> int:
            # What rate() read is kept with the decision, so a replay sees the same counts.
            recorded[f"{key}|{window}"] = count = counter(key, window)
            return count

        decision = engine.evaluate(compiled, action, context, rate_counter=reading)
        if recorded:
            context["rates"] = recorded
    log = decision_record(
        client=client,
        decision=decision,
        action=action,
        context=context,
        ruleset_version=version,
        deployment=deployment,
        trace_id=trace_id,
    )
    return decision, log


# --- Shadow report and replay -------------------------------------------------------------


@dataclass
class ShadowRuleStats:
    """How one shadow rule fared over the decisions read: matched, and would have changed the decision."""

    key: str
    matched: int = 0
    changed: int = 0
    errors: int = 0


@dataclass
class ShadowReport:
    decisions: int
    with_shadow: int
    changed: int
    rules: list[ShadowRuleStats]


def shadow_report(*, client: Client, last: int = 1000) -> ShadowReport:
    """Over the last `last` decisions: how often each shadow rule matched and would have changed the decision.

    A changed decision is credited to the shadow rule that would have decided it.
    """
    with tenant_context(client):
        entries = list(DecisionLog.objects.order_by("-pk").values_list("shadow_results", flat=True)[:last])
    stats: dict[str, ShadowRuleStats] = {}
    with_shadow = changed = 0
    for shadow in entries:
        if not shadow:
            continue
        with_shadow += 1
        for key in shadow.get("matched", []):
            stats.setdefault(key, ShadowRuleStats(key)).matched += 1
        for error in shadow.get("errors", []):
            stats.setdefault(error["rule"], ShadowRuleStats(error["rule"])).errors += 1
        if shadow.get("changed"):
            changed += 1
            decider = shadow.get("deciding_rule")
            if decider:
                stats.setdefault(decider, ShadowRuleStats(decider)).changed += 1
    rules = sorted(stats.values(), key=lambda s: (-s.changed, -s.matched, s.key))
    return ShadowReport(decisions=len(entries), with_shadow=with_shadow, changed=changed, rules=rules)


@dataclass(frozen=True)
class ReplayChange:
    """A logged decision that `version`'s rules would decide differently."""

    log: DecisionLog
    effect: str
    reason: str
    deciding_rule: str | None
    layer: str | None


@dataclass(frozen=True)
class ReplayResult:
    version: RulesetVersion
    replayed: int
    changes: list[ReplayChange]


def ruleset_replay(*, client: Client, version: RulesetVersion, last: int = 500) -> ReplayResult:
    """Evaluate `version` (typically the draft) against the last `last` logged decisions.

    Each entry is decided again with its stored action and context and its deployment's vendor
    rules and allowlist as they are today; `rate()` reads the counts recorded in the context's
    `rates` (0 otherwise), so a replay is deterministic. Returns every decision that would change
    (effect, approver or redacted fields). Nothing is written.
    """
    if not 1 <= last <= 5000:
        raise ApplicationError("Replay between 1 and 5,000 decisions.", field="last")
    with _in_client(client):
        entries = list(
            DecisionLog.objects.select_related(
                "deployment__variant", "deployment__version__policy_pack_version"
            ).order_by("-pk")[:last]
        )
        changes = []
        compiled_for: dict[int | None, engine.CompiledRuleset] = {}
        for entry in entries:
            key = entry.deployment_id
            if key not in compiled_for:
                compiled_for[key] = ruleset_compile(rules=version.rules, deployment=entry.deployment)
            decision = engine.evaluate(
                compiled_for[key], entry.action, entry.context, rate_counter=_fixed_rates(entry.context)
            )
            before = (entry.effect, entry.approver_role or None, list(entry.redact_fields))
            if (decision.effect, decision.approver_role, list(decision.redact_fields)) != before:
                changes.append(
                    ReplayChange(
                        entry, decision.effect, decision.reason, decision.deciding_rule, decision.layer
                    )
                )
        return ReplayResult(version=version, replayed=len(entries), changes=changes)


# --- Evaluation keys ----------------------------------------------------------------------

KEY_PREFIX = "tpk"


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def evaluation_key_create(
    *, client: Client, deployment: Deployment, name: str, actor: User | None
) -> tuple[EvaluationKey, str]:
    """Make a key for `deployment`; returns it and the full secret key, which is shown only this once."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Name the key after the system that will use it.", field="name")
    with _in_client(client):
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.status == Deployment.Status.RETIRED:
            raise ApplicationError("A retired deployment takes no new keys.")
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = EvaluationKey(
            deployment=deployment,
            name=name,
            prefix=prefix,
            secret_hash=_secret_hash(secret),
            created_by=actor,
        )
        key.full_clean()
        key.save()
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def evaluation_key_revoke(*, client: Client, key: EvaluationKey, actor: User | None) -> EvaluationKey:
    """Revoke a key for good (it stops working at once)."""
    with _in_client(client):
        current = EvaluationKey.objects.select_for_update().get(pk=key.pk)
        if current.revoked_at is None:
            current.revoked_at = timezone.now()
            current.save(update_fields=["revoked_at"])
        return current


def evaluation_key_authenticate(*, client: Client, raw: str) -> EvaluationKey | None:
    """The active key of this client that `raw` is (None otherwise); compared in constant time."""
    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    _, prefix, secret = parts
    with tenant_context(client):
        key = (
            EvaluationKey.objects.select_related("deployment")
            .filter(prefix=prefix, revoked_at__isnull=True)
            .first()
        )
        if key is None or not hmac.compare_digest(key.secret_hash, _secret_hash(secret)):
            return None
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            EvaluationKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key
