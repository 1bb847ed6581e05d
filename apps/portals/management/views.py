"""Management portal (partner teams): client projects, their engineers and provisioning, the team."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
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
from apps.core.pagination import paginate
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from apps.tenancy.selectors import client_history

from .forms import ClientCreateForm, EngineerAssignmentForm, MemberInviteForm

ADMIN_ONLY = [PartnerRole.PARTNER_ADMIN]


class PartnerRequest(HttpRequest):
    """A request that passed `@partner_portal`: a signed-in member of an active partner."""

    user: User
    partner_membership: PartnerMembership


def _render(request: PartnerRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """Render with what every management page shows: the partner and whether the user is its admin."""
    membership = request.partner_membership
    context = {
        "partner": membership.partner,
        "is_partner_admin": membership.role == PartnerRole.PARTNER_ADMIN,
        **context,
    }
    return render(request, template, context, status=status)


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
