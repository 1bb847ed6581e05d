"""Management portal: a deployment's LLM endpoint (the OpenAI-compatible API its LLM planner calls).

Partner admins and the engineers assigned to the client set it; `access_client` answers 404 for anyone
else (another partner's team, an unassigned engineer). The API key is write-only: it is stored
encrypted, never put back into a page, and an empty key field keeps the stored key. Without an
endpoint the agent runs its workflows only.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.accounts.decorators import partner_portal
from apps.core.exceptions import ApplicationError
from apps.deployments import selectors as deployment_selectors
from apps.deployments.models import Deployment
from apps.runtime import settings_services
from apps.tenancy.models import Client

from .llm_forms import LlmEndpointForm
from .views import PartnerRequest, _deployment_crumbs, _render, _workspace_client

TEMPLATES = "portals/management/llm"


def _deployment(request: PartnerRequest, pk: int, deployment_id: int) -> tuple[Client, Deployment]:
    client = _workspace_client(request, pk)
    return client, deployment_selectors.deployment_get(client=client, pk=deployment_id)


def _crumbs(client: Client, deployment: Deployment, *trail: tuple[str, str | None]) -> list:
    detail_url = reverse("management:deployment_detail", args=[client.pk, deployment.pk])
    return _deployment_crumbs(client, (deployment.name, detail_url), *trail)


def _no_store(response: HttpResponse) -> HttpResponse:
    # A page with a key field: never cached, so a typed key cannot come back from the history.
    response["Cache-Control"] = "no-store"
    return response


@partner_portal()
@require_http_methods(["GET", "POST"])
def llm_endpoint_edit(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Set or change the deployment's LLM endpoint and its per-task budgets."""
    client, deployment = _deployment(request, pk, deployment_id)
    endpoint = settings_services.llm_endpoint_get(client=client, deployment=deployment)
    form = LlmEndpointForm(request.POST if request.method == "POST" else None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            settings_services.llm_endpoint_save(
                client=client, deployment=deployment, actor=request.user, **form.cleaned_data
            )
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"The LLM endpoint of “{deployment.name}” is saved.")
            return redirect("management:llm_endpoint", pk=client.pk, deployment_id=deployment.pk)
    context = {
        "client": client,
        "deployment": deployment,
        "endpoint": endpoint,
        "form": form,
        "retired": deployment.status == Deployment.Status.RETIRED,
        "crumbs": _crumbs(client, deployment, ("LLM endpoint", None)),
    }
    return _no_store(_render(request, f"{TEMPLATES}/endpoint_form.html", context))


@partner_portal()
@require_http_methods(["GET", "POST"])
def llm_endpoint_delete(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Remove the endpoint (and its key), after a confirmation page: the agent runs workflows only."""
    client, deployment = _deployment(request, pk, deployment_id)
    endpoint_url = reverse("management:llm_endpoint", args=[client.pk, deployment.pk])
    if request.method == "POST":
        try:
            settings_services.llm_endpoint_delete(client=client, deployment=deployment, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The LLM endpoint of “{deployment.name}” is removed.")
        return redirect(endpoint_url)
    endpoint = settings_services.llm_endpoint_get(client=client, deployment=deployment)
    if endpoint is None:
        messages.info(request, f"“{deployment.name}” has no LLM endpoint.")
        return redirect(endpoint_url)
    context = {
        "client": client,
        "deployment": deployment,
        "endpoint": endpoint,
        "endpoint_url": endpoint_url,
        "crumbs": _crumbs(client, deployment, ("LLM endpoint", endpoint_url), ("Remove", None)),
    }
    return _render(request, f"{TEMPLATES}/endpoint_delete.html", context)
