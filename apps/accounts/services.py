"""Writes for users and memberships: invitations, team changes, role changes, engineer grants."""

from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import get_public_schema_name, schema_context
from guardian.shortcuts import assign_perm, remove_perm

from apps.core.exceptions import ApplicationError
from apps.tenancy.models import Client, Partner

from .access import WORK_ON_CLIENT, client_admin_count
from .models import ClientMembership, ClientRole, PartnerMembership, PartnerRole, User, VendorRole

INVITE_VALID_DAYS = 7


def set_password_link(*, user: User, base_url: str) -> str:
    """A one-time link to set a password: the token stops working once the password changes."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("accounts:set_password", kwargs={"uidb64": uid, "token": token})
    return base_url.rstrip("/") + path


def _send_invitation(
    *, user: User, inviter: User | None, organisation: str, role_label: str, base_url: str
) -> None:
    # A person who already has a password signs in as usual; a new one sets a password first.
    link = (
        base_url.rstrip("/") + reverse("accounts:login")
        if user.has_usable_password()
        else set_password_link(user=user, base_url=base_url)
    )
    context = {
        "inviter": inviter,
        "organisation": organisation,
        "role_label": role_label,
        "link": link,
        "expires_days": INVITE_VALID_DAYS,
        "has_password": user.has_usable_password(),
    }
    subject = render_to_string("emails/invite_subject.txt", context).strip()
    body = render_to_string("emails/invite.txt", context)
    # Sent after commit so a rolled-back invitation never reaches anyone.
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))


# One answer for every account that cannot be invited, so an invitation form does not
# tell a partner or client anything about accounts outside its own scope.
CANNOT_INVITE = "This person cannot be invited here. If they should be, contact vendor support."


def _user_for_invite(*, email: str, full_name: str) -> User:
    email = User.objects.normalize_email(email.strip()).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, full_name=full_name.strip())
    elif not user.is_active or user.vendor_role:
        raise ApplicationError(CANNOT_INVITE, field="email")
    return user


@transaction.atomic
def partner_member_invite(
    *, partner: Partner, email: str, full_name: str, role: str, actor: User, base_url: str
) -> PartnerMembership:
    """Add a person to a partner's team (creating the account if new) and email them a link."""
    if role not in PartnerRole.values:
        raise ApplicationError("Unknown partner role.", field="role")
    if not partner.is_active:
        raise ApplicationError("This partner is inactive.")
    user = _user_for_invite(email=email, full_name=full_name)
    existing = PartnerMembership.objects.filter(user=user).first()
    if existing is not None and existing.partner_id == partner.pk:
        raise ApplicationError(f"{user.email} already belongs to this team.", field="email")
    if existing is not None:
        raise ApplicationError(CANNOT_INVITE, field="email")
    membership = PartnerMembership(user=user, partner=partner, role=role)
    membership.full_clean()
    membership.save()
    _send_invitation(
        user=user,
        inviter=actor,
        organisation=partner.name,
        role_label=membership.get_role_display(),
        base_url=base_url,
    )
    return membership


@transaction.atomic
def partner_member_remove(*, membership: PartnerMembership, actor: User) -> None:
    """Remove a person from a partner's team, with every client assignment they held there."""
    if membership.user_id == actor.pk:
        raise ApplicationError("You cannot remove yourself from the team.")
    # Lock the partner's admins so two admins removing each other cannot leave none.
    admins = PartnerMembership.objects.select_for_update().filter(
        partner=membership.partner, role=PartnerRole.PARTNER_ADMIN
    )
    if membership.role == PartnerRole.PARTNER_ADMIN and len(admins) <= 1:
        raise ApplicationError("A partner needs at least one partner admin.")
    with schema_context(get_public_schema_name()):
        for client in membership.partner.clients.all():
            remove_perm(WORK_ON_CLIENT, membership.user, client)
    membership.delete()


def client_engineer_assign(*, client: Client, user: User, actor: User) -> None:
    """Let a partner engineer of the client's partner work on this client project."""
    membership = PartnerMembership.objects.filter(user=user, partner=client.partner).first()
    if membership is None or membership.role != PartnerRole.PARTNER_ENGINEER:
        raise ApplicationError("Only engineers of this client's partner can be assigned.")
    with schema_context(get_public_schema_name()):
        assign_perm(WORK_ON_CLIENT, user, client)


def client_engineer_unassign(*, client: Client, user: User, actor: User) -> None:
    """Withdraw a partner engineer's access to this client project."""
    with schema_context(get_public_schema_name()):
        remove_perm(WORK_ON_CLIENT, user, client)


@transaction.atomic
def client_member_invite(
    *, client: Client, email: str, full_name: str, role: str, actor: User | None, base_url: str
) -> ClientMembership:
    """Give a person a role in a client (creating the account if new) and email them a link."""
    if role not in ClientRole.values:
        raise ApplicationError("Unknown client role.", field="role")
    user = _user_for_invite(email=email, full_name=full_name)
    if ClientMembership.objects.filter(user=user, client=client).exists():
        raise ApplicationError(f"{user.email} is already a user of {client.name}.", field="email")
    membership = ClientMembership(user=user, client=client, role=role)
    membership.full_clean()
    membership.save()
    _send_invitation(
        user=user,
        inviter=actor,
        organisation=client.name,
        role_label=membership.get_role_display(),
        base_url=base_url,
    )
    return membership


@transaction.atomic
def client_member_set_role(*, membership: ClientMembership, role: str, actor: User) -> ClientMembership:
    """Change a client user's role; a client always keeps at least one client admin."""
    if role not in ClientRole.values:
        raise ApplicationError("Unknown client role.", field="role")
    membership = ClientMembership.objects.select_for_update().get(pk=membership.pk)
    if (
        membership.role == ClientRole.CLIENT_ADMIN
        and role != ClientRole.CLIENT_ADMIN
        and client_admin_count(membership.client) <= 1
    ):
        raise ApplicationError("A client needs at least one client admin.")
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def client_member_remove(*, membership: ClientMembership, actor: User) -> None:
    """Remove a person's access to a client (their account stays)."""
    if membership.user_id == actor.pk:
        raise ApplicationError("You cannot remove yourself.")
    if membership.role == ClientRole.CLIENT_ADMIN and client_admin_count(membership.client) <= 1:
        raise ApplicationError("A client needs at least one client admin.")
    membership.delete()


def vendor_user_create(*, email: str, full_name: str, role: str, password: str | None = None) -> User:
    """Create vendor staff (platform admin or support); they get Django admin access."""
    if role not in VendorRole.values:
        raise ApplicationError("Unknown vendor role.", field="role")
    return User.objects.create_user(
        email=email, full_name=full_name, password=password, vendor_role=role, is_staff=True
    )
