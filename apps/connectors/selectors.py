"""Reads for data sources and field mappings (client schemas).

Each selector takes the client, switches into its schema and returns evaluated
objects marked with the schema they came from, so a service handed an object of
one client together with another client refuses it. Callers check the actor's
access to the client first (apps.accounts.access).
"""

from __future__ import annotations

from django.db.models import Count
from django.http import Http404
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment
from apps.deployments.selectors import SCHEMA_ATTR
from apps.tenancy.models import Client

from .models import DataSource, FieldMapping

__all__ = ["data_source_get", "data_source_list", "field_mapping_for", "field_mapping_list"]


def _mark(obj, client: Client):
    setattr(obj, SCHEMA_ATTR, client.schema_name)
    return obj


def data_source_list(*, client: Client) -> list[DataSource]:
    """The client's data sources by name, each with `mapping_count` (how many deployments use it)."""
    with tenant_context(client):
        sources = list(DataSource.objects.annotate(mapping_count=Count("mappings")).order_by("name", "pk"))
    return [_mark(source, client) for source in sources]


def data_source_get(*, client: Client, pk: int | str) -> DataSource:
    """One data source of the client; Http404 when it does not exist there."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such data source.") from None
    with tenant_context(client):
        source = DataSource.objects.annotate(mapping_count=Count("mappings")).filter(pk=number).first()
    if source is None:
        raise Http404("No such data source.")
    return _mark(source, client)


def field_mapping_for(deployment: Deployment, *, client: Client | None = None) -> FieldMapping | None:
    """The deployment's field mapping (with its data source), or None; in `client`'s schema when given,
    otherwise in the current one."""
    if client is None:
        return FieldMapping.objects.select_related("data_source").filter(deployment_id=deployment.pk).first()
    with tenant_context(client):
        mapping = (
            FieldMapping.objects.select_related("data_source").filter(deployment_id=deployment.pk).first()
        )
    return None if mapping is None else _mark(mapping, client)


def field_mapping_list(*, client: Client) -> dict[int, FieldMapping]:
    """The client's field mappings by deployment id, with their data sources."""
    with tenant_context(client):
        mappings = list(FieldMapping.objects.select_related("data_source", "updated_by"))
    return {mapping.deployment_id: _mark(mapping, client) for mapping in mappings}
