"""API permission classes mirroring the portals' access rules.

They decide by role and host only; which client or deployment a user may
touch is decided by the scoped selectors the views call (`access_client`,
`deployment_get`), which answer 404 for anything out of scope.
"""

from rest_framework.permissions import BasePermission

from apps.accounts.access import client_membership_of, is_platform_admin, partner_membership_of
from apps.accounts.models import ClientRole

# Who may move a deployment, by side: the partner builds and runs it, the client (or the vendor) approves.
PARTNER_ACTIONS = frozenset({"submit", "revise", "deploy", "pause", "resume", "retire", "change_version"})
APPROVER_ACTIONS = frozenset({"approve", "reject", "approve_change", "reject_change"})
DEPLOYMENT_ACTIONS = PARTNER_ACTIONS | APPROVER_ACTIONS
# As choices; named `DeploymentActionEnum` in the OpenAPI schema (SPECTACULAR_SETTINGS).
DEPLOYMENT_ACTION_CHOICES = sorted(DEPLOYMENT_ACTIONS)


def _on_platform_host(request) -> bool:
    return getattr(request, "tenant", None) is None


class IsClientMember(BasePermission):
    """The request is on a client's host and the user has a role in that client."""

    message = "You have no role in this client."

    def has_permission(self, request, view) -> bool:
        client = getattr(request, "tenant", None)
        return client is not None and client_membership_of(request.user, client) is not None


class IsPlatformAdminOrPartnerStaff(BasePermission):
    """Platform host; a vendor platform admin, or a partner admin or engineer.

    The factory is theirs to read (partners choose the variants they deploy), and so are
    the deployments of the clients they may see.
    """

    message = "Only platform admins and partner teams may use this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return _on_platform_host(request) and (
            is_platform_admin(user) or partner_membership_of(user) is not None
        )


class IsPartnerStaff(BasePermission):
    """Platform host; a partner admin or engineer (the people who create deployments)."""

    message = "Only partner teams may do this."

    def has_permission(self, request, view) -> bool:
        return _on_platform_host(request) and partner_membership_of(request.user) is not None


def deployment_actions_for(request) -> frozenset[str]:
    """The deployment transitions this user may ask for on this host.

    Platform host: partner staff the partner side, platform admins the approvals. A client's
    host: its client admins the approvals; operators and viewers none. Maker-checker (the one
    who submitted cannot approve) is the service's rule, not a role rule.
    """
    user = request.user
    client = getattr(request, "tenant", None)
    if client is None:
        if partner_membership_of(user) is not None:
            return PARTNER_ACTIONS
        if is_platform_admin(user):
            return APPROVER_ACTIONS
        return frozenset()
    membership = client_membership_of(user, client)
    if membership is not None and membership.role == ClientRole.CLIENT_ADMIN:
        return APPROVER_ACTIONS
    return frozenset()


class CanTransitionDeployment(BasePermission):
    """The user may ask for the transition named in the body's `action`.

    An action nobody knows is left to the input serializer (400); a known one the user's
    role does not allow, or any action from a user who may make none, is refused (403).
    """

    message = "Your role does not allow this transition."

    def has_permission(self, request, view) -> bool:
        allowed = deployment_actions_for(request)
        if not allowed:
            return False
        action = request.data.get("action") if hasattr(request.data, "get") else None
        # Anything but a string (a list, an object) cannot be an action: the serializer answers 400.
        if not isinstance(action, str):
            return True
        return action not in DEPLOYMENT_ACTIONS or action in allowed
