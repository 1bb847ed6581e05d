"""API v1, Agent Factory (platform host): variants, their versions, a version's spec, diffs.

Readable by platform admins and partner teams (who choose the variants they deploy);
partners see published versions only — a draft is the vendor's work in progress.
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import is_platform_admin
from apps.factory.diff import spec_diff
from apps.factory.models import AgentVariant, AgentVersion
from apps.factory.selectors import access_variant, access_version, variant_list, version_list

from .permissions import IsPlatformAdminOrPartnerStaff


def _visible_version(request: Request, variant: AgentVariant, version: str) -> AgentVersion:
    """One version of `variant`; a draft is 404 to anyone but a platform admin."""
    found = access_version(variant=variant, version=version)
    if not found.is_published and not is_platform_admin(request.user):
        raise Http404("No such version.")
    return found


class VariantListApi(APIView):
    """Every agent variant, with the variant it was cloned from and its latest published version."""

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff]

    @extend_schema_serializer(component_name="Variant")
    class OutputSerializer(serializers.Serializer):
        key = serializers.CharField()
        name = serializers.CharField()
        domain = serializers.CharField()
        description = serializers.CharField()
        parent = serializers.CharField(
            source="parent.key",
            allow_null=True,
            default=None,
            help_text="Key of the variant it was cloned from.",
        )
        latest_version = serializers.CharField(allow_null=True, help_text="Latest published version.")

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        # `variant_list` annotates each variant with its latest published version.
        return Response(self.OutputSerializer(variant_list(), many=True).data)


class _VersionFields(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    changelog = serializers.CharField()
    author = serializers.EmailField(source="author.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    derived_from = serializers.CharField(source="derived_from.version", allow_null=True, default=None)


class VersionListApi(APIView):
    """A variant's versions, newest first (partners: published versions only)."""

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff]

    @extend_schema_serializer(component_name="AgentVersionSummary")
    class OutputSerializer(_VersionFields):
        pass

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, key: str) -> Response:
        variant = access_variant(key)
        versions = [
            v for v in version_list(variant=variant) if v.is_published or is_platform_admin(request.user)
        ]
        return Response(self.OutputSerializer(versions, many=True).data)


class VersionDetailApi(APIView):
    """One version of a variant, with its full spec."""

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff]

    @extend_schema_serializer(component_name="AgentVersion")
    class OutputSerializer(_VersionFields):
        variant = serializers.CharField(source="variant.key")
        base_version = serializers.CharField(
            source="base_version.version",
            allow_null=True,
            default=None,
            help_text="The parent variant's version this one builds on.",
        )
        policy_pack_version = serializers.CharField(
            source="policy_pack_version.version",
            allow_null=True,
            default=None,
            help_text="The version of the spec's policy pack this version ships with (fixed at publish).",
        )
        spec = serializers.JSONField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, key: str, version: str) -> Response:
        found = _visible_version(request, access_variant(key), version)
        return Response(self.OutputSerializer(found).data)


class VersionDiffApi(APIView):
    """The structured difference between two versions' specs: one entry per changed path."""

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff]

    class InputSerializer(serializers.Serializer):
        from_ = serializers.CharField(
            error_messages={"required": "Give the version to compare from, e.g. ?from=1.0.0&to=1.1.0."}
        )
        to = serializers.CharField(
            error_messages={"required": "Give the version to compare to, e.g. ?from=1.0.0&to=1.1.0."}
        )

        def get_fields(self):
            # `from` is a Python keyword: declared as `from_`, read from the query string as `from`.
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

    @extend_schema_serializer(component_name="SpecChange")
    class OutputSerializer(serializers.Serializer):
        path = serializers.CharField(
            help_text="Path in the spec, e.g. `workflows[triage_ticket].steps[load].tool`."
        )
        kind = serializers.CharField(help_text="added, removed or changed.")
        old = serializers.JSONField(allow_null=True)
        new = serializers.JSONField(allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, required=True, description="The older version, e.g. 1.0.0."),
            OpenApiParameter("to", str, required=True, description="The newer version, e.g. 1.1.0."),
        ],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request, key: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        variant = access_variant(key)
        old = _visible_version(request, variant, params.validated_data["from"])
        new = _visible_version(request, variant, params.validated_data["to"])
        changes = spec_diff(old.spec, new.spec)
        return Response(self.OutputSerializer(changes, many=True).data)
