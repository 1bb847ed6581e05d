"""URLs of a client's host: its dashboard, its API, sign-in."""

from django.urls import include, path

from apps.api.urls import client_urlpatterns, schema_urlpatterns

urlpatterns = [
    path("accounts/", include("apps.accounts.urls")),
    path("api/v1/", include((client_urlpatterns, "api"))),
    *schema_urlpatterns("config.urls_tenant"),
    path("", include("apps.portals.dashboard.urls")),
]
