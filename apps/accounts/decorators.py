"""One access decorator per portal: login, portal membership, role.

Each decorated view is marked with the portal it belongs to; an architecture
test walks every URL pattern and fails on a portal view without its marker.
Anonymous visitors are sent to the login page; signed-in users without the
portal's role get 403.
"""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeGuard

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .access import client_membership_of, is_platform_admin, partner_membership_of
from .models import ClientMembership, ClientRole, PartnerMembership, PartnerRole, User

View = Callable[..., HttpResponse]
PORTAL_ATTR = "triplane_portal"


class AuthenticatedRequest(HttpRequest):
    """A request from a signed-in user (`@login_required`, or a portal decorator past its login check)."""

    user: User


class _PortalCheckRequest(AuthenticatedRequest):
    """What a portal's check sees, and sets: the membership it found (None when it refuses)."""

    partner_membership: PartnerMembership | None
    client_membership: ClientMembership | None


def _signed_in(request: HttpRequest) -> TypeGuard[_PortalCheckRequest]:
    return request.user.is_authenticated


def _portal_decorator(portal: str, allow: Callable[[_PortalCheckRequest], bool]) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not _signed_in(request):
                return redirect_to_login(request.get_full_path())
            if not allow(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        setattr(wrapper, PORTAL_ATTR, portal)
        return wrapper

    return decorator


def vendor_portal(view: View) -> View:
    """Super-admin portal: vendor platform admins only."""

    def allow(request: _PortalCheckRequest) -> bool:
        return getattr(request, "tenant", None) is None and is_platform_admin(request.user)

    return _portal_decorator("superadmin", allow)(view)


def partner_portal(*, roles: Iterable[str] = PartnerRole.values) -> Callable[[View], View]:
    """Management portal: members of an active partner with one of `roles`.

    Sets `request.partner_membership`.
    """
    allowed = frozenset(roles)

    def allow(request: _PortalCheckRequest) -> bool:
        membership = partner_membership_of(request.user) if getattr(request, "tenant", None) is None else None
        request.partner_membership = membership
        return membership is not None and membership.role in allowed

    return _portal_decorator("management", allow)


def client_portal(*, roles: Iterable[str] = ClientRole.values) -> Callable[[View], View]:
    """Client dashboard: members of the client whose host this is, with one of `roles`.

    Sets `request.client_membership`.
    """
    allowed = frozenset(roles)

    def allow(request: _PortalCheckRequest) -> bool:
        membership = client_membership_of(request.user, getattr(request, "tenant", None))
        request.client_membership = membership
        return membership is not None and membership.role in allowed

    return _portal_decorator("dashboard", allow)
