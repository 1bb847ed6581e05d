from django.urls import path

from . import views

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
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/<str:action>/",
        views.deployment_action,
        name="deployment_action",
    ),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team_invite"),
    path("team/<int:pk>/remove/", views.team_remove, name="team_remove"),
]
