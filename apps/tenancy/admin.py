"""Django admin for partners, clients and domains (schema names are never edited here)."""

from django.contrib import admin

from .models import Client, Domain, Partner


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["slug", "created_at", "updated_at"]


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "partner", "status", "created_at"]
    list_filter = ["status", "partner"]
    search_fields = ["name", "slug"]
    readonly_fields = [
        # The client's own setting: changed by its client admins on the dashboard only.
        "require_version_change_approval",
        "slug",
        "schema_name",
        "status",
        "provisioning_error",
        "provisioned_at",
        "created_at",
        "updated_at",
        "created_by",
    ]
    inlines = [DomainInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a row would orphan its schema; decommissioning is a service of its own.
        return False


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    search_fields = ["domain"]
