"""factory_boy factories for the shared models (users, partners, memberships, client projects).

Client projects are created through the service (with their domain) and left
in `provisioning`; call `tenancy.services.client_provision` for a real schema.
"""

import factory

from apps.accounts.models import ClientMembership, ClientRole, PartnerMembership, PartnerRole, User
from apps.tenancy import services as tenancy
from apps.tenancy.models import Client, Partner

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.LazyAttribute(lambda user: user.email.split("@")[0].replace(".", " ").title())
    password = factory.django.Password(PASSWORD)


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")
    slug = factory.Sequence(lambda n: f"partner-{n}")


class PartnerMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerMembership

    user = factory.SubFactory(UserFactory)
    partner = factory.SubFactory(PartnerFactory)
    role = PartnerRole.PARTNER_ENGINEER


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    partner = factory.SubFactory(PartnerFactory)
    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return tenancy.client_create(
            partner=kwargs["partner"], name=kwargs["name"], slug=kwargs["slug"], actor=None, schedule=False
        )


class ClientMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientMembership

    user = factory.SubFactory(UserFactory)
    client = factory.SubFactory(ClientFactory)
    role = ClientRole.VIEWER
