"""Every portal view carries its portal's access decorator; every other view is on a known list."""

import importlib

import pytest
from django.urls import URLPattern, URLResolver

from apps.accounts.decorators import PORTAL_ATTR

URLCONFS = ["config.urls_public", "config.urls_tenant"]
PORTALS = {
    "apps.portals.superadmin": "superadmin",
    "apps.portals.management": "management",
    "apps.portals.dashboard": "dashboard",
}
# Views outside the portals, each guarded by its own mechanism.
NON_PORTAL_MODULES = (
    "apps.accounts.views",  # sign-in pages: public by nature; `after_login` is login_required
    "apps.api.",  # DRF views: IsAuthenticated by default, per-view permission classes
    "django.contrib.auth.views",
    "django.views.generic.base",  # the platform root redirect
    "drf_spectacular.views",  # the OpenAPI document and its docs page
    "django.views.static",
)


def walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def all_views():
    for urlconf in URLCONFS:
        module = importlib.import_module(urlconf)
        for route, callback in walk(module.urlpatterns):
            yield urlconf, route, callback


def view_module(callback) -> str:
    target = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
    return f"{target.__module__}.{getattr(target, '__qualname__', '')}"


def test_views_are_found():
    routes = {route for _, route, _ in all_views()}
    assert "vendor/" in routes and "accounts/login/" in routes


@pytest.mark.parametrize(("urlconf", "route", "callback"), list(all_views()), ids=lambda v: str(v)[:60])
def test_every_view_is_guarded(urlconf, route, callback):
    module = view_module(callback)
    if urlconf == "config.urls_public" and route.startswith("admin/"):
        return  # Django admin: every view is wrapped by the admin site (staff only, vendor-role permissions)
    portal = next((name for package, name in PORTALS.items() if module.startswith(package + ".")), None)
    if portal is not None:
        assert getattr(callback, PORTAL_ATTR, None) == portal, (
            f"{route} ({module}) lacks the @{portal} access decorator from apps.accounts.decorators"
        )
    else:
        assert module.startswith(NON_PORTAL_MODULES), (
            f"{route} ({module}) is not a portal view nor on the known list"
        )


def test_portal_urls_are_only_on_their_host():
    public_routes = {route for urlconf, route, _ in all_views() if urlconf == "config.urls_public"}
    tenant_routes = {route for urlconf, route, _ in all_views() if urlconf == "config.urls_tenant"}
    assert not any(route.startswith(("vendor/", "partner/", "admin/")) for route in tenant_routes)
    assert any(route.startswith("vendor/") for route in public_routes)
