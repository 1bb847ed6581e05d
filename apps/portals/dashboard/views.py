"""Client dashboard (a client's own host): the client at a glance, its users and its agents.

The connection is already on the client's schema (tenant middleware) and
`request.tenant` is the client; `@client_portal` has checked the user's role in it.
"""

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts import services as account_services
from apps.accounts.access import access_client_member, client_member_list
from apps.accounts.decorators import client_portal
from apps.accounts.models import ClientMembership, ClientRole, User
from apps.core.exceptions import ApplicationError
from apps.core.htmx import redirect_after_post
from apps.core.pagination import paginate
from apps.deployments import selectors as deployment_selectors
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.diff import spec_diff
from apps.governance import selectors as governance_selectors
from apps.governance import services as governance_services
from apps.governance.context import CONTEXT_DOC
from apps.governance.diff import rules_diff
from apps.governance.rules import RulesetError
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from apps.tenancy.selectors import client_activity

from .forms import (
    ClientRuleForm,
    ClientSettingsForm,
    ClientUserInviteForm,
    ClientUserRoleForm,
    DecisionFilterForm,
    DeploymentDecisionForm,
)

ADMIN_ONLY = [ClientRole.CLIENT_ADMIN]
HOME_USERS_SHOWN = 5
HOME_ACTIVITY_SHOWN = 10


class ClientRequest(HttpRequest):
    """A request that passed `@client_portal`: a signed-in member of the client whose host this is."""

    user: User
    tenant: Client
    client_membership: ClientMembership


def _is_client_admin(request: ClientRequest) -> bool:
    return request.client_membership.role == ClientRole.CLIENT_ADMIN


def _role_form(membership: ClientMembership) -> ClientUserRoleForm:
    # One role picker per table row: ids must stay unique on the page.
    return ClientUserRoleForm(initial={"role": membership.role}, auto_id=f"id_member_{membership.pk}_%s")


def _crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Home", reverse("dashboard:home")), *trail]


@client_portal()
def home(request: ClientRequest) -> HttpResponse:
    client = request.tenant
    members = client_member_list(client=client)
    by_role = dict(members.values_list("role").annotate(n=Count("pk")).order_by())
    deployments = deployment_selectors.deployment_list(client=client)
    context = {
        "client": client,
        "is_client_admin": _is_client_admin(request),
        "role_counts": [(value, label, by_role.get(value, 0)) for value, label in ClientRole.choices],
        "user_count": sum(by_role.values()),
        "members": members.order_by("user__email")[:HOME_USERS_SHOWN],
        "activity": client_activity(client=client, limit=HOME_ACTIVITY_SHOWN),
        "agents_running": sum(d.status == Deployment.Status.DEPLOYED for d in deployments),
        "agents_paused": sum(d.status == Deployment.Status.PAUSED for d in deployments),
        "agents_awaiting": sum(_awaits_decision(d) for d in deployments),
    }
    return render(request, "portals/dashboard/home.html", context)


@client_portal()
def user_list(request: ClientRequest) -> HttpResponse:
    is_admin = _is_client_admin(request)
    page_obj = paginate(request, client_member_list(client=request.tenant).order_by("user__email"))
    context = {
        "page_obj": page_obj,
        "rows": [(membership, _role_form(membership) if is_admin else None) for membership in page_obj],
        "is_client_admin": is_admin,
        "crumbs": _crumbs(("Users", None)),
    }
    return render(request, "portals/dashboard/user_list.html", context)


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def user_invite(request: ClientRequest) -> HttpResponse:
    form = ClientUserInviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = account_services.client_member_invite(
                client=request.tenant,
                **form.cleaned_data,
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            role = membership.get_role_display().lower()
            messages.success(request, f"Invitation sent to {membership.user.email} as {role}.")
            return redirect("dashboard:user_list")
    context = {
        "form": form,
        "crumbs": _crumbs(("Users", reverse("dashboard:user_list")), ("Invite", None)),
    }
    return render(request, "portals/dashboard/user_invite.html", context)


@client_portal(roles=ADMIN_ONLY)
@require_POST
def user_role(request: ClientRequest, pk: int) -> HttpResponse:
    membership = access_client_member(request.user, request.tenant, pk)
    form = ClientUserRoleForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Choose one of the listed roles."
    else:
        try:
            membership = account_services.client_member_set_role(
                membership=membership, role=form.cleaned_data["role"], actor=request.user
            )
        except ApplicationError as exc:
            error = exc.message
    # An admin who gave up their own admin role must not keep a page of admin controls: reload it whole.
    own_demotion = (
        error is None and membership.user_id == request.user.pk and membership.role != ClientRole.CLIENT_ADMIN
    )
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted and not own_demotion:
        # Swap just this row: the saved role, or the unchanged one with the reason it was refused.
        context = {
            "membership": membership,
            "role_form": _role_form(membership),
            "is_client_admin": True,
            "row_error": error,
            "row_saved": error is None,
        }
        return render(request, "portals/dashboard/user_list.html#user_row", context)
    if error:
        messages.error(request, error)
    elif own_demotion:
        messages.success(request, f"Your role is now {membership.get_role_display().lower()}.")
    else:
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect_after_post(request, reverse("dashboard:user_list"))


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def user_remove(request: ClientRequest, pk: int) -> HttpResponse:
    membership = access_client_member(request.user, request.tenant, pk)
    if request.method == "POST":
        try:
            account_services.client_member_remove(membership=membership, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            email, client_name = membership.user.email, request.tenant.name
            messages.success(request, f"{email} no longer has access to {client_name}.")
        return redirect("dashboard:user_list")
    context = {
        "membership": membership,
        "crumbs": _crumbs(("Users", reverse("dashboard:user_list")), ("Remove user", None)),
    }
    return render(request, "portals/dashboard/user_remove.html", context)


# --- Agents (deployments) ---------------------------------------------------

DECISIONS = {
    "approve": "“{}” is approved; the partner team can deploy it.",
    "reject": "“{}” was rejected; the partner team sees your reason.",
    "approve_change": "The version change of “{}” is approved.",
    "reject_change": "The version change of “{}” was rejected.",
}


def _awaits_decision(deployment: Deployment) -> bool:
    return deployment.status == Deployment.Status.SUBMITTED or deployment.pending_version_id is not None


@client_portal()
@require_safe
def deployment_list(request: ClientRequest) -> HttpResponse:
    deployments = deployment_selectors.deployment_list(client=request.tenant)
    show_retired = request.GET.get("retired") == "1"
    is_admin = _is_client_admin(request)
    context = {
        "page_obj": paginate(
            request, [d for d in deployments if show_retired or d.status != Deployment.Status.RETIRED]
        ),
        "show_retired": show_retired,
        "retired_count": sum(d.status == Deployment.Status.RETIRED for d in deployments),
        "pending": [d for d in deployments if _awaits_decision(d)] if is_admin else [],
        "is_client_admin": is_admin,
        "crumbs": _crumbs(("Agents", None)),
    }
    return render(request, "portals/dashboard/deployment_list.html", context)


@client_portal()
@require_safe
def deployment_detail(request: ClientRequest, deployment_id: int) -> HttpResponse:
    client = request.tenant
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    pending = deployment.pending_version
    context = {
        "deployment": deployment,
        "history": deployment_selectors.deployment_history(client=client, deployment=deployment),
        "is_client_admin": _is_client_admin(request),
        "awaits_decision": _awaits_decision(deployment),
        "pending_diff": spec_diff(deployment.version.spec, pending.spec) if pending else None,
        "form": DeploymentDecisionForm(),
        "crumbs": _crumbs(("Agents", reverse("dashboard:deployment_list")), (deployment.name, None)),
    }
    return render(request, "portals/dashboard/deployment_detail.html", context)


@client_portal(roles=ADMIN_ONLY)
@require_POST
def deployment_decide(request: ClientRequest, deployment_id: int) -> HttpResponse:
    """Approve or reject a submitted deployment or a pending version change (maker-checker in the service)."""
    client = request.tenant
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    form = DeploymentDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for errors in form.errors.values() for error in errors))
    else:
        decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
        service = getattr(deployment_services, f"deployment_{decision}")
        try:
            service(client=client, deployment=deployment, actor=request.user, reason=reason)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, DECISIONS[decision].format(deployment.name))
    return redirect_after_post(request, reverse("dashboard:deployment_detail", args=[deployment.pk]))


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def client_settings(request: ClientRequest) -> HttpResponse:
    """The client's own settings (client admins)."""
    client = request.tenant
    if request.method == "POST":
        form = ClientSettingsForm(request.POST)
        if form.is_valid():
            tenancy_services.client_set_version_change_approval(
                client=client,
                required=form.cleaned_data["require_version_change_approval"],
                actor=request.user,
            )
            messages.success(request, "Settings saved.")
            return redirect("dashboard:client_settings")
    else:
        form = ClientSettingsForm(
            initial={"require_version_change_approval": client.require_version_change_approval}
        )
    return render(
        request,
        "portals/dashboard/client_settings.html",
        {"form": form, "client": client, "crumbs": _crumbs(("Settings", None))},
    )


# --- Governance: the rules that govern the client, its own stricter rules, its decisions ---------

LAYERS = [
    ("vendor", "Vendor rules", "From the agents' policy packs; locked, they always apply."),
    ("partner", "Partner rules", "Written by your delivery partner's team."),
    ("client", "Your rules", "Written by your client admins; they can only make decisions stricter."),
]
CLIENT_LAYER = "client"


def _rule_layers(rules: list[dict]) -> list[tuple[str, str, str, list[dict]]]:
    """The rules grouped by layer, in the order the engine layers them: (layer, title, note, rules)."""
    return [(layer, title, note, [r for r in rules if r["layer"] == layer]) for layer, title, note in LAYERS]


def _check_messages(errors: list[dict], rules: list[dict]) -> list[dict]:
    """Publish-check errors or warnings with their path told in words: which rule, or which test case."""
    described = []
    for error in errors:
        path = error.get("path") or ""
        where = path
        index = path.removeprefix("rules[").split("]", 1)[0] if path.startswith("rules[") else ""
        if index.isdigit() and int(index) < len(rules):
            rest = path.split("]", 1)[1].lstrip(".")
            where = f"Rule {rules[int(index)]['key']}" + (f" ({rest})" if rest else "")
        elif path.startswith("test:"):
            where = f"Test case “{path.removeprefix('test:')}”"
        described.append({"where": where, "message": error["message"]})
    return described


def _not_yours(rule: dict) -> str:
    return f"{rule['key']} is a {rule['layer']} rule; only its {rule['layer']} team can change it."


def _governance_crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(("Rules", reverse("dashboard:rule_list")), *trail)


@client_portal()
@require_safe
def rule_list(request: ClientRequest) -> HttpResponse:
    """Every rule that governs the client, by layer; client admins also see their draft's changes."""
    client = request.tenant
    is_admin = _is_client_admin(request)
    active = governance_selectors.ruleset_active_get(client=client)
    rules = governance_selectors.layered_rules(client=client, version=active)
    draft = governance_selectors.ruleset_draft_get(client=client) if is_admin else None
    context = {
        "active": active,
        "layers": _rule_layers(rules),
        "rule_count": len(rules),
        "draft": draft,
        "draft_layers": _rule_layers(draft.rules)[1:] if draft else [],
        "draft_changes": rules_diff(active.rules if active else [], draft.rules) if draft else [],
        "is_client_admin": is_admin,
        "crumbs": _crumbs(("Rules", None)),
    }
    return render(request, "portals/dashboard/governance/rule_list.html", context)


def _rule_form_page(
    request: ClientRequest, form: ClientRuleForm, *, rule_key: str | None = None, status: int = 200
) -> HttpResponse:
    title = f"Edit {rule_key}" if rule_key else "Add a rule"
    context = {
        "form": form,
        "rule_key": rule_key,
        "context_doc": CONTEXT_DOC,
        "crumbs": _governance_crumbs((title, None)),
    }
    return render(request, "portals/dashboard/governance/rule_form.html", context, status=status)


def _save_rule(
    request: ClientRequest, form: ClientRuleForm, *, replace_key: str | None, base: dict | None
) -> bool:
    """Write the form's rule into the draft as a client rule (an edited rule, `base`, keeps its source);
    the service's refusals go on the form."""
    try:
        governance_services.rule_save(
            client=request.tenant,
            rule=form.rule(base),
            layer=CLIENT_LAYER,
            actor=request.user,
            replace_key=replace_key,
        )
    except RulesetError as error:
        form.add_ruleset_errors(error.errors)
        return False
    except ApplicationError as error:
        form.add_error(None, error.message)
        return False
    return True


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def rule_create(request: ClientRequest) -> HttpResponse:
    """A client admin adds a stricter rule (deny, require approval, redact) to the draft."""
    pickers = governance_selectors.pickers(client=request.tenant)
    form = ClientRuleForm(request.POST if request.method == "POST" else None, pickers=pickers)
    if (
        request.method == "POST"
        and form.is_valid()
        and _save_rule(request, form, replace_key=None, base=None)
    ):
        messages.success(
            request, f"Rule {form.cleaned_data['key']} was added to the draft; publish it to apply it."
        )
        return redirect("dashboard:rule_list")
    return _rule_form_page(request, form)


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def rule_edit(request: ClientRequest, key: str) -> HttpResponse:
    """Change one of the client's own rules in the draft (partner and vendor rules are not theirs)."""
    client = request.tenant
    rule, _version = governance_selectors.working_rule_get(client=client, key=key)
    if request.method == "GET" and rule["layer"] != CLIENT_LAYER:
        messages.error(request, _not_yours(rule))
        return redirect("dashboard:rule_list")
    pickers = governance_selectors.pickers(client=client)
    form = ClientRuleForm(
        request.POST if request.method == "POST" else None,
        pickers=pickers,
        initial=ClientRuleForm.initial_from(rule),
    )
    # The service refuses another layer's rule: a crafted POST changes nothing.
    if request.method == "POST" and form.is_valid() and _save_rule(request, form, replace_key=key, base=rule):
        messages.success(
            request, f"Rule {form.cleaned_data['key']} was saved in the draft; publish it to apply it."
        )
        return redirect("dashboard:rule_list")
    return _rule_form_page(request, form, rule_key=key)


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def rule_delete(request: ClientRequest, key: str) -> HttpResponse:
    """Remove one of the client's own rules from the draft, after a confirmation page."""
    client = request.tenant
    if request.method == "POST":
        try:
            governance_services.rule_delete(client=client, key=key, layer=CLIENT_LAYER, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Rule {key} was removed from the draft; publish it to apply it.")
        return redirect("dashboard:rule_list")
    rule, _version = governance_selectors.working_rule_get(client=client, key=key)
    if rule["layer"] != CLIENT_LAYER:
        messages.error(request, _not_yours(rule))
        return redirect("dashboard:rule_list")
    context = {"rule": rule, "crumbs": _governance_crumbs((f"Delete {key}", None))}
    return render(request, "portals/dashboard/governance/rule_delete.html", context)


@client_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def ruleset_publish(request: ClientRequest) -> HttpResponse:
    """Review the draft (checks, changes from the active version) and publish it."""
    client = request.tenant
    draft = governance_selectors.ruleset_draft_get(client=client)
    active = governance_selectors.ruleset_active_get(client=client)
    blocked: list[dict] | None = None
    if draft is not None and request.method == "POST":
        if request.POST.get("reviewed") != governance_services.rules_digest(draft.rules):
            messages.warning(
                request, "The draft changed after you opened this page; review the changes below again."
            )
        else:
            try:
                version = governance_services.ruleset_publish(
                    client=client,
                    version=draft,
                    actor=request.user,
                    layer=CLIENT_LAYER,
                    reviewed_digest=request.POST.get("reviewed"),
                )
            except RulesetError as error:
                blocked = _check_messages(error.errors, draft.rules)
            except ApplicationError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"Version {version.number} of the rules is published and active.")
                return redirect("dashboard:rule_list")
    elif request.method == "POST":
        messages.error(request, "There is no draft to publish.")
    errors: list[dict] = []
    warnings: list[dict] = []
    if draft is not None:
        errors, warnings = governance_services.ruleset_check(client=client, version=draft)
    context = {
        "draft": draft,
        "active": active,
        "errors": blocked if blocked is not None else _check_messages(errors, draft.rules if draft else []),
        "blocked": blocked is not None,
        "warnings": _check_messages(warnings, draft.rules if draft else []),
        "changes": rules_diff(active.rules if active else [], draft.rules) if draft else [],
        "reviewed": governance_services.rules_digest(draft.rules) if draft else "",
        "crumbs": _governance_crumbs(("Publish", None)),
    }
    return render(request, "portals/dashboard/governance/ruleset_publish.html", context)


@client_portal()
@require_safe
def decision_list(request: ClientRequest) -> HttpResponse:
    """The client's decision log: every governance decision, newest first, filtered by effect or layer."""
    form = DecisionFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    page_obj = governance_selectors.decision_page(
        client=request.tenant, filters=filters, page=request.GET.get("page")
    )
    context = {
        "form": form,
        "page_obj": page_obj,
        "filtered": any(filters.values()),
        "crumbs": _crumbs(("Decisions", None)),
    }
    return render(request, "portals/dashboard/governance/decision_list.html", context)


@client_portal()
@require_safe
def decision_detail(request: ClientRequest, pk: int) -> HttpResponse:
    """One decision in full: the action, its context, the rules that matched and the one that decided."""
    entry = governance_selectors.decision_get(client=request.tenant, pk=pk)
    context = {
        "entry": entry,
        "crumbs": _crumbs(("Decisions", reverse("dashboard:decision_list")), (f"Decision {entry.pk}", None)),
    }
    return render(request, "portals/dashboard/governance/decision_detail.html", context)
