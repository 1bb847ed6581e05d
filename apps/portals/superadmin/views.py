"""Super-admin portal (vendor): partners, partner admin invitations, every client's status and deployments.

The Agent Factory pages are in `factory_views`, rollouts in `rollout_views`.
"""

from collections.abc import Callable

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import services as account_services
from apps.accounts.access import access_client, access_partner, client_list, partner_list
from apps.accounts.decorators import vendor_portal
from apps.accounts.models import PartnerRole, User
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.deployments.selectors import deployment_actions, deployment_get, deployment_list
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from apps.tenancy.selectors import client_history, partner_history

from .forms import ClientFilterForm, DeploymentDecisionForm, InviteForm, PartnerEditForm, PartnerForm


class VendorRequest(HttpRequest):
    """A request that passed `@vendor_portal`: a signed-in vendor platform admin."""

    user: User


@vendor_portal
def home(request: VendorRequest) -> HttpResponse:
    partners = partner_list(actor=request.user)
    clients = client_list(actor=request.user)
    by_status = dict(clients.values_list("status").annotate(n=Count("pk")).order_by())
    context = {
        "partner_count": partners.count(),
        "active_partner_count": partners.filter(is_active=True).count(),
        "client_count": clients.count(),
        "by_status": {status: by_status.get(status, 0) for status in Client.Status.values},
        "recent_clients": clients.order_by("-created_at")[:5],
    }
    return render(request, "portals/superadmin/home.html", context)


@vendor_portal
def partner_list_view(request: VendorRequest) -> HttpResponse:
    partners = (
        partner_list(actor=request.user)
        .annotate(
            client_count=Count("clients", distinct=True), member_count=Count("memberships", distinct=True)
        )
        .order_by("name")
    )
    query = request.GET.get("q", "").strip()
    if query:
        partners = partners.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    return render(
        request, "portals/superadmin/partner_list.html", {"page_obj": paginate(request, partners), "q": query}
    )


@vendor_portal
@require_http_methods(["GET", "POST"])
def partner_create(request: VendorRequest) -> HttpResponse:
    form = PartnerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        partner = tenancy_services.partner_create(**form.cleaned_data, actor=request.user)
        messages.success(request, f"Partner “{partner.name}” created. Invite its first admin next.")
        return redirect("superadmin:partner_invite_admin", pk=partner.pk)
    return render(request, "portals/superadmin/partner_form.html", {"form": form, "partner": None})


@vendor_portal
def partner_detail(request: VendorRequest, pk: int) -> HttpResponse:
    partner = access_partner(request.user, pk)
    context = {
        "partner": partner,
        "members": partner.memberships.select_related("user").order_by("role", "user__email"),
        "clients": partner.clients.order_by("name"),
        "history": partner_history(partner=partner),
    }
    return render(request, "portals/superadmin/partner_detail.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def partner_edit(request: VendorRequest, pk: int) -> HttpResponse:
    partner = access_partner(request.user, pk)
    form = PartnerEditForm(request.POST if request.method == "POST" else None, instance=partner)
    if request.method == "POST" and form.is_valid():
        tenancy_services.partner_update(partner=partner, **form.cleaned_data, actor=request.user)
        messages.success(request, "Partner updated.")
        return redirect("superadmin:partner_detail", pk=partner.pk)
    return render(request, "portals/superadmin/partner_form.html", {"form": form, "partner": partner})


@vendor_portal
@require_http_methods(["GET", "POST"])
def partner_deactivate(request: VendorRequest, pk: int) -> HttpResponse:
    partner = access_partner(request.user, pk)
    if request.method == "POST":
        tenancy_services.partner_set_active(partner=partner, is_active=False, actor=request.user)
        messages.success(
            request, f"“{partner.name}” is deactivated; its team can no longer sign in to the portal."
        )
        return redirect("superadmin:partner_detail", pk=partner.pk)
    return render(request, "portals/superadmin/partner_deactivate.html", {"partner": partner})


@vendor_portal
@require_POST
def partner_activate(request: VendorRequest, pk: int) -> HttpResponse:
    partner = access_partner(request.user, pk)
    tenancy_services.partner_set_active(partner=partner, is_active=True, actor=request.user)
    messages.success(request, f"“{partner.name}” is active again.")
    return redirect("superadmin:partner_detail", pk=partner.pk)


@vendor_portal
@require_http_methods(["GET", "POST"])
def partner_invite_admin(request: VendorRequest, pk: int) -> HttpResponse:
    partner = access_partner(request.user, pk)
    form = InviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = account_services.partner_member_invite(
                partner=partner,
                **form.cleaned_data,
                role=PartnerRole.PARTNER_ADMIN,
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Invitation sent to {membership.user.email}.")
            return redirect("superadmin:partner_detail", pk=partner.pk)
    return render(request, "portals/superadmin/partner_invite.html", {"form": form, "partner": partner})


@vendor_portal
def client_list_view(request: VendorRequest) -> HttpResponse:
    form = ClientFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    filters = {key: (value.pk if hasattr(value, "pk") else value) for key, value in filters.items() if value}
    clients = client_list(actor=request.user, filters=filters).order_by("partner__name", "name")
    return render(
        request, "portals/superadmin/client_list.html", {"page_obj": paginate(request, clients), "form": form}
    )


@vendor_portal
def client_detail(request: VendorRequest, pk: int) -> HttpResponse:
    client = access_client(request.user, pk)
    context = {
        "client": client,
        "members": client.memberships.select_related("user").order_by("role", "user__email"),
        "history": client_history(client=client, include_client_log=False),
        "partner_url": reverse("superadmin:partner_detail", args=[client.partner_id]),
        "deployments": [
            (deployment, deployment_actions(deployment=deployment))
            for deployment in (deployment_list(client=client) if client.is_ready else [])
        ],
    }
    return render(request, "portals/superadmin/client_detail.html", context)


# A decision on a deployment: the service that carries it out, and what the flash message says.
DECISIONS: dict[str, tuple[Callable[..., Deployment], str]] = {
    "approve": (deployment_services.deployment_approve, "approved"),
    "reject": (deployment_services.deployment_reject, "rejected"),
    "approve_change": (deployment_services.deployment_approve_change, "version change approved"),
    "reject_change": (deployment_services.deployment_reject_change, "version change rejected"),
}


@vendor_portal
@require_POST
def client_deployment_decide(request: VendorRequest, pk: int, deployment_id: int) -> HttpResponse:
    """The vendor approves or rejects a submitted deployment, or a pending version change, of a client."""
    client = access_client(request.user, pk)
    deployment = deployment_get(client=client, pk=deployment_id)
    form = DeploymentDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for errors in form.errors.values() for error in errors))
        return redirect("superadmin:client_detail", pk=client.pk)
    service, done = DECISIONS[form.cleaned_data["decision"]]
    try:
        service(client=client, deployment=deployment, actor=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"“{deployment.name}”: {done}.")
    return redirect("superadmin:client_detail", pk=client.pk)
