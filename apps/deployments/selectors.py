"""Reads for deployments (client schemas) and rollouts (public schema).

Deployments live in each client's schema: every selector takes the client,
switches into its schema with `tenant_context` and returns evaluated lists, so
nothing is fetched later from whatever schema happens to be active then.
Callers check the actor's access to the client first (accounts.access).
"""

import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.http import Http404
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context
from psycopg import sql

from apps.factory.models import AgentVariant, Rollout, RolloutTarget
from apps.tenancy.models import Client

from .models import Deployment, DeploymentTransition

logger = logging.getLogger(__name__)

# Deployment instances handed out here remember the schema they were read from, so a
# service given a deployment of one client together with another client refuses it.
SCHEMA_ATTR = "_client_schema"

# Which actions each status allows (the state machine of services.deployments; kept here
# so portals can show the right buttons without importing the services).
ACTIONS_BY_STATUS: dict[str, tuple[str, ...]] = {
    Deployment.Status.DRAFT: ("submit",),
    Deployment.Status.SUBMITTED: ("approve", "reject"),
    Deployment.Status.APPROVED: ("deploy",),
    Deployment.Status.REJECTED: ("revise",),
    Deployment.Status.DEPLOYED: ("pause", "retire", "change_version"),
    Deployment.Status.PAUSED: ("resume", "retire", "change_version"),
    Deployment.Status.RETIRED: (),
}

_RELATED = ("variant", "version", "pending_version", "created_by", "submitted_by", "pending_requested_by")


def mark_client(deployment: Deployment, client: Client) -> Deployment:
    """Remember which client's schema `deployment` was read from."""
    setattr(deployment, SCHEMA_ATTR, client.schema_name)
    return deployment


def deployment_list(*, client: Client) -> list[Deployment]:
    """Every deployment of `client`, by name, with variant, versions and people loaded."""
    with tenant_context(client):
        deployments = list(Deployment.objects.select_related(*_RELATED).order_by("name", "pk"))
    return [mark_client(deployment, client) for deployment in deployments]


def deployment_get(*, client: Client, pk: int | str) -> Deployment:
    """One deployment of `client`; Http404 when it does not exist there."""
    with tenant_context(client):
        try:
            deployment = Deployment.objects.select_related(*_RELATED).filter(pk=int(pk)).first()
        except (TypeError, ValueError):
            deployment = None
    if deployment is None:
        raise Http404("No such deployment.")
    return mark_client(deployment, client)


def deployment_history(*, client: Client, deployment: Deployment) -> list[DeploymentTransition]:
    """The deployment's transitions, newest first."""
    _check_same_client(deployment, client)
    with tenant_context(client):
        return list(
            DeploymentTransition.objects.filter(deployment_id=deployment.pk)
            .select_related("actor", "from_version", "to_version")
            .order_by("-created_at", "-pk")
        )


def deployment_actions(*, deployment: Deployment) -> list[str]:
    """The actions the deployment's status allows (whether the actor may take them is the caller's check).

    `approve_change` / `reject_change` appear while a version change waits for approval.
    """
    actions = list(ACTIONS_BY_STATUS.get(deployment.status, ()))
    if deployment.pending_version_id and "change_version" in actions:
        actions.remove("change_version")
        actions += ["approve_change", "reject_change"]
    return actions


def client_deployments_for_variant(*, client: Client, variant: AgentVariant) -> list[Deployment]:
    """The client's deployments of one variant (any status), by name."""
    with tenant_context(client):
        deployments = list(
            Deployment.objects.select_related(*_RELATED).filter(variant_id=variant.pk).order_by("name", "pk")
        )
    return [mark_client(deployment, client) for deployment in deployments]


def ready_clients() -> list[Client]:
    """Client projects whose schema is provisioned (the ones that can hold deployments)."""
    with schema_context(get_public_schema_name()):
        return list(
            Client.objects.filter(status=Client.Status.READY)
            .exclude(schema_name=get_public_schema_name())
            .order_by("pk")
        )


# Client schemas per counting statement: one statement for any ordinary fleet, split past
# this so PostgreSQL never has to plan a UNION over thousands of tables at once.
COUNT_SCHEMAS_PER_STATEMENT = 500


def deployment_counts_by_variant() -> dict[int, int]:
    """Variant id → number of non-retired deployments across every ready client.

    One statement (a UNION ALL over the client schemas' deployment tables) per
    `COUNT_SCHEMAS_PER_STATEMENT` clients. When a statement fails (a schema that
    cannot be read), its clients are counted one by one instead, and a client
    that still fails is skipped and logged, so one broken client does not take
    the factory home down.
    """
    clients = ready_clients()
    counts: dict[int, int] = {}
    for start in range(0, len(clients), COUNT_SCHEMAS_PER_STATEMENT):
        chunk = clients[start : start + COUNT_SCHEMAS_PER_STATEMENT]
        try:
            rows = _count_in_one_statement(chunk)
        except DatabaseError:
            logger.warning(
                "Counting deployments in one statement failed; counting client by client", exc_info=True
            )
            rows = _count_client_by_client(chunk)
        for variant_id, n in rows:
            counts[variant_id] = counts.get(variant_id, 0) + n
    return counts


def _count_in_one_statement(clients: list[Client]) -> list[tuple[int, int]]:
    table = Deployment._meta.db_table
    retired = sql.Literal(str(Deployment.Status.RETIRED))
    selects = [
        sql.SQL("SELECT variant_id FROM {table} WHERE status <> {retired}").format(
            table=sql.Identifier(client.schema_name, table), retired=retired
        )
        for client in clients
    ]
    if not selects:
        return []
    query = sql.SQL("SELECT variant_id, count(*) FROM ({union}) AS live GROUP BY variant_id").format(
        union=sql.SQL(" UNION ALL ").join(selects)
    )
    # A savepoint, so a failure leaves the caller's transaction usable for the fallback.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection))
        return [(variant_id, n) for variant_id, n in cursor.fetchall()]


def _count_client_by_client(clients: list[Client]) -> list[tuple[int, int]]:
    rows: list[tuple[int, int]] = []
    for client in clients:
        try:
            with tenant_context(client), transaction.atomic():
                rows += list(
                    Deployment.objects.exclude(status=Deployment.Status.RETIRED)
                    .values_list("variant_id")
                    .annotate(n=Count("pk"))
                    .order_by()
                )
        except DatabaseError:
            logger.warning("Could not count the deployments of client %s", client.slug, exc_info=True)
    return rows


# --- Rollouts (public schema) ------------------------------------------------------


def rollout_list(*, variant: AgentVariant | None = None) -> list[Rollout]:
    """Rollouts, newest first, optionally of one variant."""
    with schema_context(get_public_schema_name()):
        rollouts = Rollout.objects.select_related("variant", "target_version", "created_by").annotate(
            target_count=Count("targets")
        )
        if variant is not None:
            rollouts = rollouts.filter(variant=variant)
        return list(rollouts.order_by("-created_at", "-pk"))


def rollout_get(*, pk: int | str) -> Rollout:
    """One rollout; Http404 when absent."""
    with schema_context(get_public_schema_name()):
        try:
            rollout = (
                Rollout.objects.select_related("variant", "target_version", "created_by")
                .filter(pk=int(pk))
                .first()
            )
        except (TypeError, ValueError):
            rollout = None
    if rollout is None:
        raise Http404("No such rollout.")
    return rollout


def rollout_targets(*, rollout: Rollout) -> list[RolloutTarget]:
    """The rollout's per-client results, by client name."""
    with schema_context(get_public_schema_name()):
        return list(
            RolloutTarget.objects.filter(rollout=rollout)
            .select_related("client", "client__partner")
            .order_by("client__name", "pk")
        )


def _check_same_client(deployment: Deployment, client: Client) -> None:
    schema = getattr(deployment, SCHEMA_ATTR, None)
    if schema is not None and schema != client.schema_name:
        raise Http404("No such deployment.")
