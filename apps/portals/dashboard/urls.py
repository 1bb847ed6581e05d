from django.urls import path

from . import audit_views, runtime_views, schedule_views, views

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
    # The governed runtime: run a workflow, tasks and their traces, approvals of held actions
    path("run/", runtime_views.workflow_run, name="workflow_run"),
    path("tasks/", runtime_views.task_list, name="task_list"),
    path("tasks/<int:task_id>/", runtime_views.task_detail, name="task_detail"),
    # Schedules: a workflow a deployed agent runs by itself every N minutes
    path("schedules/", schedule_views.schedule_list, name="schedule_list"),
    path("schedules/new/", schedule_views.schedule_create, name="schedule_create"),
    path("schedules/<int:schedule_id>/pause/", schedule_views.schedule_pause, name="schedule_pause"),
    path("schedules/<int:schedule_id>/resume/", schedule_views.schedule_resume, name="schedule_resume"),
    path("schedules/<int:schedule_id>/delete/", schedule_views.schedule_delete, name="schedule_delete"),
    path("approvals/", runtime_views.approval_inbox, name="approval_inbox"),
    # The approval e-mail links to approvals/<id>/?s=<signature> (apps.runtime.notifications).
    path("approvals/<int:approval_id>/", runtime_views.approval_detail, name="approval_detail"),
    path("approvals/<int:approval_id>/approve/", runtime_views.approval_approve, name="approval_approve"),
    path("approvals/<int:approval_id>/reject/", runtime_views.approval_reject, name="approval_reject"),
    path("approvals/<int:approval_id>/edit/", runtime_views.approval_edit, name="approval_edit"),
    # The audit trail: the log, its export and the chain check
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit/export/<slug:fmt>/", audit_views.audit_export, name="audit_export"),
    path("audit/verify/", audit_views.audit_verify, name="audit_verify"),
]
