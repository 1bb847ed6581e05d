from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("users/", views.user_list, name="user_list"),
    path("users/invite/", views.user_invite, name="user_invite"),
    path("users/<int:pk>/role/", views.user_role, name="user_role"),
    path("users/<int:pk>/remove/", views.user_remove, name="user_remove"),
]
