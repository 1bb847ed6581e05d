"""Writes for partners and client projects, including asynchronous client provisioning.

Callers check the actor's access first (accounts.access); these services
validate, write in one transaction and schedule provisioning after commit.
"""

import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_exists

from apps.core.exceptions import ApplicationError

from .models import Client, Domain, Partner

logger = logging.getLogger(__name__)


def partner_create(*, name: str, slug: str, contact_email: str = "", actor) -> Partner:
    """Register a delivery partner."""
    partner = Partner(name=name.strip(), slug=slug.strip().lower(), contact_email=contact_email.strip())
    partner.full_clean()
    partner.save()
    return partner


def partner_update(*, partner: Partner, name: str, contact_email: str, actor) -> Partner:
    """Change a partner's name or contact address (the slug is permanent)."""
    partner.name = name.strip()
    partner.contact_email = contact_email.strip()
    partner.full_clean()
    partner.save(update_fields=["name", "contact_email", "updated_at"])
    return partner


def partner_set_active(*, partner: Partner, is_active: bool, actor) -> Partner:
    """Deactivate (or reactivate) a partner; its team loses management-portal access, clients keep running."""
    partner.is_active = is_active
    partner.save(update_fields=["is_active", "updated_at"])
    return partner


def client_domain_for(slug: str) -> str:
    return f"{slug}.{settings.PLATFORM_DOMAIN}"


@transaction.atomic
def client_create(*, partner: Partner, name: str, slug: str, actor, schedule: bool = True) -> Client:
    """Create a client project and schedule its schema provisioning (cloned from the template).

    The client is `provisioning` until the worker has created its schema. With
    `schedule=False` the caller runs `client_provision` itself (seeding, benchmarks).
    """
    if not partner.is_active:
        raise ApplicationError("This partner is inactive; it cannot create client projects.")
    slug = slug.strip().lower()
    client = Client(
        partner=partner,
        name=name.strip(),
        slug=slug,
        schema_name=Client.schema_name_for(slug),
        status=Client.Status.PROVISIONING,
        created_by=actor,
    )
    client.full_clean()
    host = client_domain_for(slug)
    if Domain.objects.filter(domain=host).exists():
        raise ApplicationError("That host name is already in use.", field="slug")
    client.save()
    Domain.objects.create(domain=host, tenant=client, is_primary=True)
    if schedule:
        _schedule_provisioning(client)
    return client


@transaction.atomic
def client_retry_provisioning(*, client: Client, actor) -> Client:
    """Put a failed client back into provisioning and schedule it again."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.status != Client.Status.FAILED:
        raise ApplicationError("Only a client whose provisioning failed can be retried.")
    client.status = Client.Status.PROVISIONING
    client.provisioning_error = ""
    client.save(update_fields=["status", "provisioning_error", "updated_at"])
    _schedule_provisioning(client)
    return client


def _schedule_provisioning(client: Client) -> None:
    from .tasks import provision_client

    # Public schema explicitly: the task must never run inside some tenant's schema.
    transaction.on_commit(
        lambda: provision_client.apply_async(args=[client.pk], headers={"_schema_name": "public"})
    )


def client_provision(*, client_id: int) -> Client:
    """Create the client's schema by cloning the template; mark it ready or failed.

    Idempotent: a ready client is left alone, and a schema that already exists
    (a retried task whose first run got that far) is kept.
    """
    client = Client.objects.get(pk=client_id)
    if client.status == Client.Status.READY:
        return client
    started = time.monotonic()
    try:
        client.create_schema(check_if_exists=True, verbosity=0)
    except Exception as exc:  # any failure is recorded for the partner and the schema removed
        logger.exception("Provisioning of client %s failed", client.slug)
        connection.set_schema_to_public()
        _drop_schema_if_exists(client.schema_name)
        client.status = Client.Status.FAILED
        client.provisioning_error = _describe(exc)
        client.save(update_fields=["status", "provisioning_error", "updated_at"])
        return client
    connection.set_schema_to_public()
    client.status = Client.Status.READY
    client.provisioning_error = ""
    client.provisioned_at = timezone.now()
    client.save(update_fields=["status", "provisioning_error", "provisioned_at", "updated_at"])
    logger.info("Provisioned client %s in %.2fs", client.slug, time.monotonic() - started)
    return client


def _describe(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:500]


def _drop_schema_if_exists(schema_name: str) -> None:
    if schema_name in ("public", settings.TENANT_BASE_SCHEMA) or not schema_exists(schema_name):
        return
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{schema_name}" CASCADE')
