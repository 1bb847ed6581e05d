from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("users/", views.user_list, name="user_list"),
    path("users/invite/", views.user_invite, name="user_invite"),
    path("users/<int:pk>/role/", views.user_role, name="user_role"),
    path("users/<int:pk>/remove/", views.user_remove, name="user_remove"),
    path("settings/", views.client_settings, name="client_settings"),
    path("agents/", views.deployment_list, name="deployment_list"),
    path("agents/<int:deployment_id>/", views.deployment_detail, name="deployment_detail"),
    path("agents/<int:deployment_id>/decide/", views.deployment_decide, name="deployment_decide"),
    # Governance: the rules that govern the client, its own stricter rules, its decision log
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/publish/", views.ruleset_publish, name="ruleset_publish"),
    path("rules/<slug:key>/edit/", views.rule_edit, name="rule_edit"),
    path("rules/<slug:key>/delete/", views.rule_delete, name="rule_delete"),
    path("decisions/", views.decision_list, name="decision_list"),
    path("decisions/<int:pk>/", views.decision_detail, name="decision_detail"),
]
