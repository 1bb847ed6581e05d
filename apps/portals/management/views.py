"""Management portal (partner teams): client projects, engineers, provisioning, deployments, the team."""

from typing import NamedTuple

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts import services as account_services
from apps.accounts.access import (
    access_client,
    access_partner_member,
    client_engineers,
    client_list,
    client_member_list,
    partner_member_list,
)
from apps.accounts.decorators import partner_portal
from apps.accounts.models import PartnerMembership, PartnerRole, User
from apps.core.exceptions import ApplicationError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.pagination import paginate
from apps.deployments import selectors as deployment_selectors
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory import selectors as factory_selectors
from apps.factory.diff import spec_diff
from apps.factory.models import AgentVariant, AgentVersion
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from apps.tenancy.selectors import client_history

from .forms import (
    ClientCreateForm,
    DeploymentCreateForm,
    DeploymentEditForm,
    EngineerAssignmentForm,
    MemberInviteForm,
    VersionChangeForm,
)

ADMIN_ONLY = [PartnerRole.PARTNER_ADMIN]


class PartnerRequest(HttpRequest):
    """A request that passed `@partner_portal`: a signed-in member of an active partner."""

    user: User
    partner_membership: PartnerMembership


def _render(
    request: PartnerRequest, template: str, context: dict, *, status: int = 200, partial: str | None = None
) -> HttpResponse:
    """Render with what every management page shows: the partner and whether the user is its admin.

    With `partial`, a non-boosted htmx request gets only that fragment of the page.
    """
    membership = request.partner_membership
    context = {
        "partner": membership.partner,
        "is_partner_admin": membership.role == PartnerRole.PARTNER_ADMIN,
        **context,
    }
    return render_page(request, template, context, status=status, partial=partial)


def _crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Client projects", reverse("management:home")), *trail]


def _client_url(request: PartnerRequest, client: Client) -> str:
    """The client dashboard's address, on the scheme and port this portal is served on."""
    scheme, port = request.scheme or "http", request.get_port()
    suffix = "" if port == {"http": "80", "https": "443"}.get(scheme) else f":{port}"
    return f"{scheme}://{client.primary_host}{suffix}/"


# --- Client projects --------------------------------------------------------


@partner_portal()
@require_safe
def home(request: PartnerRequest) -> HttpResponse:
    clients = client_list(actor=request.user).order_by("name")
    return _render(request, "portals/management/client_list.html", {"page_obj": paginate(request, clients)})


@partner_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def client_create(request: PartnerRequest) -> HttpResponse:
    form = ClientCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            client = tenancy_services.client_create(
                partner=request.partner_membership.partner, **form.cleaned_data, actor=request.user
            )
        except (ValidationError, ApplicationError) as error:
            form.add_service_error(error)
        else:
            messages.success(
                request, f"“{client.name}” is being provisioned; this page updates when it is ready."
            )
            return redirect("management:client_detail", pk=client.pk)
    crumbs = _crumbs(("New client project", None))
    return _render(request, "portals/management/client_form.html", {"form": form, "crumbs": crumbs})


@partner_portal()
@require_safe
def client_detail(request: PartnerRequest, pk: int) -> HttpResponse:
    client = access_client(request.user, pk)
    context = {
        "client": client,
        "client_url": _client_url(request, client),
        "engineers": client_engineers(client=client),
        "members": client_member_list(client=client).order_by("role", "user__email"),
        "history": client_history(client=client, include_client_log=True),
        # Deployments live in the client's schema, which exists once provisioning is done.
        "deployments": (
            deployment_selectors.deployment_list(client=client)
            if client.status == Client.Status.READY
            else None
        ),
        "crumbs": _crumbs((client.name, None)),
    }
    return _render(request, "portals/management/client_detail.html", context)


@partner_portal()
@require_safe
def client_status(request: PartnerRequest, pk: int) -> HttpResponse:
    """The status block of the client page alone: polled by htmx while the client is provisioning."""
    client = access_client(request.user, pk)
    return _render(
        request,
        "portals/management/client_detail.html#status",
        {"client": client, "client_url": _client_url(request, client)},
    )


@partner_portal(roles=ADMIN_ONLY)
@require_POST
def client_retry(request: PartnerRequest, pk: int) -> HttpResponse:
    client = access_client(request.user, pk)
    try:
        tenancy_services.client_retry_provisioning(client=client, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Provisioning of “{client.name}” started again.")
    return redirect("management:client_detail", pk=client.pk)


@partner_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def client_engineers_view(request: PartnerRequest, pk: int) -> HttpResponse:
    client = access_client(request.user, pk)
    engineers = User.objects.filter(
        partner_membership__in=partner_member_list(actor=request.user).filter(
            role=PartnerRole.PARTNER_ENGINEER
        )
    ).order_by("email")
    assigned = set(client_engineers(client=client))
    form = EngineerAssignmentForm(
        request.POST if request.method == "POST" else None,
        engineers=engineers,
        initial={"engineers": list(assigned)},
    )
    if request.method == "POST" and form.is_valid():
        chosen = set(form.cleaned_data["engineers"])
        # All or nothing: a half-applied assignment would leave access nobody asked for.
        with transaction.atomic():
            for user in sorted(chosen - assigned, key=lambda u: u.pk):
                account_services.client_engineer_assign(client=client, user=user, actor=request.user)
            for user in sorted(assigned - chosen, key=lambda u: u.pk):
                account_services.client_engineer_unassign(client=client, user=user, actor=request.user)
        messages.success(request, f"Engineers of “{client.name}” updated.")
        return redirect("management:client_detail", pk=client.pk)
    context = {
        "client": client,
        "form": form,
        "has_engineers": engineers.exists(),
        "crumbs": _crumbs(
            (client.name, reverse("management:client_detail", args=[client.pk])), ("Engineers", None)
        ),
    }
    return _render(request, "portals/management/client_engineers_form.html", context)


# --- Partner team -----------------------------------------------------------


@partner_portal()
@require_safe
def team(request: PartnerRequest) -> HttpResponse:
    members = partner_member_list(actor=request.user).order_by("user__email")
    return _render(request, "portals/management/member_list.html", {"page_obj": paginate(request, members)})


@partner_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def team_invite(request: PartnerRequest) -> HttpResponse:
    form = MemberInviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = account_services.partner_member_invite(
                partner=request.partner_membership.partner,
                **form.cleaned_data,
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                f"{membership.user.email} joined the team as {membership.get_role_display().lower()}; "
                "an invitation email is on its way.",
            )
            return redirect("management:team")
    crumbs = [("Team", reverse("management:team")), ("Add a team member", None)]
    return _render(request, "portals/management/member_form.html", {"form": form, "crumbs": crumbs})


@partner_portal(roles=ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def team_remove(request: PartnerRequest, pk: int) -> HttpResponse:
    membership = access_partner_member(request.user, pk)
    if request.method == "POST":
        try:
            account_services.partner_member_remove(membership=membership, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{membership.user.email} was removed from the team.")
        return redirect("management:team")
    crumbs = [("Team", reverse("management:team")), (f"Remove {membership.user.display_name}", None)]
    return _render(
        request, "portals/management/member_remove.html", {"membership": membership, "crumbs": crumbs}
    )


# --- Deployments of a client ------------------------------------------------


class DeploymentAction(NamedTuple):
    """A lifecycle step the partner team takes from the deployment page (a `deployment_<name>` service)."""

    label: str
    done: str  # the success message, completed with the deployment's name
    button: str = "btn"


# The partner's steps; approving and rejecting are the client's (dashboard). Which of them a
# deployment offers comes from its status (deployments.selectors.deployment_actions).
DEPLOYMENT_ACTIONS: dict[str, DeploymentAction] = {
    "submit": DeploymentAction(
        "Submit for approval", "“{}” was submitted for the client's approval.", "btn btn-primary"
    ),
    "revise": DeploymentAction("Revise", "“{}” is a draft again.", "btn btn-primary"),
    "deploy": DeploymentAction("Deploy", "“{}” is deployed.", "btn btn-primary"),
    "pause": DeploymentAction("Pause", "“{}” is paused."),
    "resume": DeploymentAction("Resume", "“{}” is running again.", "btn btn-primary"),
    "retire": DeploymentAction("Retire", "“{}” was retired.", "btn btn-outline-danger"),
}


def _workspace_client(request: PartnerRequest, pk: int) -> Client:
    """The client, which must have its workspace: deployments live in the client's schema."""
    client = access_client(request.user, pk)
    if client.status != Client.Status.READY:
        raise Http404("The client's workspace is not ready.")
    return client


def _deployment_crumbs(client: Client, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(
        (client.name, reverse("management:client_detail", args=[client.pk])),
        ("Deployments", reverse("management:deployment_list", args=[client.pk])),
        *trail,
    )


def _published_versions(variant: AgentVariant) -> QuerySet[AgentVersion]:
    return factory_selectors.version_list(variant=variant).filter(status=AgentVersion.Status.PUBLISHED)


@partner_portal()
@require_safe
def deployment_list(request: PartnerRequest, pk: int) -> HttpResponse:
    client = access_client(request.user, pk)
    ready = client.status == Client.Status.READY
    deployments = deployment_selectors.deployment_list(client=client) if ready else []
    context = {
        "client": client,
        "workspace_ready": ready,
        "page_obj": paginate(request, deployments),
        "crumbs": _crumbs(
            (client.name, reverse("management:client_detail", args=[client.pk])), ("Deployments", None)
        ),
    }
    return _render(request, "portals/management/deployment_list.html", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def deployment_create(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    # Domain variants (not the base agent) with at least one published version.
    # Domain variants (the base agent is only cloned from) that have a published version.
    variants = (
        factory_selectors.variant_list()
        .filter(parent__isnull=False, versions__status=AgentVersion.Status.PUBLISHED)
        .distinct()
    )
    versions = (
        AgentVersion.objects.select_related("variant")
        .filter(variant__in=list(variants), status=AgentVersion.Status.PUBLISHED)
        .order_by("variant__key", "-major", "-minor", "-patch")
    )
    form = DeploymentCreateForm(
        request.POST if request.method == "POST" else None, variants=variants, versions=versions
    )
    if request.method == "POST" and form.is_valid():
        try:
            deployment = deployment_services.deployment_create(
                client=client, **form.cleaned_data, actor=request.user
            )
        except (ValidationError, ApplicationError) as error:
            form.add_service_error(error)
        else:
            messages.success(
                request, f"“{deployment.name}” was created as a draft; submit it when it is ready."
            )
            return redirect("management:deployment_detail", pk=client.pk, deployment_id=deployment.pk)
    context = {
        "client": client,
        "form": form,
        "has_variants": variants.exists(),
        "crumbs": _deployment_crumbs(client, ("New deployment", None)),
    }
    return _render(request, "portals/management/deployment_form.html", context)


@partner_portal()
@require_safe
def deployment_detail(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    allowed = deployment_selectors.deployment_actions(deployment=deployment)
    context = {
        "client": client,
        "deployment": deployment,
        "actions": [(name, step) for name, step in DEPLOYMENT_ACTIONS.items() if name in allowed],
        "can_change_version": "change_version" in allowed,
        "can_edit": deployment.status == Deployment.Status.DRAFT,
        "history": deployment_selectors.deployment_history(client=client, deployment=deployment),
        "crumbs": _deployment_crumbs(client, (deployment.name, None)),
    }
    return _render(request, "portals/management/deployment_detail.html", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def deployment_edit(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Change a draft's name or version (a rejected deployment, once revised, is fixed here)."""
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    detail_url = reverse("management:deployment_detail", args=[client.pk, deployment.pk])
    if deployment.status != Deployment.Status.DRAFT:
        status = deployment.get_status_display().lower()
        messages.error(
            request, f"Cannot edit “{deployment.name}”: it is {status} (only a draft deployment allows this)."
        )
        return redirect_after_post(request, detail_url)
    form = DeploymentEditForm(
        request.POST if request.method == "POST" else None,
        initial={"name": deployment.name, "version": deployment.version_id},
        versions=_published_versions(deployment.variant),
    )
    if request.method == "POST" and form.is_valid():
        try:
            deployment_services.deployment_update_draft(
                client=client, deployment=deployment, **form.cleaned_data, actor=request.user
            )
        except (ValidationError, ApplicationError) as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"“{deployment.name}” was saved; submit it when it is ready.")
            return redirect_after_post(request, detail_url)
    context = {
        "client": client,
        "deployment": deployment,
        "form": form,
        "detail_url": detail_url,
        "crumbs": _deployment_crumbs(client, (deployment.name, detail_url), ("Edit", None)),
    }
    return _render(request, "portals/management/deployment_edit_form.html", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def deployment_action(request: PartnerRequest, pk: int, deployment_id: int, action: str) -> HttpResponse:
    """One lifecycle step (POST); retiring asks for confirmation first (GET)."""
    step = DEPLOYMENT_ACTIONS.get(action)
    if step is None:
        raise Http404("No such action.")
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    detail_url = reverse("management:deployment_detail", args=[client.pk, deployment.pk])
    if request.method == "GET":
        if action != "retire":
            return HttpResponseNotAllowed(["POST"])
        context = {
            "client": client,
            "deployment": deployment,
            "detail_url": detail_url,
            "crumbs": _deployment_crumbs(client, (deployment.name, detail_url), ("Retire", None)),
        }
        return _render(request, "portals/management/deployment_retire.html", context)
    try:
        service = getattr(deployment_services, f"deployment_{action}")
        service(client=client, deployment=deployment, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, step.done.format(deployment.name))
    return redirect_after_post(request, detail_url)


@partner_portal()
@require_http_methods(["GET", "POST"])
def deployment_change_version(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Upgrade or roll back a deployed agent: choose a version, see the spec diff, then confirm."""
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    detail_url = reverse("management:deployment_detail", args=[client.pk, deployment.pk])
    versions = _published_versions(deployment.variant).exclude(pk=deployment.version_id)
    # A GET with a chosen version (the select's htmx request, or the form without JavaScript) previews it.
    data = request.POST if request.method == "POST" else (request.GET if request.GET.get("version") else None)
    form = VersionChangeForm(data, versions=versions)
    chosen = form.cleaned_data["version"] if form.is_bound and form.is_valid() else None
    if request.method == "POST" and chosen is not None and request.POST.get("confirm") == "1":
        try:
            outcome = deployment_services.deployment_change_version(
                client=client,
                deployment=deployment,
                version=chosen,
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            if outcome == "needs_approval":
                name, version = deployment.name, chosen.version
                messages.info(
                    request, f"The move of “{name}” to {version} is waiting for the client's approval."
                )
            else:
                messages.success(request, f"“{deployment.name}” moved to {chosen.version}.")
        return redirect_after_post(request, detail_url)
    context = {
        "client": client,
        "deployment": deployment,
        "form": form,
        "chosen": chosen,
        "diff": spec_diff(deployment.version.spec, chosen.spec) if chosen else None,
        "has_versions": versions.exists(),
        "detail_url": detail_url,
        "crumbs": _deployment_crumbs(client, (deployment.name, detail_url), ("Change version", None)),
    }
    return _render(request, "portals/management/deployment_version_form.html", context, partial="diff")
