from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "apps.portals.superadmin"
    label = "portal_superadmin"
