"""Django admin for vendor support: read-only for support staff (see VendorRoleBackend)."""

from typing import ClassVar

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import ClientMembership, PartnerMembership, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "vendor_role", "is_active", "last_login"]
    list_filter = ["vendor_role", "is_active"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "vendor_role"]}),
        ("Status", {"fields": ["is_active", "is_staff", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})
    ]
    filter_horizontal: ClassVar[list[str]] = []

    def has_delete_permission(self, request, obj=None) -> bool:
        # People are deactivated, not deleted: client schemas keep their audit entries.
        return False


@admin.register(PartnerMembership)
class PartnerMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "partner", "role", "created_at"]
    list_filter = ["role", "partner"]
    search_fields = ["user__email", "partner__name"]
    autocomplete_fields = ["user"]


@admin.register(ClientMembership)
class ClientMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "client", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "client__name"]
    autocomplete_fields = ["user"]
