"""Management portal, a client's governance: the partner rules editor, test cases, publishing, history,
shadow report, replay and the decision log.

Partner teams write `partner` rules. Vendor rules (from the policy packs the deployments pin) are
shown locked, client rules read-only; the services refuse a change to either whatever the request
says. Every view resolves the client with `access_client` (404 outside the actor's scope), and the
governance services and selectors switch into the client's schema themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import partner_portal
from apps.core.exceptions import ApplicationError
from apps.governance import selectors, services
from apps.governance.context import CONTEXT_DOC
from apps.governance.diff import rules_diff
from apps.governance.engine import read_paths
from apps.governance.forms import condition_problems
from apps.governance.models import RulesetVersion
from apps.governance.rules import CONTEXT_VARIABLES, RulesetError, check_condition
from apps.tenancy.models import Client

from .governance_forms import (
    DecisionFilterForm,
    ReplayForm,
    RuleForm,
    RuleTestCaseForm,
    ShadowReportForm,
)
from .views import PartnerRequest, _crumbs, _render, _workspace_client

# Partner staff author this layer; vendor rules are locked and client rules are the client's.
PARTNER_LAYER = "partner"
TEMPLATES = "portals/management/governance"
SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")


# --- Helpers ------------------------------------------------------------------------------


def _url(name: str, client: Client, *args) -> str:
    return reverse(f"management:governance_{name}", args=[client.pk, *args])


def _crumbs_for(client: Client, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    governance = (("Governance", _url("rules", client)),) if trail else (("Governance", None),)
    return _crumbs((client.name, reverse("management:client_detail", args=[client.pk])), *governance, *trail)


def _page(request: PartnerRequest, template: str, client: Client, tab: str, context: dict, **kwargs):
    """Render a governance page: every one shows the client, the section tabs and the draft/active state."""
    if "draft" not in context or "active" not in context:
        draft, active = _state(client)
        context = {"draft": draft, "active": active, **context}
    context = {"client": client, "tab": tab, **context}
    return _render(request, f"{TEMPLATES}/{template}", context, **kwargs)


def _state(client: Client) -> tuple[RulesetVersion | None, RulesetVersion | None]:
    """(draft, active) ruleset versions of the client; either may be None."""
    return selectors.ruleset_draft_get(client=client), selectors.ruleset_active_get(client=client)


def _selector_summary(rule: dict) -> list[tuple[str, list[str]]]:
    selector = rule.get("selector") or {}
    return [(dimension, selector[dimension]) for dimension in SELECTOR_DIMENSIONS if selector.get(dimension)]


def _rows(rules: list[dict], changes: Mapping[str, str] | None = None) -> list[dict]:
    """Rules as table rows: who may change them, what they select, whether the draft changed them."""
    return [
        {
            "rule": rule,
            "editable": rule.get("layer") == PARTNER_LAYER and not rule.get("locked"),
            "selector": _selector_summary(rule),
            "change": (changes or {}).get(rule["key"]),
        }
        for rule in rules
    ]


def _vendor_keys(client: Client) -> set[str]:
    return {rule["key"] for rule in selectors.layered_rules(client=client, version=None)}


def _owned_rule(request: PartnerRequest, client: Client, key: str) -> dict | HttpResponse:
    """The partner rule `key` of the draft (or the active version), or a redirect saying why it cannot
    be changed here: vendor rules are locked, client rules belong to the client's admins."""
    try:
        rule, _version = selectors.working_rule_get(client=client, key=key)
    except Http404:
        if key in _vendor_keys(client):
            messages.error(
                request, f"“{key}” is a locked vendor rule from a policy pack; it cannot be changed."
            )
            return redirect(_url("rules", client))
        raise
    if rule.get("layer") != PARTNER_LAYER:
        messages.error(
            request,
            f"“{key}” is a {rule.get('layer')} rule: only the client's admins change it, in their dashboard.",
        )
        return redirect(_url("rules", client))
    return rule


_PATH_RULE = re.compile(r"^rules\[([^\]]+)\](?:\.(.+))?$")


def _explain(errors: list[dict], rules: list[dict]) -> list[dict]:
    """RulesetError entries as people read them: which rule (by key) or test case, which field, what."""
    explained = []
    for error in errors:
        path, where, kind = error.get("path") or "", "", "ruleset"
        if path.startswith("test:"):
            where, kind = path.removeprefix("test:"), "test"
        elif match := _PATH_RULE.match(path):
            ref, field = match.groups()
            key = rules[int(ref)]["key"] if ref.isdigit() and int(ref) < len(rules) else ref
            where, kind = (f"{key} · {field}" if field else key), "rule"
        elif path:
            where = path
        explained.append({"kind": kind, "where": where, "message": error["message"]})
    return explained


def condition_report(expression: str) -> dict:
    """What the live check shows for a condition: whether it compiles and what it reads, or its errors
    (a syntax error with its line, column and the line marked where the parser stopped)."""
    expression = (expression or "").strip()
    if not expression:
        return {"empty": True, "ok": True, "errors": [], "reads": []}
    program, problems = check_condition(expression)
    errors = condition_problems(problems)
    reads: list[str] = []
    uses_rate = False
    if program is not None:
        variables = set(program.variables()) & CONTEXT_VARIABLES
        reads = sorted(".".join(path) for path in read_paths(expression, variables))
        uses_rate = "rate" in program.functions()
    return {"empty": False, "ok": not errors, "errors": errors, "reads": reads, "uses_rate": uses_rate}


# --- The ruleset editor ---------------------------------------------------------------------


@partner_portal()
@require_safe
def ruleset(request: PartnerRequest, pk: int) -> HttpResponse:
    """Every rule that governs the client, by layer, with the draft and the active version."""
    client = _workspace_client(request, pk)
    draft, active = _state(client)
    diff = rules_diff(active.rules if active else [], draft.rules) if draft else []
    changes = {change.key: change.kind for change in diff}
    rules = selectors.layered_rules(client=client, version=draft or active)
    vendor = [rule for rule in rules if rule.get("locked")]
    context = {
        "draft": draft,
        "active": active,
        "own_rows": _rows([rule for rule in rules if not rule.get("locked")], changes),
        "vendor_rows": _rows(vendor),
        "packs": sorted({pack for rule in vendor for pack in rule.get("packs", [])}),
        "removed": [change for change in diff if change.kind == "removed"],
        "diff_count": len(diff),
        "test_count": len(selectors.rule_test_cases(client=client)),
        "crumbs": _crumbs_for(client),
    }
    return _page(request, "ruleset.html", client, "rules", context)


def _rule_form(request: PartnerRequest, client: Client, existing: dict | None) -> HttpResponse:
    draft, active = _state(client)
    current = draft or active
    own = current.rules if current else []
    taken = {rule["key"] for rule in own} - ({existing["key"]} if existing else set())
    form = RuleForm(
        request.POST if request.method == "POST" else None,
        pickers=selectors.pickers(client=client),
        taken_keys=taken,
        vendor_keys=_vendor_keys(client),
        rule=existing,
        check_url=_url("condition_check", client),
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.rule_save(
                client=client,
                rule=form.rule(existing),
                layer=PARTNER_LAYER,
                actor=request.user,
                replace_key=existing["key"] if existing else None,
            )
        except RulesetError as error:
            form.add_ruleset_errors(error.errors)
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            verb = "saved" if existing else "added"
            messages.success(
                request,
                f"Rule “{form.cleaned_data['name']}” {verb} to draft v{saved.number}. "
                "Publish the draft to make it active.",
            )
            return redirect(_url("rules", client))
    condition = form["condition"].value() if form.is_bound else (existing or {}).get("condition")
    title = f"Edit rule {existing['key']}" if existing else "New rule"
    context = {
        "form": form,
        "existing": existing,
        "draft": draft,
        "active": active,
        "check": condition_report(condition or "") if condition else None,
        "context_doc": CONTEXT_DOC,
        "crumbs": _crumbs_for(client, (title, None)),
        "title": title,
    }
    return _page(request, "rule_form.html", client, "rules", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def rule_create(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    return _rule_form(request, client, None)


@partner_portal()
@require_http_methods(["GET", "POST"])
def rule_edit(request: PartnerRequest, pk: int, key: str) -> HttpResponse:
    client = _workspace_client(request, pk)
    rule = _owned_rule(request, client, key)
    if isinstance(rule, HttpResponse):
        return rule
    return _rule_form(request, client, rule)


@partner_portal()
@require_POST
def condition_check(request: PartnerRequest, pk: int) -> HttpResponse:
    """The rule form's live check of its CEL condition (htmx, on typing): compiles? reads what? No writes."""
    client = _workspace_client(request, pk)
    context = {"client": client, "check": condition_report(request.POST.get("condition", ""))}
    return _render(request, f"{TEMPLATES}/rule_form.html#condition-check", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def rule_delete(request: PartnerRequest, pk: int, key: str) -> HttpResponse:
    client = _workspace_client(request, pk)
    rule = _owned_rule(request, client, key)
    if isinstance(rule, HttpResponse):
        return rule
    if request.method == "POST":
        try:
            draft = services.rule_delete(client=client, key=key, layer=PARTNER_LAYER, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"Rule “{rule['name']}” removed from draft v{draft.number}; publish to make it so."
            )
        return redirect(_url("rules", client))
    context = {"rule": rule, "crumbs": _crumbs_for(client, (f"Delete {key}", None))}
    return _page(request, "rule_delete.html", client, "rules", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def draft_discard(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    draft, active = _state(client)
    if draft is None:
        messages.info(request, "There is no draft to discard.")
        return redirect(_url("rules", client))
    if request.method == "POST":
        try:
            services.ruleset_draft_discard(client=client, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                f"The partner changes in draft v{draft.number} are discarded; "
                "a client admin's unpublished changes, if any, stay in the draft.",
            )
        return redirect(_url("rules", client))
    context = {
        "draft": draft,
        "active": active,
        "diff": rules_diff(active.rules if active else [], draft.rules),
        "crumbs": _crumbs_for(client, (f"Discard draft v{draft.number}", None)),
    }
    return _page(request, "draft_discard.html", client, "rules", context)


# --- Test cases -----------------------------------------------------------------------------


def _tested_version(client: Client) -> RulesetVersion:
    """What test cases run against: the draft, else the active version, else no rules at all."""
    draft, active = _state(client)
    return draft or active or RulesetVersion(number=0, rules=[])


@partner_portal()
@require_safe
def test_list(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    return _tests_page(request, client, outcomes=None)


def _tests_page(request: PartnerRequest, client: Client, outcomes, error: str = "") -> HttpResponse:
    version = _tested_version(client)
    context = {
        "cases": selectors.rule_test_cases(client=client),
        "version": version,
        "outcomes": outcomes,
        "passed": sum(1 for outcome in outcomes or [] if outcome.passed),
        "run_error": error,
        "crumbs": _crumbs_for(client, ("Test cases", None)),
    }
    return _page(request, "test_list.html", client, "tests", context, partial="results")


@partner_portal()
@require_POST
def test_run(request: PartnerRequest, pk: int) -> HttpResponse:
    """Run every test case against the draft (or the active version); nothing is written."""
    client = _workspace_client(request, pk)
    try:
        outcomes = services.ruleset_tests_run(client=client, version=_tested_version(client))
    except (RulesetError, ApplicationError) as error:
        return _tests_page(request, client, outcomes=None, error=error.message)
    return _tests_page(request, client, outcomes=outcomes)


@partner_portal()
@require_http_methods(["GET", "POST"])
def test_create(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    deployments = selectors.live_deployments(client=client)
    form = RuleTestCaseForm(
        request.POST if request.method == "POST" else None,
        deployments=deployments,
        taken_names={case.name for case in selectors.rule_test_cases(client=client)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            case = services.rule_test_case_save(
                client=client,
                name=data["name"],
                action=data["action"],
                context=data["context"],
                expected_effect=data["expected_effect"],
                deployment=data["deployment"],
                actor=request.user,
            )
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Test case “{case.name}” added; run the tests to see it pass or fail.")
            return redirect(_url("tests", client))
    pickers = selectors.pickers(client=client)
    context = {
        "form": form,
        "tools": pickers["tools"],
        "entities": pickers["entities"],
        "context_doc": CONTEXT_DOC,
        "crumbs": _crumbs_for(client, ("Test cases", _url("tests", client)), ("New test case", None)),
    }
    return _page(request, "test_form.html", client, "tests", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def test_delete(request: PartnerRequest, pk: int, case_id: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    case = selectors.rule_test_case_get(client=client, pk=case_id)
    if request.method == "POST":
        try:
            services.rule_test_case_delete(client=client, case=case, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Test case “{case.name}” deleted.")
        return redirect(_url("tests", client))
    context = {
        "case": case,
        "crumbs": _crumbs_for(client, ("Test cases", _url("tests", client)), (f"Delete {case.name}", None)),
    }
    return _page(request, "test_delete.html", client, "tests", context)


# --- Publishing -------------------------------------------------------------------------------


@partner_portal()
@require_http_methods(["GET", "POST"])
def publish(request: PartnerRequest, pk: int) -> HttpResponse:
    """The publish checks and the diff from the active version; publishing when nothing blocks it."""
    client = _workspace_client(request, pk)
    draft, active = _state(client)
    if draft is None:
        if request.method == "POST":
            messages.info(request, "There is no draft to publish.")
            return redirect(_url("rules", client))
        context: dict = {"draft": None, "active": active, "crumbs": _crumbs_for(client, ("Publish", None))}
        return _page(request, "publish.html", client, "publish", context)
    blocked_on_post = False
    if request.method == "POST":
        try:
            version = services.ruleset_publish(client=client, version=draft, actor=request.user)
        except RulesetError:
            blocked_on_post = True  # the checks below list every reason
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect(_url("rules", client))
        else:
            messages.success(
                request, f"Version {version.number} is published and active: it decides every new action."
            )
            return redirect(_url("rules", client))
    errors, warnings = services.ruleset_check(client=client, version=draft)
    try:
        outcomes = services.ruleset_tests_run(client=client, version=draft)
    except RulesetError:
        outcomes = None  # the rules do not compile: the errors say why
    explained = _explain(errors, draft.rules)
    context = {
        "draft": draft,
        "active": active,
        "errors": [e for e in explained if e["kind"] != "test"],
        "failing": [o for o in outcomes or [] if not o.passed],
        "test_errors": [e for e in explained if e["kind"] == "test"] if outcomes is None else [],
        "blocked": bool(errors),
        "blocked_on_post": blocked_on_post,
        "warnings": _explain(warnings, draft.rules),
        "outcomes": outcomes,
        "diff": rules_diff(active.rules if active else [], draft.rules),
        "crumbs": _crumbs_for(client, (f"Publish draft v{draft.number}", None)),
    }
    return _page(request, "publish.html", client, "publish", context)


# --- Versions ---------------------------------------------------------------------------------


@partner_portal()
@require_safe
def version_list(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    versions = selectors.ruleset_versions(client=client)
    by_pk = {version.pk: version for version in versions}
    rows = [
        {"version": version, "rolled_back_from": by_pk.get(version.rolled_back_from_id or 0)}
        for version in versions
    ]
    context = {"rows": rows, "crumbs": _crumbs_for(client, ("Versions", None))}
    return _page(request, "version_list.html", client, "versions", context)


@partner_portal()
@require_safe
def version_detail(request: PartnerRequest, pk: int, number: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    version = selectors.ruleset_version_get(client=client, number=number)
    versions = selectors.ruleset_versions(client=client)
    previous = next((v for v in versions if v.number < version.number and v.is_published), None)
    rolled_back_from = next((v for v in versions if v.pk == version.rolled_back_from_id), None)
    context = {
        "version": version,
        "previous": previous,
        "rolled_back_from": rolled_back_from,
        "rows": _rows(version.rules),
        "diff": rules_diff(previous.rules if previous else [], version.rules),
        "crumbs": _crumbs_for(client, ("Versions", _url("versions", client)), (f"v{version.number}", None)),
    }
    return _page(request, "version_detail.html", client, "versions", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def rollback(request: PartnerRequest, pk: int, number: int) -> HttpResponse:
    """Make an earlier published version's rules active again (as a new version), after confirming."""
    client = _workspace_client(request, pk)
    target = selectors.ruleset_version_get(client=client, number=number)
    draft, active = _state(client)
    if not target.is_published or target.is_active:
        why = "is the active version" if target.is_active else "is a draft, never published"
        messages.error(request, f"Version {target.number} {why}: there is nothing to roll back to.")
        return redirect(_url("versions", client))
    if request.method == "POST":
        try:
            version = services.ruleset_rollback(client=client, to_version=target, actor=request.user)
        except ApplicationError as error:  # RulesetError too: a vendor rule added since collides
            messages.error(request, f"Rollback refused: {error.message}")
        else:
            messages.success(
                request, f"Rolled back: version {version.number} (the rules of v{target.number}) is active."
            )
        return redirect(_url("versions", client))
    context = {
        "target": target,
        "draft": draft,
        "active": active,
        "diff": rules_diff(active.rules if active else [], target.rules),
        "crumbs": _crumbs_for(
            client, ("Versions", _url("versions", client)), (f"Roll back to v{target.number}", None)
        ),
    }
    return _page(request, "rollback.html", client, "versions", context)


# --- Shadow report and replay ---------------------------------------------------------------------


@partner_portal()
@require_safe
def shadow(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    form = ShadowReportForm(request.GET if "last" in request.GET else None)
    last = form.cleaned_data["last"] if form.is_bound and form.is_valid() else 1000
    report = services.shadow_report(client=client, last=last) if not form.errors else None
    _draft, active = _state(client)
    shadow_rules = [rule for rule in (active.rules if active else []) if rule.get("mode") == "shadow"]
    stats = {s.key: s for s in report.rules} if report else {}
    rows = [
        {
            "key": key,
            "stats": stats.get(key),
            "rule": next((r for r in shadow_rules if r["key"] == key), None),
        }
        for key in [*stats, *(r["key"] for r in shadow_rules if r["key"] not in stats)]
    ]
    context = {
        "form": form,
        "report": report,
        "rows": rows,
        "active": active,
        "shadow_rules": shadow_rules,
        "crumbs": _crumbs_for(client, ("Shadow report", None)),
    }
    return _page(request, "shadow.html", client, "shadow", context)


@partner_portal()
@require_safe
def replay(request: PartnerRequest, pk: int) -> HttpResponse:
    """The draft (or else the active version) decided again over the latest logged decisions."""
    client = _workspace_client(request, pk)
    draft, active = _state(client)
    version = draft or active
    form = ReplayForm(request.GET if "last" in request.GET else None, initial={"last": 200})
    result = None
    if version is not None and form.is_bound and form.is_valid():
        try:
            result = services.ruleset_replay(client=client, version=version, last=form.cleaned_data["last"])
        except RulesetError as error:
            form.add_error(None, f"The rules of v{version.number} do not compile: {error.message}")
        except ApplicationError as error:
            form.add_error("last" if error.field == "last" else None, error.message)
    context = {
        "form": form,
        "version": version,
        "result": result,
        "has_decisions": bool(selectors.decision_list(client=client, limit=1)),
        "crumbs": _crumbs_for(client, ("Replay", None)),
    }
    return _page(request, "replay.html", client, "replay", context)


# --- The decision log -------------------------------------------------------------------------------


@partner_portal()
@require_safe
def decision_list(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    form = DecisionFilterForm(request.GET)
    filters = {"effect": form.cleaned_data["effect"]} if form.is_valid() else {}
    context = {
        "form": form,
        "filtered": bool(filters.get("effect")),
        "page_obj": selectors.decision_page(client=client, filters=filters, page=request.GET.get("page")),
        "crumbs": _crumbs_for(client, ("Decisions", None)),
    }
    return _page(request, "decision_list.html", client, "decisions", context)


@partner_portal()
@require_safe
def decision_detail(request: PartnerRequest, pk: int, decision_id: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    entry = selectors.decision_get(client=client, pk=decision_id)
    context = {
        "entry": entry,
        "crumbs": _crumbs_for(client, ("Decisions", _url("decisions", client)), (f"#{entry.pk}", None)),
    }
    return _page(request, "decision_detail.html", client, "decisions", context)
