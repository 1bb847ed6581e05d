"""API v1 endpoints: one class per operation, with their own serializers."""

from auditlog.models import LogEntry
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import partner_membership_of

from .permissions import IsClientMember


class MeApi(APIView):
    """Who am I: my roles, my partner and the clients I belong to."""

    permission_classes = [IsAuthenticated]

    class PartnerSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.CharField()
        role = serializers.CharField()

    class ClientSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.CharField()
        host = serializers.CharField()
        status = serializers.CharField()
        role = serializers.CharField()

    # Nested serializers all named OutputSerializer would share one OpenAPI component: name each.
    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        full_name = serializers.CharField()
        vendor_role = serializers.CharField(allow_null=True)
        partner = serializers.DictField(allow_null=True)
        clients = serializers.ListField(child=serializers.DictField())
        current_client = serializers.CharField(
            allow_null=True, help_text="Slug of the client whose host this is."
        )

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        membership = partner_membership_of(user)
        partner = None
        if membership is not None:
            partner = self.PartnerSerializer(
                {
                    "id": membership.partner.pk,
                    "name": membership.partner.name,
                    "slug": membership.partner.slug,
                    "role": membership.role,
                }
            ).data
        clients = [
            self.ClientSerializer(
                {
                    "id": m.client.pk,
                    "name": m.client.name,
                    "slug": m.client.slug,
                    "host": m.client.primary_host,
                    "status": m.client.status,
                    "role": m.role,
                }
            ).data
            for m in user.client_memberships.select_related("client").order_by("client__name")
        ]
        tenant = getattr(request, "tenant", None)
        data = {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "vendor_role": user.vendor_role or None,
            "partner": partner,
            "clients": clients,
            "current_client": tenant.slug if tenant is not None else None,
        }
        return Response(self.OutputSerializer(data).data)


class ActivityListApi(ListAPIView):
    """This client's own log of configuration changes (client host only)."""

    permission_classes = [IsAuthenticated, IsClientMember]

    @extend_schema_serializer(component_name="ActivityEntry")
    class OutputSerializer(serializers.ModelSerializer):
        action = serializers.CharField(source="get_action_display")
        object_type = serializers.CharField(source="content_type.model")
        actor = serializers.EmailField(source="actor.email", allow_null=True, default=None)

        class Meta:
            model = LogEntry
            fields = ["id", "timestamp", "action", "object_type", "object_repr", "actor", "changes"]

    serializer_class = OutputSerializer

    def get_queryset(self):
        # The connection is on the client's schema here: this is its own log table.
        return LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-pk")


class TokenObtainApi(ObtainAuthToken):
    """Exchange an email and password for an API token (repeated failures lock the account)."""
