"""Model permissions derived from the vendor role.

Platform admins hold every model permission; support staff hold only `view_*`
permissions on the support apps, which makes the Django admin read-only for
them and keeps everything else (sign-in attempts, sessions) out of sight. Partner and
client roles grant no model permissions: their access is decided by
memberships and object grants (accounts.access).
"""

from django.contrib.auth.backends import BaseBackend

from .models import VendorRole

SUPPORT_APPS = frozenset({"tenancy", "accounts", "factory", "auditlog"})


class VendorRoleBackend(BaseBackend):
    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        if not user_obj.is_active or obj is not None:
            return False
        role = getattr(user_obj, "vendor_role", "")
        if role == VendorRole.PLATFORM_ADMIN:
            return True
        if role == VendorRole.SUPPORT:
            app_label, _, codename = perm.partition(".")
            return app_label in SUPPORT_APPS and codename.startswith("view_")
        return False

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        if not user_obj.is_active:
            return False
        role = getattr(user_obj, "vendor_role", "")
        return role == VendorRole.PLATFORM_ADMIN or (role == VendorRole.SUPPORT and app_label in SUPPORT_APPS)
