"""Host-based routing: the platform host is the public schema, every other host is one client."""

from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from apps.core.db import tenant_connection

from .models import Client


class TenantRequest(HttpRequest):
    """A request past `TenantHostMiddleware`: `tenant` is the host's client, None on the platform host."""

    tenant: Client | None


class TenantHostMiddleware(TenantMainMiddleware):
    """Routes `PLATFORM_DOMAIN` to the vendor/partner portals and client hosts to their schema.

    Unknown hosts get a 404 (never the public site), and a client whose schema is
    not ready answers 503 with a plain explanation instead of touching its schema.
    """

    def process_request(self, request: TenantRequest) -> HttpResponse | None:
        tenant_connection().set_schema_to_public()
        hostname = self.hostname_from_request(request)
        if hostname == settings.PLATFORM_DOMAIN:
            request.tenant = None
            self.setup_url_routing(request, force_public=True)
            return None
        response = super().process_request(request)
        if response is not None:
            return response
        # A host that reached here is a known client's: TenantMainMiddleware set it (or raised 404).
        client = cast(Client, request.tenant)
        if client.status != Client.Status.READY:
            tenant_connection().set_schema_to_public()
            return render(request, "tenancy/client_unavailable.html", {"client": client}, status=503)
        return None
