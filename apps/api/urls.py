"""API v1 routes: the shared ones, then those of the platform host and those of a client host."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import deployments, factory, views

app_name = "api"

# On every host.
urlpatterns = [
    path("me", views.MeApi.as_view(), name="me"),
    path("activity", views.ActivityListApi.as_view(), name="activity"),
    path("auth/token", views.TokenObtainApi.as_view(), name="token"),
]

# The platform host: the factory, and each client's deployments as its partner team or the vendor sees them.
platform_urlpatterns = [
    *urlpatterns,
    path("variants", factory.VariantListApi.as_view(), name="variant_list"),
    path("variants/<slug:key>/versions", factory.VersionListApi.as_view(), name="version_list"),
    path(
        "variants/<slug:key>/versions/<str:version>",
        factory.VersionDetailApi.as_view(),
        name="version_detail",
    ),
    path("variants/<slug:key>/diff", factory.VersionDiffApi.as_view(), name="version_diff"),
    path(
        "clients/<int:client_id>/deployments",
        deployments.ClientDeploymentListCreateApi.as_view(),
        name="client_deployment_list",
    ),
    path(
        "clients/<int:client_id>/deployments/<int:pk>",
        deployments.ClientDeploymentDetailApi.as_view(),
        name="client_deployment_detail",
    ),
    path(
        "clients/<int:client_id>/deployments/<int:pk>/transitions",
        deployments.ClientDeploymentTransitionApi.as_view(),
        name="client_deployment_transition",
    ),
]

# A client's host: that client's own deployments.
client_urlpatterns = [
    *urlpatterns,
    path("deployments", deployments.DeploymentListApi.as_view(), name="deployment_list"),
    path("deployments/<int:pk>", deployments.DeploymentDetailApi.as_view(), name="deployment_detail"),
    path(
        "deployments/<int:pk>/transitions",
        deployments.DeploymentTransitionApi.as_view(),
        name="deployment_transition",
    ),
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
