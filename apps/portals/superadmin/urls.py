from django.urls import path

from . import audit_views, factory_views, pack_views, rollout_views, views

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
    path(
        "clients/<int:pk>/deployments/<int:deployment_id>/decide/",
        views.client_deployment_decide,
        name="client_deployment_decide",
    ),
    # Agent Factory
    path("factory/", factory_views.factory, name="factory"),
    path("factory/<slug:key>/", factory_views.variant_detail, name="variant_detail"),
    path("factory/<slug:key>/clone/", factory_views.variant_clone, name="variant_clone"),
    path("factory/<slug:key>/versions/new/", factory_views.version_edit, name="version_edit"),
    path("factory/<slug:key>/versions/preview/", factory_views.version_preview, name="version_preview"),
    path("factory/<slug:key>/versions/discard/", factory_views.version_discard, name="version_discard"),
    path("factory/<slug:key>/versions/<str:version>/", factory_views.version_detail, name="version_detail"),
    path(
        "factory/<slug:key>/versions/<str:version>/rollback/",
        factory_views.version_rollback,
        name="version_rollback",
    ),
    path("factory/<slug:key>/diff/", factory_views.version_diff, name="version_diff"),
    path("factory/<slug:key>/rebase/", factory_views.variant_rebase, name="variant_rebase"),
    # Policy packs
    path("packs/<slug:key>/", pack_views.pack_detail, name="pack_detail"),
    path("packs/<slug:key>/versions/new/", pack_views.pack_version_new, name="pack_version_new"),
    path("packs/<slug:key>/versions/check/", pack_views.pack_version_check, name="pack_version_check"),
    path(
        "packs/<slug:key>/versions/<str:version>/",
        pack_views.pack_version_detail,
        name="pack_version_detail",
    ),
    # Rollouts
    path("rollouts/", rollout_views.rollout_list, name="rollout_list"),
    path("rollouts/new/", rollout_views.rollout_create, name="rollout_create"),
    path("rollouts/<int:pk>/", rollout_views.rollout_detail, name="rollout_detail"),
    path("rollouts/<int:pk>/revert/", rollout_views.rollout_revert, name="rollout_revert"),
    path("rollouts/<int:pk>/resume/", rollout_views.rollout_resume, name="rollout_resume"),
    # Audit activity: per-client event counts (never the events)
    path("audit/", audit_views.audit_counts, name="audit_counts"),
]
