"""API v1, deployments: a client's agents pinned to factory versions, and their lifecycle.

Each operation is served on both kinds of host, with the same serializers:
- the platform host, under `clients/<client_id>/`, for platform admins (every client) and
  partner teams (the clients `access_client` lets them see; 404 for any other);
- a client's own host, for the members of that client (`request.tenant`).

Who may ask for which transition is `permissions.deployment_actions_for`; whether the
deployment's state allows it, and maker-checker, are the services' rules (400 when refused).
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import access_client
from apps.accounts.models import User
from apps.deployments import services
from apps.deployments.models import Deployment
from apps.deployments.selectors import deployment_get, deployment_history, deployment_list
from apps.factory.models import AgentVariant, AgentVersion
from apps.factory.selectors import access_variant, access_version
from apps.tenancy.models import Client

from .permissions import (
    DEPLOYMENT_ACTION_CHOICES,
    CanTransitionDeployment,
    IsClientMember,
    IsPartnerStaff,
    IsPlatformAdminOrPartnerStaff,
)

# Transitions that record a reason (rejecting requires one); `revise` and `deploy` take none,
# and `change_version` also takes the version to move to.
WITH_REASON = {
    "submit": services.deployment_submit,
    "approve": services.deployment_approve,
    "reject": services.deployment_reject,
    "pause": services.deployment_pause,
    "resume": services.deployment_resume,
    "retire": services.deployment_retire,
    "approve_change": services.deployment_approve_change,
    "reject_change": services.deployment_reject_change,
}
WITHOUT_REASON = {"revise": services.deployment_revise, "deploy": services.deployment_deploy}


# --- Serializers shared by every deployment operation --------------------------------


@extend_schema_serializer(component_name="Deployment")
class DeploymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    variant = serializers.CharField(source="variant.key")
    version = serializers.CharField(source="version.version")
    status = serializers.CharField()
    pending_version = serializers.CharField(
        source="pending_version.version",
        allow_null=True,
        default=None,
        help_text="A requested upgrade or rollback waiting for approval.",
    )
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="DeploymentTransition")
class TransitionSerializer(serializers.Serializer):
    action = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    from_version = serializers.CharField(source="from_version.version", allow_null=True, default=None)
    to_version = serializers.CharField(source="to_version.version", allow_null=True, default=None)
    actor = serializers.EmailField(source="actor.email", allow_null=True, default=None)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="DeploymentDetail")
class DeploymentDetailSerializer(DeploymentSerializer):
    created_at = serializers.DateTimeField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    submitted_by = serializers.EmailField(source="submitted_by.email", allow_null=True, default=None)
    history = serializers.SerializerMethodField(help_text="Every transition, newest first.")

    @extend_schema_field(TransitionSerializer(many=True))
    def get_history(self, deployment: Deployment) -> list:
        return TransitionSerializer(self.context["history"], many=True).data


def _detail(client: Client, deployment: Deployment) -> dict:
    """The deployment with its history (read from the client's schema), serialized."""
    history = deployment_history(client=client, deployment=deployment)
    return DeploymentDetailSerializer(deployment, context={"history": history}).data


# --- Which client: the host's own, or the one in the path ----------------------------


class _OnClientHost:
    """Client host: the client is the host's own, and any of its members may read."""

    permission_classes = [IsAuthenticated, IsClientMember]

    def get_client(self) -> Client:
        return self.request.tenant  # type: ignore[attr-defined]


class _OnPlatformHost:
    """Platform host: the client is `client_id`, as far as the user may see it (404 otherwise)."""

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff]

    def get_client(self) -> Client:
        client = access_client(self.request.user, self.kwargs["client_id"])  # type: ignore[attr-defined]
        # Deployments live in the client's schema, which exists once provisioning is done.
        if client.status != Client.Status.READY:
            raise Http404("The client's workspace is not ready.")
        return client


# --- List and create ----------------------------------------------------------------


class DeploymentListApi(_OnClientHost, APIView):
    """This client's deployed agents, by name."""

    OutputSerializer = DeploymentSerializer

    @extend_schema(responses=DeploymentSerializer(many=True))
    def get(self, request: Request, **scope) -> Response:
        deployments = deployment_list(client=self.get_client())
        return Response(self.OutputSerializer(deployments, many=True).data)


class ClientDeploymentListCreateApi(_OnPlatformHost, DeploymentListApi):
    """A client's deployments (GET), and a new draft deployment made by its partner team (POST).

    One path serves both operations, so they share a class; each has its own serializers
    and permissions (platform admins read, only partner teams create).
    """

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsPartnerStaff()]
        return super().get_permissions()

    @extend_schema_serializer(component_name="DeploymentCreateRequest")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        variant = serializers.CharField(help_text="The variant's key, e.g. `itsm`.")
        version = serializers.CharField(help_text="A published version of that variant, e.g. `1.0.0`.")

    @extend_schema(request=InputSerializer, responses={201: DeploymentDetailSerializer})
    def post(self, request: Request, client_id: int) -> Response:
        client = self.get_client()
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        variant, version = _published_version(data["variant"], data["version"])
        deployment = services.deployment_create(
            client=client, variant=variant, version=version, name=data["name"], actor=request.user
        )
        return Response(_detail(client, deployment), status=status.HTTP_201_CREATED)


def _published_version(variant_key: str, version: str) -> tuple[AgentVariant, AgentVersion]:
    """The variant and its published version named in a request; a field error (400) if there is none.

    A draft reads as missing: to a partner it does not exist yet.
    """
    try:
        variant = access_variant(variant_key)
    except Http404:
        raise ValidationError({"variant": [f"There is no agent variant “{variant_key}”."]}) from None
    try:
        found = access_version(variant=variant, version=version)
    except Http404:
        found = None
    if found is None or not found.is_published:
        raise ValidationError({"version": [f"Variant “{variant.key}” has no published version {version}."]})
    return variant, found


# --- Detail -------------------------------------------------------------------------


class DeploymentDetailApi(_OnClientHost, APIView):
    """One deployment with its history of transitions."""

    OutputSerializer = DeploymentDetailSerializer

    @extend_schema(responses=DeploymentDetailSerializer)
    def get(self, request: Request, pk: int, **scope) -> Response:
        client = self.get_client()
        return Response(_detail(client, deployment_get(client=client, pk=pk)))


class ClientDeploymentDetailApi(_OnPlatformHost, DeploymentDetailApi):
    """One deployment of a client, with its history of transitions."""


# --- Transitions --------------------------------------------------------------------


class DeploymentTransitionApi(_OnClientHost, APIView):
    """Move a deployment along its lifecycle; answers with the deployment as it now is.

    On a client's host, its client admins approve or reject a deployment or a version change.
    """

    permission_classes = [IsAuthenticated, IsClientMember, CanTransitionDeployment]

    @extend_schema_serializer(component_name="DeploymentTransitionRequest")
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=DEPLOYMENT_ACTION_CHOICES)
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="Why; required to reject. `revise` and `deploy` record none.",
        )
        version = serializers.CharField(
            required=False, help_text="For `change_version`: the published version to move to, e.g. `1.1.0`."
        )

    @extend_schema(request=InputSerializer, responses=DeploymentDetailSerializer)
    def post(self, request: Request, pk: int, **scope) -> Response:
        client = self.get_client()
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        deployment = deployment_get(client=client, pk=pk)
        _transition(client, deployment, request.user, **params.validated_data)
        return Response(_detail(client, deployment_get(client=client, pk=pk)))


def _transition(
    client: Client, deployment: Deployment, actor: User, *, action: str, reason: str, version: str = ""
) -> None:
    """Ask the service for `action`; its refusals (state machine, maker-checker) become 400s."""
    if action == "change_version":
        if not version:
            raise ValidationError({"version": ["Give the version to move to, e.g. 1.1.0."]})
        _, target = _published_version(deployment.variant.key, version)
        services.deployment_change_version(
            client=client, deployment=deployment, version=target, actor=actor, reason=reason
        )
    elif action in WITHOUT_REASON:
        WITHOUT_REASON[action](client=client, deployment=deployment, actor=actor)
    else:
        WITH_REASON[action](client=client, deployment=deployment, actor=actor, reason=reason)


class ClientDeploymentTransitionApi(_OnPlatformHost, DeploymentTransitionApi):
    """Move a client's deployment along its lifecycle; answers with the deployment as it now is.

    Partner teams submit, revise, deploy, pause, resume, retire and change versions;
    platform admins approve or reject (a deployment or a version change).
    """

    permission_classes = [IsAuthenticated, IsPlatformAdminOrPartnerStaff, CanTransitionDeployment]
