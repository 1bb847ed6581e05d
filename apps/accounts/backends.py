"""Model permissions derived from the vendor role.

Platform admins hold every model permission; support staff hold only `view_*`
permissions, which makes the Django admin read-only for them. Partner and
client roles grant no model permissions: their access is decided by
memberships and object grants (accounts.access).
"""

from django.contrib.auth.backends import BaseBackend

from .models import VendorRole


class VendorRoleBackend(BaseBackend):
    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        if not user_obj.is_active or obj is not None:
            return False
        role = getattr(user_obj, "vendor_role", "")
        if role == VendorRole.PLATFORM_ADMIN:
            return True
        if role == VendorRole.SUPPORT:
            return perm.partition(".")[2].startswith("view_")
        return False

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        return user_obj.is_active and getattr(user_obj, "vendor_role", "") in VendorRole.values
