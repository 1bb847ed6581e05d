"""API v1, the audit trail (a client's host only): list its events, export them, verify the chain.

- `audit/events`: the events, newest first, a page at a time; filters as the dashboard's audit log.
- `audit/export?fmt=jsonl|csv`: the filtered events as a streamed download, oldest first. JSONL lines
  carry `prev_hash` and `hash`, so an unfiltered export can be re-verified anywhere.
- `audit/verify`: walks the whole chain; answers whether it is intact or where it first breaks.

Every member of the client may use them (viewers are the auditor role); nobody else, the vendor
and partner teams included: the vendor sees only per-client counts, in its own portal.
"""

from collections.abc import Sequence
from typing import overload

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit import selectors, services
from apps.audit.models import AuditEvent
from apps.tenancy.models import Client

from .permissions import IsClientMember

CONTENT_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
FILTER_PARAMETERS = [
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this day (inclusive, UTC)."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Up to this day (inclusive, UTC)."),
    OpenApiParameter("trace_id", str),
    OpenApiParameter("deployment", int, description="A deployment (agent) id."),
    OpenApiParameter("effect", str, enum=list(selectors.EFFECTS), description="The governance effect."),
    OpenApiParameter("kind", str, description="An event kind (`decision`), or a family (`approval.*`)."),
]


class AuditFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    trace_id = serializers.CharField(max_length=64, required=False)
    deployment = serializers.IntegerField(required=False, min_value=1)
    effect = serializers.ChoiceField(choices=selectors.EFFECTS, required=False)
    kind = serializers.CharField(max_length=60, required=False)

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": "The end date is before the start date."})
        return attrs

    def filters(self) -> dict:
        data = dict(self.validated_data)
        if "deployment" in data:
            data["deployment_id"] = data.pop("deployment")
        return data


def _filters(request: Request) -> dict:
    params = AuditFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.filters()


class AuditEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The event's place in the client's chain (1, 2, 3…).")
    created_at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="e.g. `task.created`, `decision`, `approval.approved`.")
    trace_id = serializers.CharField(allow_blank=True)
    actor = serializers.CharField(allow_blank=True, help_text="A user's e-mail, `agent:<name>` or `system`.")
    actor_id = serializers.IntegerField(allow_null=True)
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    effect = serializers.CharField(allow_blank=True)
    subject = serializers.CharField(allow_blank=True)
    data = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class _EventPages(Sequence):
    """The filtered trail as the paginator sees it: a count and slices, each read from the client's schema."""

    def __init__(self, client: Client, filters: dict):
        self.client, self.filters = client, filters

    def __len__(self) -> int:
        return selectors.audit_event_count(client=self.client, filters=self.filters)

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[AuditEvent]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return selectors.audit_event_window(
                client=self.client, filters=self.filters, start=index.start or 0, stop=index.stop or 0
            )
        return selectors.audit_event_window(
            client=self.client, filters=self.filters, start=index, stop=index + 1
        )[0]


class AuditEventListApi(ListAPIView):
    """The client's audit events, newest first, a page at a time."""

    permission_classes = [IsAuthenticated, IsClientMember]
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's pass: no client
            return AuditEvent.objects.none()
        return _EventPages(self.request.tenant, _filters(self.request))  # type: ignore[attr-defined]

    @extend_schema(parameters=FILTER_PARAMETERS)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class AuditExportApi(APIView):
    """The filtered events as JSONL (one canonical JSON event per line) or CSV, oldest first, streamed."""

    permission_classes = [IsAuthenticated, IsClientMember]

    class QuerySerializer(serializers.Serializer):
        fmt = serializers.ChoiceField(choices=services.EXPORT_FORMATS, default="jsonl")

    @extend_schema(
        parameters=[
            OpenApiParameter("fmt", str, enum=list(services.EXPORT_FORMATS), description="Default jsonl."),
            *FILTER_PARAMETERS,
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="One event per line."
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="A header row, one event a row."
            ),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data["fmt"]
        client = request.tenant  # type: ignore[attr-defined]
        chunks = services.audit_export_client(client=client, fmt=fmt, filters=_filters(request))
        response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
        filename = f"audit-{client.slug}-{timezone.localdate().isoformat()}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class AuditVerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Events found intact (before the break, if any).")
    first_broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)


class AuditVerifyApi(APIView):
    """Walk the client's whole chain: intact, or the first broken link and why."""

    permission_classes = [IsAuthenticated, IsClientMember]

    @extend_schema(request=None, responses=AuditVerifyResultSerializer)
    def post(self, request: Request) -> Response:
        result = services.audit_verify_client(client=request.tenant)  # type: ignore[attr-defined]
        return Response(AuditVerifyResultSerializer(result).data)
