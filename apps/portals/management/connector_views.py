"""Management portal, a client's data: data sources (connection settings, connection test) and the field
mapping of each deployment onto one of them.

Partner engineers of the client do this, like its governance. Every view resolves the client with
`_workspace_client` (404 outside the actor's scope, or before the client's schema exists); the
connector services and selectors switch into the client's schema themselves. A data source's password
is never sent back to the browser.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import partner_portal
from apps.connectors import selectors, services
from apps.connectors.mapping import MappingError, starter_yaml
from apps.connectors.models import DataSource
from apps.core.exceptions import ApplicationError
from apps.deployments import selectors as deployment_selectors
from apps.deployments.models import Deployment
from apps.tenancy.models import Client

from .connector_forms import DataSourceForm, FieldMappingForm
from .views import PartnerRequest, _crumbs, _render, _workspace_client

TEMPLATES = "portals/management/connectors"


def _list_url(client: Client) -> str:
    return reverse("management:client_data_sources", args=[client.pk])


def _crumbs_for(client: Client, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    data = (("Data sources", _list_url(client)),) if trail else (("Data sources", None),)
    return _crumbs((client.name, reverse("management:client_detail", args=[client.pk])), *data, *trail)


# --- Data sources -----------------------------------------------------------------------------------


@partner_portal()
@require_safe
def data_source_list(request: PartnerRequest, pk: int) -> HttpResponse:
    """The client's data sources with their last connection test, and each deployment's mapping."""
    client = _workspace_client(request, pk)
    mappings = selectors.field_mapping_list(client=client)
    deployments = [
        {"deployment": deployment, "mapping": mappings.get(deployment.pk)}
        for deployment in deployment_selectors.deployment_list(client=client)
        if deployment.status != Deployment.Status.RETIRED or deployment.pk in mappings
    ]
    context = {
        "client": client,
        "sources": selectors.data_source_list(client=client),
        "deployments": deployments,
        "crumbs": _crumbs_for(client),
    }
    return _render(request, f"{TEMPLATES}/data_source_list.html", context)


def _source_form(request: PartnerRequest, client: Client, source: DataSource | None) -> HttpResponse:
    form = DataSourceForm(request.POST if request.method == "POST" else None, source=source)
    if request.method == "POST" and form.is_valid():
        try:
            if source is None:
                saved = services.data_source_create(
                    client=client,
                    **form.settings(),
                    password=form.cleaned_data["password"],
                    actor=request.user,
                )
            else:
                saved = services.data_source_update(
                    client=client,
                    source=source,
                    **form.settings(),
                    password=form.cleaned_data["password"],
                    clear_password=bool(form.cleaned_data.get("clear_password")),
                    actor=request.user,
                )
        except (ValidationError, ApplicationError) as error:
            form.add_service_error(error)
        else:
            verb = "updated" if source else "added"
            messages.success(
                request, f"Data source “{saved.name}” {verb}. Test its connection from the list."
            )
            return redirect(_list_url(client))
    title = f"Edit {source.name}" if source else "New data source"
    context = {
        "client": client,
        "form": form,
        "source": source,
        "title": title,
        "crumbs": _crumbs_for(client, (title, None)),
    }
    return _render(request, f"{TEMPLATES}/data_source_form.html", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def data_source_create(request: PartnerRequest, pk: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    return _source_form(request, client, None)


@partner_portal()
@require_http_methods(["GET", "POST"])
def data_source_edit(request: PartnerRequest, pk: int, source_id: int) -> HttpResponse:
    client = _workspace_client(request, pk)
    source = selectors.data_source_get(client=client, pk=source_id)
    return _source_form(request, client, source)


@partner_portal()
@require_http_methods(["GET", "POST"])
def data_source_delete(request: PartnerRequest, pk: int, source_id: int) -> HttpResponse:
    """Confirm, then remove a data source; refused while a deployment's mapping uses it."""
    client = _workspace_client(request, pk)
    source = selectors.data_source_get(client=client, pk=source_id)
    if request.method == "POST":
        try:
            services.data_source_delete(client=client, source=source, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Data source “{source.name}” removed.")
        return redirect(_list_url(client))
    context = {
        "client": client,
        "source": source,
        "cancel_url": _list_url(client),
        "crumbs": _crumbs_for(client, (f"Delete {source.name}", None)),
    }
    return _render(request, f"{TEMPLATES}/data_source_delete.html", context)


@partner_portal()
@require_POST
def data_source_test(request: PartnerRequest, pk: int, source_id: int) -> HttpResponse:
    """“Test connection”: connect, read the mapped tables, and say what went wrong if anything did.

    htmx swaps in the source's test result; without htmx the answer is a message on the list.
    """
    client = _workspace_client(request, pk)
    source = selectors.data_source_get(client=client, pk=source_id)
    ok, message = services.data_source_test(client=client, source=source)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted:
        source = selectors.data_source_get(client=client, pk=source_id)
        context = {"client": client, "source": source, "just_tested": True}
        return _render(request, f"{TEMPLATES}/data_source_list.html#test-result", context)
    (messages.success if ok else messages.error)(request, f"{source.name}: {message}")
    return redirect(_list_url(client))


# --- Field mappings -----------------------------------------------------------------------------------


@partner_portal()
@require_http_methods(["GET", "POST"])
def field_mapping_edit(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """The mapping editor of one deployment: pick the data source, type the YAML, see errors by line."""
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    mapping = selectors.field_mapping_for(deployment, client=client)
    sources = selectors.data_source_list(client=client)
    data = (deployment.version.spec or {}).get("data") or []
    errors: list[dict] = []
    if request.method == "POST":
        form = FieldMappingForm(request.POST, sources=sources)
        if form.is_valid():
            try:
                mapping = services.field_mapping_save(
                    client=client,
                    deployment=deployment,
                    data_source=form.chosen_source(),
                    yaml_text=form.cleaned_data["yaml"],
                    actor=request.user,
                )
            except MappingError as error:
                errors = error.errors
                form.add_error("yaml", "The mapping has errors; see the list below it.")
            except ApplicationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, f"The field mapping of {deployment.name} is saved.")
                return redirect("management:client_field_mapping", pk=client.pk, deployment_id=deployment.pk)
    else:
        initial = {
            "yaml": mapping.yaml if mapping else starter_yaml(data),
            "data_source": mapping.data_source_id
            if mapping
            else (sources[0].pk if len(sources) == 1 else None),
        }
        form = FieldMappingForm(initial=initial, sources=sources)
    context = {
        "client": client,
        "deployment": deployment,
        "mapping": mapping,
        "sources": sources,
        "form": form,
        "mapping_errors": errors,
        "entities": _entity_rows(mapping.spec, data) if mapping else [],
        "data": data,
        "crumbs": _crumbs_for(client, (f"Field mapping · {deployment.name}", None)),
    }
    return _render(request, f"{TEMPLATES}/mapping_form.html", context)


def _entity_rows(spec: dict, data: list[dict]) -> list[dict]:
    """The saved mapping as rows for people, in the agent's order (the stored JSON keeps no key order):
    entity, table, joins, and each field's column or its absence."""
    order = {entity.get("name"): [f.get("name") for f in entity.get("fields", [])] for entity in data}
    rows = []
    entities = spec.get("entities") or {}
    for name in sorted(entities, key=lambda n: (list(order).index(n) if n in order else len(order), n)):
        entity = entities[name]
        types = entity.get("types", {})
        fields = [{"name": "id", "column": entity["key"], "side": False, "type": types.get("id")}]
        known = order.get(name, [])
        for field in sorted(
            entity.get("fields") or {}, key=lambda f: (known.index(f) if f in known else 999, f)
        ):
            column = entity["fields"][field]
            side = bool(column and column.rpartition(".")[0] in entity.get("joins", {}))
            fields.append({"name": field, "column": column, "side": side, "type": types.get(field)})
        rows.append(
            {"name": name, "table": entity["table"], "joins": entity.get("joins", {}), "fields": fields}
        )
    return rows


@partner_portal()
@require_http_methods(["GET", "POST"])
def field_mapping_delete(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Confirm, then remove a deployment's mapping (its db tools then reach no data)."""
    client = _workspace_client(request, pk)
    deployment = deployment_selectors.deployment_get(client=client, pk=deployment_id)
    editor_url = reverse("management:client_field_mapping", args=[client.pk, deployment.pk])
    if request.method == "POST":
        try:
            services.field_mapping_delete(client=client, deployment=deployment, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect(editor_url)
        messages.success(request, f"The field mapping of {deployment.name} is removed.")
        return redirect(_list_url(client))
    context = {
        "client": client,
        "deployment": deployment,
        "cancel_url": editor_url,
        "crumbs": _crumbs_for(client, (f"Remove the mapping of {deployment.name}", None)),
    }
    return _render(request, f"{TEMPLATES}/mapping_delete.html", context)
