from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "apps.portals.management"
    label = "portal_management"
