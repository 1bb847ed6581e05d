"""API permission classes mirroring the portals' access rules.

They decide by role and host only; which client or deployment a user may
touch is decided by the scoped selectors the views call (`access_client`,
`deployment_get`), which answer 404 for anything out of scope.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.accounts.access import client_membership_of, is_platform_admin, partner_membership_of
from apps.accounts.models import ClientRole
from apps.governance.models import EvaluationKey

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


# --- Governance ---------------------------------------------------------------------


def reads_governance(request) -> bool:
    """Whether the user may read a client's governance (ruleset, versions, test cases, decisions) here.

    Platform host: platform admins and partner teams (which clients: `access_client` in the view).
    A client's host: every member of that client.
    """
    client = getattr(request, "tenant", None)
    if client is None:
        return is_platform_admin(request.user) or partner_membership_of(request.user) is not None
    return client_membership_of(request.user, client) is not None


def governance_layer_for(request) -> str | None:
    """The rule layer this user writes on this host, or None for those who may only read.

    Platform host: partner staff write `partner` rules (the vendor's rules are its policy packs).
    A client's host: its client admins write `client` rules, publish, and manage test cases;
    operators and viewers read.
    """
    client = getattr(request, "tenant", None)
    if client is None:
        return "partner" if partner_membership_of(request.user) is not None else None
    membership = client_membership_of(request.user, client)
    return "client" if membership is not None and membership.role == ClientRole.CLIENT_ADMIN else None


class GovernanceAccess(BasePermission):
    """Read a client's governance (safe methods), or change its draft rules, publish, test (the others).

    Readers and writers per host are `reads_governance` and `governance_layer_for`.
    """

    message = "You have no access to this client's governance."

    def has_permission(self, request, view) -> bool:
        if not reads_governance(request):
            return False
        if request.method in SAFE_METHODS:
            return True
        if governance_layer_for(request) is None:
            self.message = "Your role may read this client's governance but not change it."
            return False
        return True


class IsEvaluationKey(BasePermission):
    """A client's host, and the request carries one of its evaluation keys (not a user session or token).

    Decisions for an outside execution plane are asked for by the deployment's key alone, so a
    person's credentials can never stand in for a deployment.
    """

    message = "Only an evaluation key may ask for decisions: send `Authorization: Bearer tpk_…`."

    def has_permission(self, request, view) -> bool:
        return getattr(request, "tenant", None) is not None and isinstance(request.auth, EvaluationKey)


class ReadsDecisionContents(BasePermission):
    """The decision log's entries (actions, contexts): the client's people and its partner team.

    The vendor sees only counts of a client's decisions, never their contents.
    """

    message = "The vendor sees only counts of a client's decisions, not the decisions."

    def has_permission(self, request, view) -> bool:
        if _on_platform_host(request):
            return partner_membership_of(request.user) is not None
        return True
