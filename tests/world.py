"""The test world: two partners, three client projects (real schemas) and one user per persona.

Built once per test session on the real PostgreSQL test database; each test
runs in a transaction on top of it.
"""

from dataclasses import dataclass

from apps.accounts.models import (
    ClientMembership,
    ClientRole,
    PartnerMembership,
    PartnerRole,
    User,
    VendorRole,
)
from apps.accounts.services import client_engineer_assign
from apps.tenancy import services as tenancy
from apps.tenancy.models import Client, Partner

PASSWORD = "correct-horse-battery"


@dataclass
class World:
    partner_a: Partner
    partner_b: Partner
    client_a: Client  # partner A's; partner A's engineer is assigned to it
    client_a2: Client  # partner A's; no engineer assigned
    client_b: Client  # partner B's
    users: dict[str, User]


def _user(email: str, **extra) -> User:
    return User.objects.create_user(
        email=email, password=PASSWORD, full_name=email.split("@")[0].title(), **extra
    )


def build_world() -> World:
    users: dict[str, User] = {
        "vendor_admin": _user("vendor@example.com", vendor_role=VendorRole.PLATFORM_ADMIN, is_staff=True),
        "support": _user("support@example.com", vendor_role=VendorRole.SUPPORT, is_staff=True),
    }
    partner_a = tenancy.partner_create(name="Partner A", slug="partner-a", actor=None)
    partner_b = tenancy.partner_create(name="Partner B", slug="partner-b", actor=None)
    for key, partner, role in [
        ("partner_a_admin", partner_a, PartnerRole.PARTNER_ADMIN),
        ("partner_a_engineer", partner_a, PartnerRole.PARTNER_ENGINEER),
        ("partner_b_admin", partner_b, PartnerRole.PARTNER_ADMIN),
    ]:
        users[key] = _user(f"{key.replace('_', '.')}@example.com")
        PartnerMembership.objects.create(user=users[key], partner=partner, role=role)

    clients = {}
    for key, partner, slug in [
        ("a", partner_a, "tw-alpha"),
        ("a2", partner_a, "tw-amber"),
        ("b", partner_b, "tw-bravo"),
    ]:
        client = tenancy.client_create(
            partner=partner, name=f"Client {slug}", slug=slug, actor=None, schedule=False
        )
        clients[key] = tenancy.client_provision(client_id=client.pk)
        assert clients[key].status == Client.Status.READY, clients[key].provisioning_error
    client_engineer_assign(
        client=clients["a"], user=users["partner_a_engineer"], actor=users["partner_a_admin"]
    )

    for key, client, role in [
        ("client_a_admin", clients["a"], ClientRole.CLIENT_ADMIN),
        ("client_a_operator", clients["a"], ClientRole.OPERATOR),
        ("client_a_viewer", clients["a"], ClientRole.VIEWER),
        ("client_b_admin", clients["b"], ClientRole.CLIENT_ADMIN),
    ]:
        users[key] = _user(f"{key.replace('_', '.')}@example.com")
        ClientMembership.objects.create(user=users[key], client=client, role=role)
    return World(partner_a, partner_b, clients["a"], clients["a2"], clients["b"], users)
