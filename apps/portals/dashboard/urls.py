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
]
