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
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from apps.tenancy.selectors import client_activity

from .forms import ClientSettingsForm, ClientUserInviteForm, ClientUserRoleForm, DeploymentDecisionForm

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
