from django.urls import path

from . import client_governance_views, connector_views, governance_views, llm_views, views

app_name = "management"

urlpatterns = [
    path("", views.home, name="home"),
    path("clients/new/", views.client_create, name="client_create"),
    path("clients/<int:pk>/", views.client_detail, name="client_detail"),
    path("clients/<int:pk>/status/", views.client_status, name="client_status"),
    path("clients/<int:pk>/retry/", views.client_retry, name="client_retry"),
    path("clients/<int:pk>/engineers/", views.client_engineers_view, name="client_engineers"),
    path("clients/<int:pk>/deployments/", views.deployment_list, name="deployment_list"),
    path("clients/<int:pk>/deployments/new/", views.deployment_create, name="deployment_create"),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/",
        views.deployment_detail,
        name="deployment_detail",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/edit/",
        views.deployment_edit,
        name="deployment_edit",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/version/",
        views.deployment_change_version,
        name="deployment_change_version",
    ),
    # Client governance settings and evaluation keys (before deployment_action: its <str:action>
    # would take "evaluation-keys").
    path(
        "clients/<int:pk>/governance-settings/",
        client_governance_views.client_governance_settings,
        name="client_governance_settings",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/evaluation-keys/",
        client_governance_views.evaluation_key_list,
        name="evaluation_key_list",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/evaluation-keys/new/",
        client_governance_views.evaluation_key_create,
        name="evaluation_key_create",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/evaluation-keys/<int:key_id>/revoke/",
        client_governance_views.evaluation_key_revoke,
        name="evaluation_key_revoke",
    ),
    # A deployment's LLM endpoint (also before deployment_action, which would take "llm-endpoint").
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/llm-endpoint/",
        llm_views.llm_endpoint_edit,
        name="llm_endpoint",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/llm-endpoint/delete/",
        llm_views.llm_endpoint_delete,
        name="llm_endpoint_delete",
    ),
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/<str:action>/",
        views.deployment_action,
        name="deployment_action",
    ),
    # Governance: the partner rules editor, test cases, publishing, history, shadow report, replay, decisions
    path("clients/<int:pk>/governance/", governance_views.ruleset, name="governance_rules"),
    path(
        "clients/<int:pk>/governance/rules/new/", governance_views.rule_create, name="governance_rule_create"
    ),
    path(
        "clients/<int:pk>/governance/rules/check/",
        governance_views.condition_check,
        name="governance_condition_check",
    ),
    path(
        "clients/<int:pk>/governance/rules/<slug:key>/edit/",
        governance_views.rule_edit,
        name="governance_rule_edit",
    ),
    path(
        "clients/<int:pk>/governance/rules/<slug:key>/delete/",
        governance_views.rule_delete,
        name="governance_rule_delete",
    ),
    path(
        "clients/<int:pk>/governance/draft/discard/",
        governance_views.draft_discard,
        name="governance_draft_discard",
    ),
    path("clients/<int:pk>/governance/tests/", governance_views.test_list, name="governance_tests"),
    path(
        "clients/<int:pk>/governance/tests/new/", governance_views.test_create, name="governance_test_create"
    ),
    path("clients/<int:pk>/governance/tests/run/", governance_views.test_run, name="governance_test_run"),
    path(
        "clients/<int:pk>/governance/tests/<int:case_id>/delete/",
        governance_views.test_delete,
        name="governance_test_delete",
    ),
    path("clients/<int:pk>/governance/publish/", governance_views.publish, name="governance_publish"),
    path("clients/<int:pk>/governance/versions/", governance_views.version_list, name="governance_versions"),
    path(
        "clients/<int:pk>/governance/versions/<int:number>/",
        governance_views.version_detail,
        name="governance_version_detail",
    ),
    path(
        "clients/<int:pk>/governance/versions/<int:number>/rollback/",
        governance_views.rollback,
        name="governance_rollback",
    ),
    path("clients/<int:pk>/governance/shadow/", governance_views.shadow, name="governance_shadow"),
    path("clients/<int:pk>/governance/replay/", governance_views.replay, name="governance_replay"),
    path(
        "clients/<int:pk>/governance/decisions/", governance_views.decision_list, name="governance_decisions"
    ),
    path(
        "clients/<int:pk>/governance/decisions/<int:decision_id>/",
        governance_views.decision_detail,
        name="governance_decision_detail",
    ),
    # A client's data: data sources, connection tests, and each deployment's field mapping
    path("clients/<int:pk>/data-sources/", connector_views.data_source_list, name="client_data_sources"),
    path(
        "clients/<int:pk>/data-sources/new/",
        connector_views.data_source_create,
        name="client_data_source_create",
    ),
    path(
        "clients/<int:pk>/data-sources/<int:source_id>/edit/",
        connector_views.data_source_edit,
        name="client_data_source_edit",
    ),
    path(
        "clients/<int:pk>/data-sources/<int:source_id>/delete/",
        connector_views.data_source_delete,
        name="client_data_source_delete",
    ),
    path(
        "clients/<int:pk>/data-sources/<int:source_id>/test/",
        connector_views.data_source_test,
        name="client_data_source_test",
    ),
    path(
        "clients/<int:pk>/mappings/<int:deployment_id>/",
        connector_views.field_mapping_edit,
        name="client_field_mapping",
    ),
    path(
        "clients/<int:pk>/mappings/<int:deployment_id>/delete/",
        connector_views.field_mapping_delete,
        name="client_field_mapping_delete",
    ),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team_invite"),
    path("team/<int:pk>/remove/", views.team_remove, name="team_remove"),
]
