"""Django admin for the Agent Factory: support tooling, read-mostly.

Versions are made in the super-admin portal (the services validate and number
them), never here. A published version or policy pack version is shown but can
be neither changed nor deleted (the database refuses it too); a draft's
changelog may be corrected and a draft discarded.
"""

from django.contrib import admin
from django.utils.html import format_html

from .models import (
    AgentTemplate,
    AgentVariant,
    AgentVersion,
    PolicyPack,
    PolicyPackVersion,
    Rollout,
    RolloutTarget,
)
from .services import version_discard
from .yaml_spec import spec_to_yaml


def _published(obj) -> bool:
    return obj is not None and obj.status == AgentVersion.Status.PUBLISHED


@admin.register(AgentTemplate)
class AgentTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "created_at"]
    search_fields = ["name", "key"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # Keys are referenced by variants and seeds: permanent once created.
        return [*self.readonly_fields, "key"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # referenced by versions and by deployments in the clients' schemas


class ReadOnlyInline(admin.TabularInline):
    """An inline that only shows rows (history is changed through the services, never here)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AgentVersionInline(ReadOnlyInline):
    model = AgentVersion
    fields = readonly_fields = ("version", "status", "changelog", "author", "published_at")
    show_change_link = True

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AgentVariant)
class AgentVariantAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "domain", "parent", "template", "created_at"]
    list_filter = ["template", "parent"]
    search_fields = ["name", "key", "domain"]
    readonly_fields = ["key", "template", "parent", "created_by", "created_at", "updated_at"]
    inlines = [AgentVersionInline]

    def has_add_permission(self, request):
        return False  # a variant is cloned in the factory, with its first published version

    def has_delete_permission(self, request, obj=None):
        return False  # referenced by versions and by deployments in the clients' schemas


@admin.register(AgentVersion)
class AgentVersionAdmin(admin.ModelAdmin):
    list_display = ["variant", "version", "status", "author", "created_at", "published_at"]
    list_filter = ["status", "variant"]
    search_fields = ["variant__key", "variant__name", "version", "changelog"]
    list_select_related = ["variant", "author"]
    fields = [
        "variant",
        "version",
        "status",
        "changelog",
        "author",
        "created_at",
        "published_at",
        "derived_from",
        "base_version",
        "policy_pack_version",
        "spec_yaml",
    ]
    readonly_fields = [
        "variant",
        "version",
        "status",
        "author",
        "created_at",
        "published_at",
        "derived_from",
        "base_version",
        "policy_pack_version",
        "spec_yaml",
    ]

    @admin.display(description="Spec")
    def spec_yaml(self, obj):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', spec_to_yaml(obj.spec))

    def get_readonly_fields(self, request, obj=None):
        if _published(obj):
            return [*self.readonly_fields, "changelog"]
        return self.readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return not _published(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _published(obj) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk deletion would reach published versions
        return actions

    def delete_model(self, request, obj):
        version_discard(version=obj, actor=request.user)

    def get_deleted_objects(self, objs, request):
        # Only drafts get here, and nothing refers to a draft. Django's own walk of related
        # objects would look for deployments, which live in the clients' schemas.
        return [str(obj) for obj in objs], {AgentVersion._meta.verbose_name_plural: len(objs)}, set(), []


class PolicyPackVersionInline(ReadOnlyInline):
    model = PolicyPackVersion
    fields = readonly_fields = ("version", "status", "changelog", "published_at")
    show_change_link = True

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PolicyPack)
class PolicyPackAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "updated_at"]
    search_fields = ["name", "key"]
    readonly_fields = ["key", "created_at", "updated_at"]
    inlines = [PolicyPackVersionInline]

    def has_add_permission(self, request):
        return False  # packs are published with their rules (policy_pack_publish)

    def has_delete_permission(self, request, obj=None):
        return False  # referenced by versions and by deployments in the clients' schemas


@admin.register(PolicyPackVersion)
class PolicyPackVersionAdmin(admin.ModelAdmin):
    list_display = ["pack", "version", "status", "created_at", "published_at"]
    list_filter = ["status", "pack"]
    fields = readonly_fields = (
        "pack",
        "version",
        "status",
        "changelog",
        "created_at",
        "published_at",
        "rules_yaml",
    )

    @admin.display(description="Rules")
    def rules_yaml(self, obj):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', spec_to_yaml({"rules": obj.rules}))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return not _published(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _published(obj) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class RolloutTargetInline(ReadOnlyInline):
    model = RolloutTarget
    fields = readonly_fields = ("client", "result", "message", "elapsed_ms", "updated_at")


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Rollouts run and revert from the super-admin portal; here they are only looked at."""

    list_display = ["variant", "target_version", "status", "canary", "created_by", "created_at"]
    list_filter = ["status", "variant"]
    list_select_related = ["variant", "target_version", "created_by"]
    readonly_fields = [
        "variant",
        "target_version",
        "canary",
        "status",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    inlines = [RolloutTargetInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RolloutTarget)
class RolloutTargetAdmin(admin.ModelAdmin):
    list_display = ["rollout", "client", "result", "elapsed_ms", "updated_at"]
    list_filter = ["result"]
    list_select_related = ["rollout__variant", "rollout__target_version", "client"]
    search_fields = ["client__name", "client__slug"]
    readonly_fields = ["rollout", "client", "result", "message", "moved", "elapsed_ms", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
