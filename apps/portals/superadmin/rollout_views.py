"""Super-admin portal, rollouts: move every deployment of a variant to a version, client by client."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.access import client_list
from apps.accounts.decorators import vendor_portal
from apps.core.exceptions import ApplicationError
from apps.core.htmx import render_page
from apps.core.pagination import paginate
from apps.deployments import selectors as deployment_selectors
from apps.deployments import services as deployment_services
from apps.factory import selectors as factory_selectors
from apps.factory.models import AgentVersion, Rollout
from apps.tenancy.models import Client

from .forms import RolloutForm
from .views import VendorRequest

# While a rollout is in one of these states its detail page polls for new results.
ACTIVE = {Rollout.Status.PENDING, Rollout.Status.RUNNING, Rollout.Status.REVERTING}


def _crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Rollouts", reverse("superadmin:rollout_list")), *trail]


@vendor_portal
@require_safe
def rollout_list(request: VendorRequest) -> HttpResponse:
    page_obj = paginate(request, deployment_selectors.rollout_list())
    return render(request, "portals/superadmin/rollout_list.html", {"page_obj": page_obj})


@vendor_portal
@require_http_methods(["GET", "POST"])
def rollout_create(request: VendorRequest) -> HttpResponse:
    """Pick a variant, a published target version and optionally canary clients."""
    data = request.POST if request.method == "POST" else None
    chosen = (data or request.GET).get("variant")
    versions = AgentVersion.objects.filter(status=AgentVersion.Status.PUBLISHED).select_related("variant")
    if chosen and chosen.isdigit():
        versions = versions.filter(variant_id=int(chosen))
    form = RolloutForm(
        data,
        initial={"variant": chosen},
        variants=factory_selectors.variant_list(),
        versions=versions.order_by("variant__key", "-major", "-minor", "-patch"),
        clients=client_list(actor=request.user).filter(status=Client.Status.READY).order_by("name"),
    )
    if request.method == "POST" and form.is_valid():
        chosen_clients = form.cleaned_data["clients"]
        try:
            rollout = deployment_services.rollout_create(
                variant=form.cleaned_data["variant"],
                target_version=form.cleaned_data["target_version"],
                # No client chosen: every client; otherwise a canary limited to those.
                client_ids=[client.pk for client in chosen_clients] or None,
                actor=request.user,
            )
        except ApplicationError as error:
            field = "clients" if error.field == "client_ids" else error.field
            form.add_error(field if field in form.fields else None, error.message)
        else:
            messages.success(
                request, f"Rollout of {rollout.variant.key} to {rollout.target_version.version} started."
            )
            return redirect("superadmin:rollout_detail", pk=rollout.pk)
    context = {"form": form, "crumbs": _crumbs(("New rollout", None))}
    # Changing the variant re-renders only the target version field (htmx), limited to its versions.
    return render_page(request, "portals/superadmin/rollout_form.html", context, partial="target_version")


@vendor_portal
@require_safe
def rollout_detail(request: VendorRequest, pk: int) -> HttpResponse:
    """The rollout and its per-client results; the results block polls while the rollout is active."""
    rollout = deployment_selectors.rollout_get(pk=pk)
    context = {
        "rollout": rollout,
        "targets": deployment_selectors.rollout_targets(rollout=rollout),
        "active": rollout.status in ACTIVE,
        "crumbs": _crumbs((f"#{rollout.pk}", None)),
    }
    return render_page(request, "portals/superadmin/rollout_detail.html", context, partial="results")


@vendor_portal
@require_http_methods(["GET", "POST"])
def rollout_revert(request: VendorRequest, pk: int) -> HttpResponse:
    """Return every deployment the rollout moved to the version it had before."""
    rollout = deployment_selectors.rollout_get(pk=pk)
    if request.method == "POST":
        try:
            deployment_services.rollout_revert(rollout=rollout, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, "Reverting the rollout: each moved deployment returns to its previous version."
            )
        return redirect("superadmin:rollout_detail", pk=rollout.pk)
    context = {"rollout": rollout, "crumbs": _crumbs((f"#{rollout.pk}", None), ("Revert", None))}
    return render(request, "portals/superadmin/rollout_revert.html", context)


@vendor_portal
@require_POST
def rollout_resume(request: VendorRequest, pk: int) -> HttpResponse:
    """Schedule an unfinished rollout (or revert) again, e.g. after its worker was lost."""
    rollout = deployment_selectors.rollout_get(pk=pk)
    try:
        deployment_services.rollout_resume(rollout=rollout, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Rollout #{rollout.pk} was scheduled again; the results update below.")
    return redirect("superadmin:rollout_detail", pk=rollout.pk)
