"""Who may see what: scoped selectors and `access_<entity>` helpers.

Every helper takes the acting user and returns only what that user may see;
`access_*` raise Http404 for objects outside the actor's scope, so a foreign
object is indistinguishable from a missing one.
"""

from django.db.models import QuerySet
from django.http import Http404
from django_tenants.utils import get_public_schema_name, schema_context
from guardian.shortcuts import get_objects_for_user

from apps.tenancy.models import Client, Partner

from .models import ClientMembership, ClientRole, PartnerMembership, PartnerRole, User, VendorRole

WORK_ON_CLIENT = "tenancy.work_on_client"


def is_platform_admin(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.vendor_role == VendorRole.PLATFORM_ADMIN)


def partner_membership_of(user: User) -> PartnerMembership | None:
    """The user's membership in an active partner, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    return (
        PartnerMembership.objects.select_related("partner").filter(user=user, partner__is_active=True).first()
    )


def client_membership_of(user: User, client: Client | None) -> ClientMembership | None:
    """The user's membership in `client`, or None."""
    if client is None or not user.is_authenticated or not user.is_active:
        return None
    return ClientMembership.objects.filter(user=user, client=client).first()


# --- Partners ---------------------------------------------------------------


def partner_list(*, actor: User) -> QuerySet[Partner]:
    """Partners the actor may manage: all of them for platform admins, none otherwise."""
    if is_platform_admin(actor):
        return Partner.objects.all()
    return Partner.objects.none()


def access_partner(actor: User, pk: int) -> Partner:
    partner = partner_list(actor=actor).filter(pk=pk).first()
    if partner is None:
        raise Http404("No such partner.")
    return partner


# --- Client projects --------------------------------------------------------


def client_list(*, actor: User, filters: dict | None = None) -> QuerySet[Client]:
    """Client projects visible to the actor.

    Platform admins see every client; a partner admin sees its partner's
    clients; a partner engineer sees only the clients it is assigned to
    (a guardian object grant on the client, which lives in the public schema).
    """
    filters = filters or {}
    qs = Client.objects.select_related("partner").exclude(schema_name=get_public_schema_name())
    if not is_platform_admin(actor):
        membership = partner_membership_of(actor)
        if membership is None:
            return Client.objects.none()
        qs = qs.filter(partner=membership.partner)
        if membership.role == PartnerRole.PARTNER_ENGINEER:
            with schema_context(get_public_schema_name()):
                assigned = list(
                    get_objects_for_user(
                        actor, WORK_ON_CLIENT, klass=qs, accept_global_perms=False
                    ).values_list("pk", flat=True)
                )
            qs = qs.filter(pk__in=assigned)
    if filters.get("partner"):
        qs = qs.filter(partner_id=filters["partner"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("q"):
        qs = qs.filter(name__icontains=filters["q"])
    return qs


def access_client(actor: User, pk: int) -> Client:
    client = client_list(actor=actor).filter(pk=pk).first()
    if client is None:
        raise Http404("No such client project.")
    return client


def client_engineers(*, client: Client) -> list[User]:
    """Partner engineers assigned to work on `client`."""
    with schema_context(get_public_schema_name()):
        engineers = User.objects.filter(
            partner_membership__partner=client.partner,
            partner_membership__role=PartnerRole.PARTNER_ENGINEER,
        )
        return [user for user in engineers if _has_client_grant(user, client)]


def _has_client_grant(user: User, client: Client) -> bool:
    from guardian.core import ObjectPermissionChecker

    # A fresh checker each time: guardian caches grants per checker, across schemas.
    return ObjectPermissionChecker(user).has_perm("work_on_client", client)


# --- Partner team -----------------------------------------------------------


def partner_member_list(*, actor: User) -> QuerySet[PartnerMembership]:
    """The actor's own partner team."""
    membership = partner_membership_of(actor)
    if membership is None:
        return PartnerMembership.objects.none()
    return PartnerMembership.objects.select_related("user").filter(partner=membership.partner)


def access_partner_member(actor: User, pk: int) -> PartnerMembership:
    membership = partner_member_list(actor=actor).filter(pk=pk).first()
    if membership is None:
        raise Http404("No such team member.")
    return membership


# --- Client users -----------------------------------------------------------


def client_member_list(*, client: Client) -> QuerySet[ClientMembership]:
    return ClientMembership.objects.select_related("user").filter(client=client)


def access_client_member(actor: User, client: Client, pk: int) -> ClientMembership:
    """A membership of `client`, visible to that client's own users only."""
    if client_membership_of(actor, client) is None:
        raise Http404("No such user.")
    membership = client_member_list(client=client).filter(pk=pk).first()
    if membership is None:
        raise Http404("No such user.")
    return membership


def client_admin_count(client: Client) -> int:
    """Client admins of `client`, row-locked inside a transaction so concurrent demotions serialise."""
    return len(
        ClientMembership.objects.select_for_update().filter(client=client, role=ClientRole.CLIENT_ADMIN)
    )
