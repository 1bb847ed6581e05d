from django.urls import path

from . import views

app_name = "superadmin"

urlpatterns = [
    path("", views.home, name="home"),
    path("partners/", views.partner_list_view, name="partner_list"),
    path("partners/new/", views.partner_create, name="partner_create"),
    path("partners/<int:pk>/", views.partner_detail, name="partner_detail"),
    path("partners/<int:pk>/edit/", views.partner_edit, name="partner_edit"),
    path("partners/<int:pk>/deactivate/", views.partner_deactivate, name="partner_deactivate"),
    path("partners/<int:pk>/activate/", views.partner_activate, name="partner_activate"),
    path("partners/<int:pk>/invite/", views.partner_invite_admin, name="partner_invite_admin"),
    path("clients/", views.client_list_view, name="client_list"),
    path("clients/<int:pk>/", views.client_detail, name="client_detail"),
]
