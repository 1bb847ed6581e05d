"""API permission classes mirroring the portals' access rules."""

from rest_framework.permissions import BasePermission

from apps.accounts.access import client_membership_of


class IsClientMember(BasePermission):
    """The request is on a client's host and the user has a role in that client."""

    message = "You have no role in this client."

    def has_permission(self, request, view) -> bool:
        client = getattr(request, "tenant", None)
        return client is not None and client_membership_of(request.user, client) is not None
