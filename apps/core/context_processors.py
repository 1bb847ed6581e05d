"""Template context available on every page."""

from django.conf import settings
from django.http import HttpRequest

from .db import tenant_connection


def platform(request: HttpRequest) -> dict:
    """The platform domain and whether this request is on a client's host."""
    tenant = getattr(request, "tenant", None)
    on_client_host = tenant is not None and getattr(tenant, "schema_name", "public") != "public"
    return {
        "PLATFORM_DOMAIN": settings.PLATFORM_DOMAIN,
        "current_client": tenant if on_client_host else None,
        "schema_name": tenant_connection().schema_name,
    }
