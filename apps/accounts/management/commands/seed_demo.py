"""Seed demo data: vendor staff, two partners with their teams, three client projects with users.

Initech also gets governance demo data (seed_governance_demo); Globex a helpdesk database, a deployed
service-desk agent with rules and a few tasks (seed_runtime_demo).

Idempotent: running it again keeps what exists and fills in what is missing.
"""

from typing import TypedDict

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

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
from apps.tenancy.models import Client, Domain, Partner

DEMO_PASSWORD = "triplane-demo"


class DemoPartner(TypedDict):
    slug: str
    name: str
    clients: list[tuple[str, str]]  # (slug, name) of each client project


PARTNERS: list[DemoPartner] = [
    {
        "slug": "northwind",
        "name": "Northwind Partners",
        "clients": [("acme", "Acme Corporation"), ("globex", "Globex Industries")],
    },
    {"slug": "bluepeak", "name": "Bluepeak Consulting", "clients": [("initech", "Initech")]},
]


class Command(BaseCommand):
    help = "Create demo users, partners and client projects (idempotent) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEMO_PASSWORD, help="Password for every demo account.")

    def execute(self, *args, **options):
        # Demo accounts with a published password must never appear on a production system.
        if settings.TRIPLANE_ENV == "production" and options.get("password", DEMO_PASSWORD) == DEMO_PASSWORD:
            raise CommandError("In production, seed_demo needs --password (the demo password is public).")
        return super().execute(*args, **options)

    def handle(self, *args, password: str, **options):
        call_command("seed_factory")
        logins: list[tuple[str, str, str]] = []

        def user(email: str, name: str, where: str, **extra) -> User:
            account = User.objects.filter(email=email).first()
            if account is None:
                account = User.objects.create_user(email=email, password=password, full_name=name, **extra)
            logins.append((where, extra.get("vendor_role") or "", email))
            return account

        with transaction.atomic():
            user(
                "admin@triplane.local",
                "Vera Vendor",
                "/vendor/",
                vendor_role=VendorRole.PLATFORM_ADMIN,
                is_staff=True,
            )
            user(
                "support@triplane.local",
                "Sam Support",
                "/admin/",
                vendor_role=VendorRole.SUPPORT,
                is_staff=True,
            )

        to_provision: list[Client] = []
        for spec in PARTNERS:
            with transaction.atomic():
                partner = Partner.objects.filter(slug=spec["slug"]).first() or tenancy.partner_create(
                    name=spec["name"],
                    slug=spec["slug"],
                    contact_email=f"team@{spec['slug']}.test",
                    actor=None,
                )
                admin = user(f"admin@{spec['slug']}.test", f"{spec['name']} Admin", "/partner/")
                engineer = user(f"engineer@{spec['slug']}.test", f"{spec['name']} Engineer", "/partner/")
                PartnerMembership.objects.get_or_create(
                    user=admin, defaults={"partner": partner, "role": PartnerRole.PARTNER_ADMIN}
                )
                PartnerMembership.objects.get_or_create(
                    user=engineer, defaults={"partner": partner, "role": PartnerRole.PARTNER_ENGINEER}
                )
            for index, (slug, name) in enumerate(spec["clients"]):
                with transaction.atomic():
                    client = Client.objects.filter(slug=slug).first()
                    if client is None:
                        client = tenancy.client_create(
                            partner=partner, name=name, slug=slug, actor=admin, schedule=False
                        )
                    elif not client.domains.exists():
                        Domain.objects.create(
                            domain=tenancy.client_domain_for(slug), tenant=client, is_primary=True
                        )
                    if index == 0:
                        # The engineer works on the partner's first client only, to show scoping.
                        client_engineer_assign(client=client, user=engineer, actor=admin)
                    for role in ClientRole.values:
                        short = {"client_admin": "admin"}.get(role, role)
                        member = user(f"{short}@{slug}.test", f"{name} {short.title()}", f"{slug} dashboard")
                        ClientMembership.objects.get_or_create(
                            user=member, client=client, defaults={"role": role}
                        )
                to_provision.append(client)

        for client in to_provision:
            if client.status != Client.Status.READY:
                client = tenancy.client_provision(client_id=client.pk)
            self.stdout.write(
                f"client {client.slug:10} {client.status:12} http://{client.primary_host}:8000/"
            )

        # Initech (Bluepeak's client) gets a deployed agent, a published ruleset and a few decisions.
        call_command("seed_governance_demo", client="initech", stdout=self.stdout)
        # Globex (Northwind's second client) gets a helpdesk database, its mapping, rules and a few tasks.
        call_command("seed_runtime_demo", client="globex", stdout=self.stdout)

        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password: {password}):"))
        for where, _role, email in logins:
            self.stdout.write(f"  {email:28} {where}")
