"""API v1 routes: the shared ones, then those of the platform host and those of a client host."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import audit, deployments, factory, governance, runtime, views

app_name = "api"

# On every host.
urlpatterns = [
    path("me", views.MeApi.as_view(), name="me"),
    path("activity", views.ActivityListApi.as_view(), name="activity"),
    path("auth/token", views.TokenObtainApi.as_view(), name="token"),
]

# A client's governance, served on both hosts by the same views: under `clients/<client_id>/governance/` on
# the platform host (the vendor reads, the client's partner team writes partner rules) and under
# `governance/` on the client's own host (its members read, its admins write client rules).
governance_routes = [
    ("ruleset", governance.RulesetApi.as_view(), "ruleset"),
    ("versions", governance.RulesetVersionListApi.as_view(), "version_list"),
    ("versions/<int:number>", governance.RulesetVersionDetailApi.as_view(), "version_detail"),
    ("rules", governance.RuleListCreateApi.as_view(), "rule_list"),
    ("rules/<slug:key>", governance.RuleDetailApi.as_view(), "rule_detail"),
    ("publish", governance.RulesetPublishApi.as_view(), "publish"),
    ("test-cases", governance.RuleTestCaseListCreateApi.as_view(), "test_case_list"),
    ("test-cases/<int:pk>", governance.RuleTestCaseDetailApi.as_view(), "test_case_detail"),
    ("replay", governance.RulesetReplayApi.as_view(), "replay"),
    ("shadow-report", governance.ShadowReportApi.as_view(), "shadow_report"),
    ("decisions", governance.DecisionListApi.as_view(), "decision_list"),
    ("decisions/<int:pk>", governance.DecisionDetailApi.as_view(), "decision_detail"),
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
    *[
        path(f"clients/<int:client_id>/governance/{route}", view, name=f"client_governance_{name}")
        for route, view, name in governance_routes
    ],
    path(
        "clients/<int:client_id>/governance/rollback",
        governance.RulesetRollbackApi.as_view(),
        name="client_governance_rollback",
    ),
    path(
        "clients/<int:client_id>/deployments/<int:deployment_id>/evaluation-keys",
        governance.EvaluationKeyListCreateApi.as_view(),
        name="client_deployment_evaluation_keys",
    ),
    path(
        "clients/<int:client_id>/deployments/<int:deployment_id>/evaluation-keys/<int:pk>/revoke",
        governance.EvaluationKeyRevokeApi.as_view(),
        name="client_deployment_evaluation_key_revoke",
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
    # An execution plane outside the control plane asks for decisions with an evaluation key.
    path("governance/evaluate", governance.DecisionEvaluateApi.as_view(), name="governance_evaluate"),
    *[
        path(f"governance/{route}", view, name=f"governance_{name}")
        for route, view, name in governance_routes
    ],
    # The governed runtime: tasks with their traces, approvals of held actions.
    path("tasks", runtime.TaskListCreateApi.as_view(), name="task_list"),
    path("tasks/<int:pk>", runtime.TaskDetailApi.as_view(), name="task_detail"),
    path("approvals", runtime.ApprovalListApi.as_view(), name="approval_list"),
    path("approvals/<int:pk>/approve", runtime.ApprovalApproveApi.as_view(), name="approval_approve"),
    path("approvals/<int:pk>/reject", runtime.ApprovalRejectApi.as_view(), name="approval_reject"),
    # The client's audit trail: its events, their export, the chain check.
    path("audit/events", audit.AuditEventListApi.as_view(), name="audit_event_list"),
    path("audit/export", audit.AuditExportApi.as_view(), name="audit_export"),
    path("audit/verify", audit.AuditVerifyApi.as_view(), name="audit_verify"),
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
