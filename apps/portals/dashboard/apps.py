from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "apps.portals.dashboard"
    label = "portal_dashboard"
