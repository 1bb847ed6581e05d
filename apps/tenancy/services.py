"""Writes for partners and client projects, including asynchronous client provisioning.

Callers check the actor's access first (accounts.access); these services
validate, write in one transaction and schedule provisioning after commit.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.db import tenant_connection
from apps.core.exceptions import ApplicationError

from . import schemas
from .models import Client, Domain, Partner

logger = logging.getLogger(__name__)
# A client still provisioning after this long lost its task (e.g. the broker was down): it may be retried.
STALE_PROVISIONING = timedelta(minutes=10)


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


@transaction.atomic
def client_set_version_change_approval(*, client: Client, required: bool, actor) -> Client:
    """The client's own setting: upgrades and rollbacks of its deployed agents (including vendor
    rollouts) wait for approval when `required`. Recorded in the audit log."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    client.require_version_change_approval = required
    client.save(update_fields=["require_version_change_approval", "updated_at"])
    return client


# What governance rules read as `tenant.*`, set by the client's partner team.
GOVERNANCE_SETTINGS = ("timezone", "jurisdiction", "own_domains", "allowed_hosts", "attributes")


@transaction.atomic
def client_governance_settings_update(*, client: Client, actor, **fields) -> Client:
    """Set what the client's governance rules read as `tenant.*`: any of GOVERNANCE_SETTINGS.

    Validated with the model's validators (ValidationError per field; nothing is saved when one
    fails); the changes are in the audit log with their before and after values.
    """
    unknown = sorted(set(fields) - set(GOVERNANCE_SETTINGS))
    if unknown:
        raise ApplicationError(f"Not a governance setting: {', '.join(unknown)}.")
    client = Client.objects.select_for_update().get(pk=client.pk)
    for name, value in fields.items():
        setattr(client, name, value.strip() if isinstance(value, str) else value)
    client.full_clean()
    client.save(update_fields=[*fields, "updated_at"])
    return client


def client_domain_for(slug: str) -> str:
    """The client's host name on the platform domain (`<slug>.<PLATFORM_DOMAIN>`)."""
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
    if client.schema_name in schemas.existing_schemas():
        raise ApplicationError(
            "That name was used by an earlier client project; choose another.", field="slug"
        )
    client.save()
    Domain.objects.create(domain=host, tenant=client, is_primary=True)
    if schedule:
        _schedule_provisioning(client)
    return client


@transaction.atomic
def client_retry_provisioning(*, client: Client, actor) -> Client:
    """Put a failed (or stalled) client back into provisioning and schedule it again."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    stale = (
        client.status == Client.Status.PROVISIONING
        and client.updated_at < timezone.now() - STALE_PROVISIONING
    )
    if client.status != Client.Status.FAILED and not stale:
        raise ApplicationError("Only a client whose provisioning failed or stalled can be retried.")
    client.status = Client.Status.PROVISIONING
    client.provisioning_error = ""
    client.save(update_fields=["status", "provisioning_error", "updated_at"])
    _schedule_provisioning(client)
    return client


def _schedule_provisioning(client: Client) -> None:
    from .tasks import provision_client

    # Public schema explicitly: the task must never run inside some tenant's schema.
    # robust: a broker outage must not turn a committed client into an error page; it can be retried.
    transaction.on_commit(
        lambda: provision_client.apply_async(args=[client.pk], headers={"_schema_name": "public"}),
        robust=True,
    )


def client_provision(*, client_id: int) -> Client:
    """Create the client's schema by cloning the template; mark it ready or failed.

    Safe to run twice, even at once: runs for one client are serialised by an
    advisory lock, a ready client is left alone, and an existing schema is kept
    only when it carries this client's marker (a retried run that got that
    far). A schema left by anything else is never adopted, so a new client can
    never inherit another's data.
    """
    with schemas.provisioning_lock(client_id):
        client = Client.objects.get(pk=client_id)
        if client.status == Client.Status.READY:
            return client
        started = time.monotonic()
        marker = _owner_marker(client)
        created = False
        try:
            if client.schema_name in schemas.existing_schemas():
                if schemas.schema_owner_marker(client.schema_name) != marker:
                    raise ApplicationError("A database schema with this client's name already exists.")
            else:
                created = True
                client.create_schema(verbosity=0)
                tenant_connection().set_schema_to_public()
                schemas.mark_schema_owner(client.schema_name, marker)
        except Exception as exc:  # recorded for the partner; a half-made schema of this run is removed
            logger.exception("Provisioning of client %s failed", client.slug)
            tenant_connection().set_schema_to_public()
            if created:
                schemas.drop_schema(client.schema_name)
            client.status = Client.Status.FAILED
            client.provisioning_error = _describe(exc)
            client.save(update_fields=["status", "provisioning_error", "updated_at"])
            return client
        tenant_connection().set_schema_to_public()
        client.status = Client.Status.READY
        client.provisioning_error = ""
        client.provisioned_at = timezone.now()
        client.save(update_fields=["status", "provisioning_error", "provisioned_at", "updated_at"])
        logger.info("Provisioned client %s in %.2fs", client.slug, time.monotonic() - started)
        return client


def _owner_marker(client: Client) -> str:
    return f"triplane client {client.pk}"


def _describe(exc: Exception) -> str:
    """What partners see: no database internals (those go to the server log)."""
    if isinstance(exc, ApplicationError):
        return exc.message
    return (
        f"The client's database schema could not be created ({type(exc).__name__}). "
        "The details are in the server log; retry, or contact vendor support if it fails again."
    )
