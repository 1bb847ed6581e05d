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

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.tenancy.models import Client

from . import engine
from .models import DecisionLog, Ruleset, RulesetVersion, RuleTestCase
from .rules import RulesetError, validate_rules, vendor_rules

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


def rule_test_case_save(
    *,
    client: Client,
    name: str,
    action: dict,
    context: dict | None = None,
    expected_effect: str,
    deployment: Deployment | None = None,
    actor: User | None,
) -> RuleTestCase:
    """Add or replace (by name) a test case the ruleset must pass before it is published."""
    with _in_client(client):
        if not isinstance(action, dict) or not action.get("tool"):
            raise ApplicationError("A test action needs at least a tool.", field="action")
        case = RuleTestCase.objects.filter(ruleset=_ruleset(), name=name).first() or RuleTestCase(
            ruleset=_ruleset(), name=name, created_by=actor
        )
        case.action = action
        case.context = context or {}
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
    # Test cases are deterministic: rate() reads counts given in the case's context (`rates`).
    rates = context.get("rates") or {}
    return lambda key, window: int(rates.get(key, 0))


def _run_tests(rules: list[dict]) -> list[TestOutcome]:
    outcomes = []
    for case in RuleTestCase.objects.select_related("deployment__version__policy_pack_version").order_by(
        "name", "pk"
    ):
        compiled = ruleset_compile(rules=rules, deployment=case.deployment)
        decision = engine.evaluate(
            compiled, case.action, case.context, rate_counter=_fixed_rates(case.context)
        )
        outcomes.append(
            TestOutcome(
                case.name, case.expected_effect, decision.effect, decision.reason, decision.deciding_rule
            )
        )
    return outcomes


def ruleset_tests_run(*, client: Client, version: RulesetVersion) -> list[TestOutcome]:
    """Run every test case of the client against `version`'s rules (nothing is written)."""
    with _in_client(client):
        return _run_tests(version.rules)


def _checks(rules: list[dict]) -> tuple[list[dict], list[dict]]:
    """(errors, warnings) for publishing `rules`: validation, vendor locks, compiling, tests."""
    try:
        validate_rules(rules, layers=STORED_LAYERS)
    except RulesetError as exc:
        return exc.errors, []
    errors: list[dict] = []
    warnings: list[dict] = []
    deployments = _live_deployments()
    try:
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
    for outcome in _run_tests(rules):
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
        return _checks(version.rules)


def ruleset_publish(*, client: Client, version: RulesetVersion, actor: User | None) -> RulesetVersion:
    """Publish the draft `version` and make it the active one.

    Refused (RulesetError listing every reason) when a rule is invalid or does not compile with a
    deployment's vendor rules, would replace a locked vendor rule, or any test case fails.
    """
    with _in_client(client):
        current = _lock_version(client, version)
        if current.status != RulesetVersion.Status.DRAFT:
            raise ApplicationError("Only a draft can be published; published versions never change.")
        errors, _warnings = _checks(current.rules)
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
    """Make an earlier published version's rules active again, as a new published version.

    The rules are checked against today's deployments (a vendor rule added since may collide), but
    test cases do not block a rollback: it is the way back when a publish went wrong.
    """
    with _in_client(client):
        source = _lock_version(client, to_version)
        if not source.is_published:
            raise ApplicationError("Only a published version can be rolled back to.")
        if source.is_active:
            raise ApplicationError("This version is already the active one.")
        ruleset = Ruleset.objects.select_for_update().get(pk=source.ruleset_id)
        for deployment in _live_deployments():
            ruleset_compile(rules=source.rules, deployment=deployment)
        top = ruleset.versions.aggregate(n=Max("number"))["n"] or 0
        draft = ruleset.versions.filter(status=RulesetVersion.Status.DRAFT).first()
        if draft is not None:
            # The draft stays the newest number, so history reads in order.
            draft.number = top + 2
            draft.save(update_fields=["number"])
        version = RulesetVersion.objects.create(
            ruleset=ruleset,
            number=top + 1,
            rules=source.rules,
            notes=f"Rollback to version {source.number}.",
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
            errors=data["errors"],
            evaluated_count=decision.evaluated_count,
            elapsed_us=decision.elapsed_us,
            shadow_results=data["shadow"],
        )
