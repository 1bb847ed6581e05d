"""Reads of a client's governance (its schema): ruleset versions, test cases, decisions, evaluation keys.

Callers check that the actor may see the client (accounts.access); these switch into
its schema and return evaluated lists or objects (querysets would run in the wrong
schema once the `tenant_context` block ends). Missing objects raise Http404.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.http import Http404
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment
from apps.tenancy.models import Client

from .models import DecisionLog, EvaluationKey, RulesetVersion, RuleTestCase
from .rules import LAYERS
from .services import deployment_vendor_rules

DECISION_FILTERS = ("effect", "deployment", "layer", "trace_id")


def ruleset_versions(*, client: Client) -> list[RulesetVersion]:
    """Every version, newest first (the draft, when there is one, has the highest number)."""
    with tenant_context(client):
        return list(RulesetVersion.objects.select_related("created_by", "published_by").order_by("-number"))


def ruleset_version_get(*, client: Client, number: int) -> RulesetVersion:
    with tenant_context(client):
        version = (
            RulesetVersion.objects.select_related("created_by", "published_by").filter(number=number).first()
        )
    if version is None:
        raise Http404("No such ruleset version.")
    return version


def ruleset_draft_get(*, client: Client) -> RulesetVersion | None:
    with tenant_context(client):
        return RulesetVersion.objects.filter(status=RulesetVersion.Status.DRAFT).first()


def ruleset_active_get(*, client: Client) -> RulesetVersion | None:
    with tenant_context(client):
        return RulesetVersion.objects.filter(is_active=True).first()


def rule_test_cases(*, client: Client) -> list[RuleTestCase]:
    with tenant_context(client):
        return list(RuleTestCase.objects.select_related("deployment").order_by("name", "pk"))


def rule_test_case_get(*, client: Client, pk: int) -> RuleTestCase:
    with tenant_context(client):
        case = RuleTestCase.objects.select_related("deployment").filter(pk=pk).first()
    if case is None:
        raise Http404("No such test case.")
    return case


def decision_list(*, client: Client, filters: dict | None = None, limit: int = 5000) -> list[DecisionLog]:
    """Decisions newest first, filtered by effect, deployment id, layer or trace id (unknown keys ignored)."""
    filters = {k: v for k, v in (filters or {}).items() if k in DECISION_FILTERS and v not in (None, "")}
    with tenant_context(client):
        queryset = DecisionLog.objects.select_related("deployment", "ruleset_version").order_by("-pk")
        if "effect" in filters:
            queryset = queryset.filter(effect=filters["effect"])
        if "deployment" in filters:
            queryset = queryset.filter(deployment_id=filters["deployment"])
        if "layer" in filters:
            queryset = queryset.filter(layer=filters["layer"])
        if "trace_id" in filters:
            queryset = queryset.filter(trace_id=filters["trace_id"])
        return list(queryset[:limit])


def decision_get(*, client: Client, pk: int) -> DecisionLog:
    with tenant_context(client):
        entry = DecisionLog.objects.select_related("deployment", "ruleset_version").filter(pk=pk).first()
    if entry is None:
        raise Http404("No such decision.")
    return entry


def evaluation_keys(*, client: Client, deployment: Deployment) -> list[EvaluationKey]:
    with tenant_context(client):
        return list(EvaluationKey.objects.filter(deployment=deployment).select_related("created_by"))


def evaluation_key_get(*, client: Client, deployment: Deployment, pk: int) -> EvaluationKey:
    with tenant_context(client):
        key = EvaluationKey.objects.filter(deployment=deployment, pk=pk).first()
    if key is None:
        raise Http404("No such key.")
    return key


def live_deployments(*, client: Client) -> list[Deployment]:
    """The client's deployments that are not retired (their tools and entities feed the rule pickers)."""
    with tenant_context(client):
        return list(
            Deployment.objects.exclude(status=Deployment.Status.RETIRED)
            .select_related("variant", "version__policy_pack_version__pack")
            .order_by("name", "pk")
        )


def vendor_rules_by_deployment(*, client: Client) -> list[tuple[Deployment, list[dict]]]:
    """Each live deployment with the locked vendor rules of its pinned policy pack."""
    return [(d, deployment_vendor_rules(d)) for d in live_deployments(client=client)]


def pickers(*, client: Client) -> dict:
    """What a rule's selector can name, from the client's live deployments: variants, tools, entities."""
    variants: set[str] = set()
    tools: set[str] = set()
    entities: set[str] = set()
    for deployment in live_deployments(client=client):
        spec = deployment.version.spec or {}
        variants.add(deployment.variant.key)
        for tool in spec.get("tools", []):
            tools.add(tool["name"])
            entities.update(tool.get("entities", []))
        entities.update(entity["name"] for entity in spec.get("data", []))
    return {
        "variants": sorted(variants),
        "tools": sorted(tools),
        "operations": ["read", "create", "update", "delete", "send"],
        "entities": sorted(entities),
    }


def layered_rules(*, client: Client, version: RulesetVersion | None) -> list[dict]:
    """Every rule that governs the client: vendor rules of each pack in use (once), then `version`'s rules.

    Each rule dict gains `locked` (vendor rules) and, for vendor rules, `packs` naming where it comes from.
    """
    vendor: dict[str, dict] = {}
    for deployment, rules in vendor_rules_by_deployment(client=client):
        pack = deployment.version.policy_pack_version
        label = f"{pack.pack.key} {pack.version}" if pack is not None else ""
        for rule in rules:
            entry = vendor.setdefault(rule["key"], {**rule, "locked": True, "packs": []})
            if label and label not in entry["packs"]:
                entry["packs"].append(label)
    own = [{**rule, "locked": False} for rule in (version.rules if version else [])]
    order = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted([*vendor.values(), *own], key=lambda r: order[r["layer"]])


def working_rule_get(*, client: Client, key: str) -> tuple[dict, RulesetVersion]:
    """The stored rule `key` as it stands now: in the draft when there is one, else in the active version.

    Returns the rule and the version it was read from; Http404 when neither holds it (vendor rules
    are never stored, so they are not found here).
    """
    with tenant_context(client):
        version = (
            RulesetVersion.objects.filter(status=RulesetVersion.Status.DRAFT).first()
            or RulesetVersion.objects.filter(is_active=True).first()
        )
    rule = next((r for r in (version.rules if version else []) if r.get("key") == key), None)
    if version is None or rule is None:
        raise Http404("No such rule.")
    return rule, version


def decision_page(
    *, client: Client, filters: dict | None = None, page: str | int | None = None, per_page: int = 25
) -> Page:
    """One page of the decision log, newest first, filtered like `decision_list`.

    The page's rows and the total are read inside the client's schema; junk or out-of-range page
    numbers fall back to the first or last page.
    """
    filters = {k: v for k, v in (filters or {}).items() if k in DECISION_FILTERS and v not in (None, "")}
    lookups = {"deployment": "deployment_id"}
    with tenant_context(client):
        queryset = (
            DecisionLog.objects.select_related("deployment", "ruleset_version")
            .filter(**{lookups.get(name, name): value for name, value in filters.items()})
            .order_by("-pk")
        )
        result = Paginator(queryset, per_page).get_page(page)
        result.object_list = list(result.object_list)
    return result


# --- Decision log windows (a count and one slice at a time, for paginated lists) ----------------


def _decision_queryset(filters: dict | None):
    filters = {k: v for k, v in (filters or {}).items() if k in DECISION_FILTERS and v not in (None, "")}
    queryset = DecisionLog.objects.select_related("deployment", "ruleset_version").order_by("-pk")
    if "effect" in filters:
        queryset = queryset.filter(effect=filters["effect"])
    if "deployment" in filters:
        queryset = queryset.filter(deployment_id=filters["deployment"])
    if "layer" in filters:
        queryset = queryset.filter(layer=filters["layer"])
    if "trace_id" in filters:
        queryset = queryset.filter(trace_id=filters["trace_id"])
    return queryset


def decision_count(*, client: Client, filters: dict | None = None) -> int:
    """How many decisions match `filters` (as in decision_list)."""
    with tenant_context(client):
        return _decision_queryset(filters).count()


def decision_window(*, client: Client, filters: dict | None = None, start: int = 0, stop: int = 25) -> list:
    """Decisions `start` to `stop` (newest first) matching `filters`: one page of the log, read alone."""
    with tenant_context(client):
        return list(_decision_queryset(filters)[max(start, 0) : max(stop, 0)])
