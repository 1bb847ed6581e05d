"""URLs of the platform host: super-admin and management portals, Django admin, API, sign-in."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.api.urls import platform_urlpatterns, schema_urlpatterns

admin.site.site_header = "Triplane support"
admin.site.site_title = "Triplane support"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:after_login", permanent=False)),
    path("accounts/", include("apps.accounts.urls")),
    path("vendor/", include("apps.portals.superadmin.urls")),
    path("partner/", include("apps.portals.management.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((platform_urlpatterns, "api"))),
    *schema_urlpatterns("config.urls_public"),
]
