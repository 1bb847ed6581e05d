"""Upgrades and rollbacks: the pin moves at once, or waits for approval when the client requires it."""

import pytest

from apps.core.exceptions import ApplicationError
from apps.deployments import services
from apps.deployments.models import Deployment

from .conftest import fresh, last_transition, put_deployment, snapshot

S = Deployment.Status


@pytest.fixture
def requires_approval(world):
    world.client_a.require_version_change_approval = True
    world.client_a.save(update_fields=["require_version_change_approval"])
    return world.client_a


def test_upgrade_then_rollback_move_the_pin(world, agent):
    client, engineer = world.client_a, world.users["partner_a_engineer"]
    deployment = put_deployment(client, agent.v100)

    outcome = services.deployment_change_version(
        client=client, deployment=deployment, version=agent.v200, actor=engineer, reason="New workflows"
    )
    assert outcome == "moved"
    assert fresh(client, deployment).version_id == agent.v200.pk
    step = last_transition(client, deployment)
    assert (step.action, step.from_version_id, step.to_version_id, step.actor_id, step.reason) == (
        "upgrade",
        agent.v100.pk,
        agent.v200.pk,
        engineer.pk,
        "New workflows",
    )
    assert (step.from_status, step.to_status) == (S.DEPLOYED, S.DEPLOYED)

    outcome = services.deployment_change_version(
        client=client, deployment=deployment, version=agent.v110, actor=engineer
    )
    assert outcome == "moved"
    step = last_transition(client, deployment)
    assert (step.action, step.from_version_id, step.to_version_id) == (
        "rollback",
        agent.v200.pk,
        agent.v110.pk,
    )


@pytest.mark.parametrize(
    ("version_name", "message"),
    [
        ("v100", "already on version 1.0.0"),
        ("draft", "only published versions"),
        ("foreign", "version of this deployment's agent variant"),
    ],
)
def test_refused_versions_change_nothing(world, agent, version_name, message):
    deployment = put_deployment(world.client_a, agent.v100)
    before = snapshot(world.client_a, deployment)
    with pytest.raises(ApplicationError, match=message):
        services.deployment_change_version(
            client=world.client_a, deployment=deployment, version=getattr(agent, version_name), actor=None
        )
    assert snapshot(world.client_a, deployment) == before


def test_with_the_client_setting_the_change_waits_for_approval(world, agent, requires_approval):
    client, engineer, admin = (
        requires_approval,
        world.users["partner_a_engineer"],
        world.users["client_a_admin"],
    )
    deployment = put_deployment(client, agent.v100)

    outcome = services.deployment_change_version(
        client=client, deployment=deployment, version=agent.v200, actor=engineer, reason="Please"
    )
    assert outcome == "needs_approval"
    waiting = fresh(client, deployment)
    assert waiting.version_id == agent.v100.pk  # not moved yet
    assert (waiting.pending_version_id, waiting.pending_requested_by_id) == (agent.v200.pk, engineer.pk)
    step = last_transition(client, deployment)
    assert (step.action, step.from_version_id, step.to_version_id) == (
        "version_change_requested",
        agent.v100.pk,
        agent.v200.pk,
    )

    # Only one change waits at a time.
    before = snapshot(client, deployment)
    with pytest.raises(ApplicationError, match=r"already has a change to 2\.0\.0 waiting"):
        services.deployment_change_version(
            client=client, deployment=deployment, version=agent.v110, actor=admin
        )
    assert snapshot(client, deployment) == before

    services.deployment_approve_change(client=client, deployment=deployment, actor=admin, reason="Go")
    approved = fresh(client, deployment)
    assert approved.version_id == agent.v200.pk
    assert approved.pending_version_id is None and approved.pending_requested_by_id is None
    step = last_transition(client, deployment)
    assert (step.action, step.from_version_id, step.to_version_id, step.actor_id, step.reason) == (
        "version_change_approved",
        agent.v100.pk,
        agent.v200.pk,
        admin.pk,
        "Go",
    )


def test_a_rejected_change_leaves_the_pin(world, agent, requires_approval):
    client, engineer = requires_approval, world.users["partner_a_engineer"]
    deployment = put_deployment(client, agent.v110, status=S.PAUSED)
    assert (
        services.deployment_change_version(
            client=client, deployment=deployment, version=agent.v100, actor=engineer
        )
        == "needs_approval"
    )
    before = snapshot(client, deployment)
    with pytest.raises(ApplicationError, match="Give a reason"):
        services.deployment_reject_change(
            client=client, deployment=deployment, actor=world.users["vendor_admin"], reason=""
        )
    assert snapshot(client, deployment) == before

    services.deployment_reject_change(
        client=client, deployment=deployment, actor=world.users["vendor_admin"], reason="Not during close"
    )
    rejected = fresh(client, deployment)
    assert (rejected.version_id, rejected.pending_version_id, rejected.status) == (
        agent.v110.pk,
        None,
        S.PAUSED,
    )
    step = last_transition(client, deployment)
    assert (step.action, step.to_version_id, step.reason) == (
        "version_change_rejected",
        agent.v100.pk,
        "Not during close",
    )
    # Nothing waits any more: a new change may be asked for.
    assert (
        services.deployment_change_version(
            client=client, deployment=deployment, version=agent.v200, actor=engineer
        )
        == "needs_approval"
    )


def test_deciding_without_a_waiting_change_is_refused(world, agent):
    deployment = put_deployment(world.client_a, agent.v100)
    for service, extra in [
        (services.deployment_approve_change, {}),
        (services.deployment_reject_change, {"reason": "No"}),
    ]:
        with pytest.raises(ApplicationError, match="no version change waiting"):
            service(
                client=world.client_a, deployment=deployment, actor=world.users["client_a_admin"], **extra
            )


def test_the_setting_is_read_now_not_from_a_stale_client(world, agent, requires_approval):
    from apps.tenancy.models import Client

    stale = Client.objects.get(pk=world.client_a.pk)
    stale.require_version_change_approval = False  # an old copy in memory
    deployment = put_deployment(world.client_a, agent.v100)
    assert (
        services.deployment_change_version(
            client=stale, deployment=deployment, version=agent.v110, actor=None
        )
        == "needs_approval"
    )


def test_a_client_that_is_not_ready_is_refused(world, agent):
    deployment = put_deployment(world.client_a, agent.v100)
    world.client_a.status = world.client_a.Status.PROVISIONING
    with pytest.raises(ApplicationError, match="not ready"):
        services.deployment_pause(client=world.client_a, deployment=deployment, actor=None)


def test_a_change_planned_from_another_version_is_refused(world, agent):
    """`expected_version_id`: the caller read the pin without a lock; if it moved since, nothing happens."""
    client = world.client_a
    deployment = put_deployment(client, agent.v200)  # read as 1.0.0 earlier; upgraded since
    before = snapshot(client, deployment)
    with pytest.raises(services.VersionMovedError, match=r"is on version 2\.0\.0 now") as refused:
        services.deployment_change_version(
            client=client,
            deployment=deployment,
            version=agent.v110,
            actor=None,
            expected_version_id=agent.v100.pk,
        )
    assert isinstance(refused.value, ApplicationError)
    assert snapshot(client, deployment) == before
    # The version it was planned from: the change goes ahead.
    outcome = services.deployment_change_version(
        client=client,
        deployment=deployment,
        version=agent.v110,
        actor=None,
        expected_version_id=agent.v200.pk,
    )
    assert outcome == "moved" and fresh(client, deployment).version_id == agent.v110.pk
