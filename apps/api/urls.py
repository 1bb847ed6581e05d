from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

app_name = "api"

urlpatterns = [
    path("me", views.MeApi.as_view(), name="me"),
    path("activity", views.ActivityListApi.as_view(), name="activity"),
    path("auth/token", views.TokenObtainApi.as_view(), name="token"),
]


def schema_urlpatterns(urlconf: str) -> list:
    """OpenAPI schema and browsable docs for the API of one URL conf (platform or client host)."""
    # Swagger UI sets inline styles; the relaxation applies to the docs page only.
    docs = csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="api-schema")
    )
    return [
        path("api/schema/", SpectacularAPIView.as_view(urlconf=urlconf), name="api-schema"),
        path("api/docs/", docs, name="api-docs"),
    ]
