"""The test world: two partners, three client projects (real schemas) and one user per persona.

Built once per test session on the real PostgreSQL test database; each test
runs in a transaction on top of it.
"""

from dataclasses import dataclass

from django.core.management import call_command

from apps.accounts.models import ClientRole, PartnerRole, User, VendorRole
from apps.accounts.services import client_engineer_assign
from apps.tenancy import services as tenancy
from apps.tenancy.models import Client, Partner
from tests.factories import (
    PASSWORD,
    ClientFactory,
    ClientMembershipFactory,
    PartnerFactory,
    PartnerMembershipFactory,
    UserFactory,
)

__all__ = ["PASSWORD", "World", "build_world"]


@dataclass
class World:
    partner_a: Partner
    partner_b: Partner
    client_a: Client  # partner A's; partner A's engineer is assigned to it
    client_a2: Client  # partner A's; no engineer assigned
    client_b: Client  # partner B's
    users: dict[str, User]


def _email(persona: str) -> str:
    return f"{persona.replace('_', '.')}@example.com"


def build_world() -> World:
    call_command("seed_factory", verbosity=0)
    users: dict[str, User] = {
        "vendor_admin": UserFactory(
            email="vendor@example.com", vendor_role=VendorRole.PLATFORM_ADMIN, is_staff=True
        ),
        "support": UserFactory(email="support@example.com", vendor_role=VendorRole.SUPPORT, is_staff=True),
    }
    partner_a = PartnerFactory(name="Partner A", slug="partner-a")
    partner_b = PartnerFactory(name="Partner B", slug="partner-b")
    for persona, partner, role in [
        ("partner_a_admin", partner_a, PartnerRole.PARTNER_ADMIN),
        ("partner_a_engineer", partner_a, PartnerRole.PARTNER_ENGINEER),
        ("partner_b_admin", partner_b, PartnerRole.PARTNER_ADMIN),
    ]:
        users[persona] = PartnerMembershipFactory(
            user__email=_email(persona), partner=partner, role=role
        ).user

    clients = {}
    for key, partner, slug in [
        ("a", partner_a, "tw-alpha"),
        ("a2", partner_a, "tw-amber"),
        ("b", partner_b, "tw-bravo"),
    ]:
        client = ClientFactory(partner=partner, name=f"Client {slug}", slug=slug)
        clients[key] = tenancy.client_provision(client_id=client.pk)
        assert clients[key].status == Client.Status.READY, clients[key].provisioning_error
    client_engineer_assign(
        client=clients["a"], user=users["partner_a_engineer"], actor=users["partner_a_admin"]
    )

    for persona, client, role in [
        ("client_a_admin", clients["a"], ClientRole.CLIENT_ADMIN),
        ("client_a_operator", clients["a"], ClientRole.OPERATOR),
        ("client_a_viewer", clients["a"], ClientRole.VIEWER),
        ("client_b_admin", clients["b"], ClientRole.CLIENT_ADMIN),
    ]:
        users[persona] = ClientMembershipFactory(user__email=_email(persona), client=client, role=role).user
    return World(partner_a, partner_b, clients["a"], clients["a2"], clients["b"], users)
