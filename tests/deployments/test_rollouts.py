"""Rollouts: per-client results, a failing client does not stop the others, resumable, revertible."""

import json
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from apps.core.exceptions import ApplicationError
from apps.deployments import services
from apps.deployments.models import Deployment, DeploymentTransition
from apps.deployments.tasks import rollout_revert_run, rollout_run
from apps.factory.models import Rollout, RolloutTarget
from apps.tenancy.models import Client

from .conftest import fresh, last_transition, put_deployment

S = Deployment.Status
R = RolloutTarget.Result


@dataclass
class Fleet:
    """client A moves; client B requires approval; client A2 has nothing deployed below the target."""

    helpdesk: Deployment  # A, deployed at 1.0.0
    a_retired: Deployment  # A, retired at 1.0.0: never touched
    a_draft: Deployment  # A, draft at 1.0.0: never touched
    service_desk: Deployment  # B, paused at 1.0.0, the client requires approval
    staging: Deployment  # A2, draft at 1.0.0: A2 is a target with nothing to do
    pilot: Deployment  # A2, deployed at 2.0.0: above the target, never downgraded


@pytest.fixture
def fleet(world, agent) -> Fleet:
    world.client_b.require_version_change_approval = True
    world.client_b.save(update_fields=["require_version_change_approval"])
    return Fleet(
        helpdesk=put_deployment(world.client_a, agent.v100, name="Helpdesk"),
        a_retired=put_deployment(world.client_a, agent.v100, name="Old desk", status=S.RETIRED),
        a_draft=put_deployment(world.client_a, agent.v100, name="Next desk", status=S.DRAFT),
        service_desk=put_deployment(world.client_b, agent.v100, name="Service desk", status=S.PAUSED),
        staging=put_deployment(world.client_a2, agent.v100, name="Staging", status=S.DRAFT),
        pilot=put_deployment(world.client_a2, agent.v200, name="Pilot"),
    )


def targets_of(rollout: Rollout) -> dict[int, RolloutTarget]:
    return {t.client_id: t for t in RolloutTarget.objects.filter(rollout=rollout)}


def transition_count(client: Client) -> int:
    with tenant_context(client):
        return DeploymentTransition.objects.count()


def break_deployments_table(client: Client) -> None:
    """Make the client's schema unusable for deployments (undone with the test's transaction)."""
    with connection.cursor() as cursor:
        # Rows written earlier in this transaction have deferred checks; the table cannot go while they wait.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'DROP TABLE "{client.schema_name}".deployments_deployment CASCADE')
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def broker():
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete("celery")
    yield queue
    queue.delete("celery")


@contextmanager
def moved_before_the_lock(client: Client, deployment: Deployment, version):
    """Another writer moves the deployment's pin between the rollout's read and its lock.

    Stands in for a concurrent transaction committing in that window: right after the
    first unlocked read of the client's deployments, the row is updated on this
    connection (once), before the service's `SELECT ... FOR UPDATE` runs.
    """
    done = []

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if (
            not done
            and sql.startswith("SELECT")
            and '"deployments_deployment"' in sql
            and "FOR UPDATE" not in sql
            and connection.schema_name == client.schema_name
        ):
            done.append(True)
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE deployments_deployment SET version_id = %s WHERE id = %s",
                    [version.pk, deployment.pk],
                )
        return result

    with connection.execute_wrapper(wrapper):
        yield
    assert done, "the deployments were never read"


def queued(broker) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]


def _create(world, agent, **kwargs) -> Rollout:
    return services.rollout_create(
        variant=agent.variant, target_version=agent.v110, actor=world.users["vendor_admin"], **kwargs
    )


# --- Creating -----------------------------------------------------------------------


def test_create_targets_clients_below_and_schedules_after_commit(
    world, agent, fleet, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rollout = _create(world, agent)
    assert len(callbacks) == 1
    assert (rollout.status, rollout.canary, rollout.created_by) == (
        Rollout.Status.PENDING,
        False,
        world.users["vendor_admin"],
    )
    targets = targets_of(rollout)
    assert set(targets) == {world.client_a.pk, world.client_a2.pk, world.client_b.pk}
    assert {t.result for t in targets.values()} == {R.PENDING}
    # One message on the real broker, for the rollout task, to run in the public schema.
    (message,) = queued(broker)
    assert message["headers"]["task"] == "apps.deployments.tasks.rollout_run"
    assert message["headers"]["_schema_name"] == "public"
    assert message["headers"]["argsrepr"] == f"[{rollout.pk}]"


def test_clients_with_only_retired_or_newer_deployments_are_not_targets(world, agent):
    put_deployment(world.client_a, agent.v100, status=S.RETIRED)
    put_deployment(world.client_a2, agent.v110)  # already there
    put_deployment(world.client_b, agent.v100, status=S.APPROVED)  # not retired: a target
    rollout = _create(world, agent)
    assert set(targets_of(rollout)) == {world.client_b.pk}


def test_canary_is_limited_to_the_chosen_clients(world, agent, fleet):
    rollout = _create(world, agent, client_ids=[world.client_a.pk])
    assert rollout.canary is True
    assert set(targets_of(rollout)) == {world.client_a.pk}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_ids": []}, "at least one client"),
        ({"client_ids": [987654]}, "Not ready or unknown client ids: 987654"),
    ],
)
def test_canary_refusals(world, agent, fleet, kwargs, message):
    with pytest.raises(ApplicationError, match=message):
        _create(world, agent, **kwargs)
    assert not Rollout.objects.exists()


def test_create_refusals(world, agent, fleet):
    admin = world.users["vendor_admin"]
    with pytest.raises(ApplicationError, match="only published versions"):
        services.rollout_create(variant=agent.variant, target_version=agent.draft, actor=admin)
    with pytest.raises(ApplicationError, match="Choose a version of this variant"):
        services.rollout_create(variant=agent.variant, target_version=agent.foreign, actor=admin)
    with pytest.raises(ApplicationError, match="Nothing to roll out"):
        services.rollout_create(variant=agent.variant, target_version=agent.v100, actor=admin)
    assert not Rollout.objects.exists()
    first = _create(world, agent)
    with pytest.raises(ApplicationError, match=f"Rollout #{first.pk} of Test ITSM is still pending"):
        services.rollout_create(variant=agent.variant, target_version=agent.v200, actor=admin)
    assert Rollout.objects.count() == 1


# --- Running ------------------------------------------------------------------------


def test_execute_records_a_result_per_client(world, agent, fleet):
    rollout = _create(world, agent)
    rollout = services.rollout_execute(rollout=rollout)

    assert rollout.status == Rollout.Status.COMPLETED
    assert rollout.started_at is not None and rollout.finished_at is not None
    targets = targets_of(rollout)
    a, b, a2 = targets[world.client_a.pk], targets[world.client_b.pk], targets[world.client_a2.pk]
    assert (a.result, a.moved) == (R.MOVED, {str(fleet.helpdesk.pk): agent.v100.pk})
    assert a.message == "1 deployment moved to 1.1.0."
    assert (b.result, b.moved) == (R.NEEDS_APPROVAL, {str(fleet.service_desk.pk): agent.v100.pk})
    assert (a2.result, a2.moved) == (R.NOTHING_TO_DO, {})
    assert all(t.elapsed_ms is not None for t in targets.values())

    # Client A: the deployed agent moved, by the vendor admin, for this rollout.
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v110.pk
    step = last_transition(world.client_a, fleet.helpdesk)
    assert (step.action, step.actor_id) == ("upgrade", world.users["vendor_admin"].pk)
    assert step.reason == f"Rollout #{rollout.pk} of dtest-itsm to 1.1.0"
    assert fresh(world.client_a, fleet.a_retired).version_id == agent.v100.pk
    assert fresh(world.client_a, fleet.a_draft).version_id == agent.v100.pk
    # Client B: a request waits for its client admin.
    desk = fresh(world.client_b, fleet.service_desk)
    assert (desk.version_id, desk.pending_version_id, desk.status) == (agent.v100.pk, agent.v110.pk, S.PAUSED)
    assert desk.pending_requested_by_id == world.users["vendor_admin"].pk
    # Client A2: nothing changed; the newer pilot was not downgraded.
    assert fresh(world.client_a2, fleet.pilot).version_id == agent.v200.pk
    assert fresh(world.client_a2, fleet.staging).version_id == agent.v100.pk


def test_a_failing_client_is_recorded_and_the_others_move(world, agent, fleet):
    rollout = _create(world, agent)
    # Client B's schema becomes unusable after the rollout was planned.
    break_deployments_table(world.client_b)

    rollout = services.rollout_execute(rollout=rollout)

    targets = targets_of(rollout)
    failed = targets[world.client_b.pk]
    assert failed.result == R.FAILED
    assert "deployments_deployment" in failed.message and len(failed.message) <= 500
    assert targets[world.client_a.pk].result == R.MOVED
    assert targets[world.client_a2.pk].result == R.NOTHING_TO_DO
    assert rollout.status == Rollout.Status.COMPLETED
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v110.pk


def test_a_client_fails_as_a_whole(world, agent, fleet):
    """A refusal on a client's second deployment undoes its first: the client is one transaction."""
    # Sorted by pk, "Helpdesk" comes first; this one is refused: a change is already waiting.
    blocked = put_deployment(
        world.client_a,
        agent.v100,
        name="Blocked desk",
        pending_version=agent.v200,
        pending_requested_by=world.users["client_a_admin"],
    )
    rollout = services.rollout_execute(rollout=_create(world, agent))

    failed = targets_of(rollout)[world.client_a.pk]
    assert failed.result == R.FAILED
    assert failed.message.startswith("Blocked desk: “Blocked desk” already has a change to 2.0.0 waiting")
    assert failed.moved == {}
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v100.pk
    assert fresh(world.client_a, blocked).version_id == agent.v100.pk
    assert targets_of(rollout)[world.client_b.pk].result == R.NEEDS_APPROVAL


def test_finished_targets_are_skipped(world, agent, fleet):
    rollout = _create(world, agent)
    # As if a worker had done client A before it stopped.
    RolloutTarget.objects.filter(rollout=rollout, client=world.client_a).update(result=R.MOVED)
    services.rollout_execute(rollout=rollout)
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v100.pk  # not visited again
    assert targets_of(rollout)[world.client_b.pk].result == R.NEEDS_APPROVAL


def test_rerunning_visits_only_the_pending_targets(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    b_before = targets_of(rollout)[world.client_b.pk]
    b_transitions = transition_count(world.client_b)
    # A worker that stopped half-way: client A's part rolled back, the rollout still running.
    with tenant_context(world.client_a):
        Deployment.objects.filter(pk=fleet.helpdesk.pk).update(version=agent.v100)
    RolloutTarget.objects.filter(pk=targets_of(rollout)[world.client_a.pk].pk).update(
        result=R.PENDING, moved={}, elapsed_ms=None
    )
    Rollout.objects.filter(pk=rollout.pk).update(status=Rollout.Status.RUNNING, finished_at=None)

    assert rollout_run(rollout.pk) == Rollout.Status.COMPLETED

    targets = targets_of(rollout)
    assert targets[world.client_a.pk].result == R.MOVED
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v110.pk
    # Client B was not visited again: same row, no second request.
    assert targets[world.client_b.pk].updated_at == b_before.updated_at
    assert transition_count(world.client_b) == b_transitions


def test_a_deployment_upgraded_after_planning_is_not_touched(world, agent, fleet):
    rollout = _create(world, agent)
    # Between planning and execution, client A's admin upgrades past the target.
    services.deployment_change_version(
        client=world.client_a,
        deployment=fleet.helpdesk,
        version=agent.v200,
        actor=world.users["client_a_admin"],
    )
    transitions = transition_count(world.client_a)

    rollout = services.rollout_execute(rollout=rollout)

    a = targets_of(rollout)[world.client_a.pk]
    assert (a.result, a.moved) == (R.NOTHING_TO_DO, {})
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v200.pk
    assert transition_count(world.client_a) == transitions


def test_a_deployment_moved_while_the_rollout_reads_it_is_left_alone(world, agent, fleet):
    """Read below the target, upgraded before the lock: the rollout must not downgrade it."""
    second = put_deployment(world.client_a, agent.v100, name="Second desk")
    rollout = _create(world, agent)
    transitions = transition_count(world.client_a)

    with moved_before_the_lock(world.client_a, fleet.helpdesk, agent.v200):
        rollout = services.rollout_execute(rollout=rollout)

    a = targets_of(rollout)[world.client_a.pk]
    assert a.result == R.MOVED
    assert a.moved == {str(second.pk): agent.v100.pk}
    assert a.message == "1 deployment moved to 1.1.0. 1 deployment changed version meanwhile, left alone."
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v200.pk
    assert fresh(world.client_a, second).version_id == agent.v110.pk
    assert transition_count(world.client_a) == transitions + 1  # only the second desk's upgrade
    assert rollout.status == Rollout.Status.COMPLETED


def test_a_client_whose_only_deployment_moved_meanwhile_has_nothing_to_do(world, agent, fleet):
    rollout = _create(world, agent, client_ids=[world.client_a.pk])
    with moved_before_the_lock(world.client_a, fleet.helpdesk, agent.v200):
        rollout = services.rollout_execute(rollout=rollout)
    a = targets_of(rollout)[world.client_a.pk]
    assert (a.result, a.moved) == (R.NOTHING_TO_DO, {})
    assert a.message == "1 deployment changed version meanwhile, left alone."
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v200.pk


def test_a_completed_rollout_is_not_run_again(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    counts = [transition_count(c) for c in (world.client_a, world.client_b, world.client_a2)]
    assert rollout_run(rollout.pk) == Rollout.Status.COMPLETED
    assert [transition_count(c) for c in (world.client_a, world.client_b, world.client_a2)] == counts


def test_the_task_of_a_deleted_rollout_does_nothing(world):
    assert rollout_run(987654) == "missing"
    assert rollout_revert_run(987654) == "missing"


def test_a_request_already_waiting_for_the_target_counts_as_needing_approval(world, agent, fleet):
    with tenant_context(world.client_b):
        Deployment.objects.filter(pk=fleet.service_desk.pk).update(
            pending_version=agent.v110, pending_requested_by=world.users["client_b_admin"]
        )
    before = transition_count(world.client_b)
    rollout = services.rollout_execute(rollout=_create(world, agent))
    b = targets_of(rollout)[world.client_b.pk]
    assert (b.result, b.moved) == (R.NEEDS_APPROVAL, {})  # not the rollout's request: revert leaves it
    assert transition_count(world.client_b) == before


# --- Reverting ----------------------------------------------------------------------


def test_revert_returns_each_deployment_to_its_previous_pin(
    world, agent, fleet, broker, django_capture_on_commit_callbacks
):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    admin = world.users["vendor_admin"]
    with django_capture_on_commit_callbacks(execute=True):
        reverting = services.rollout_revert(rollout=rollout, actor=admin)
    assert reverting.status == Rollout.Status.REVERTING
    (message,) = queued(broker)
    assert message["headers"]["task"] == "apps.deployments.tasks.rollout_revert_run"
    assert message["headers"]["_schema_name"] == "public"
    assert message["headers"]["kwargsrepr"] == f"{{'actor_id': {admin.pk}}}"

    assert rollout_revert_run(rollout.pk, actor_id=admin.pk) == Rollout.Status.REVERTED

    targets = targets_of(rollout)
    a, b, a2 = targets[world.client_a.pk], targets[world.client_b.pk], targets[world.client_a2.pk]
    assert (a.result, a.message) == (R.REVERTED, "1 deployment back on the previous version.")
    assert (b.result, b.message) == (R.REVERTED, "1 request withdrawn.")
    assert a2.result == R.NOTHING_TO_DO
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v100.pk
    step = last_transition(world.client_a, fleet.helpdesk)
    assert (step.action, step.actor_id, step.from_version_id, step.to_version_id) == (
        "rollback",
        admin.pk,
        agent.v110.pk,
        agent.v100.pk,
    )
    assert step.reason.startswith(f"Revert of rollout #{rollout.pk}")
    desk = fresh(world.client_b, fleet.service_desk)
    assert (desk.version_id, desk.pending_version_id) == (agent.v100.pk, None)
    assert last_transition(world.client_b, fleet.service_desk).action == "version_change_withdrawn"
    # Reverting twice is refused, and re-running the task does nothing.
    with pytest.raises(ApplicationError, match="only a completed rollout can be reverted"):
        services.rollout_revert(rollout=rollout, actor=admin)
    before = transition_count(world.client_a)
    assert rollout_revert_run(rollout.pk) == Rollout.Status.REVERTED
    assert transition_count(world.client_a) == before


def test_only_a_completed_rollout_can_be_reverted(world, agent, fleet):
    rollout = _create(world, agent)
    with pytest.raises(ApplicationError, match="is pending; only a completed rollout"):
        services.rollout_revert(rollout=rollout, actor=world.users["vendor_admin"])
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PENDING
    # The revert body leaves a rollout that is not reverting alone.
    assert services.rollout_revert_execute(rollout=rollout).status == Rollout.Status.PENDING


def test_revert_asks_for_approval_when_the_client_requires_it_now(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    # Since the rollout: client A turned approval on; client B's admin approved the upgrade.
    Client.objects.filter(pk=world.client_a.pk).update(require_version_change_approval=True)
    services.deployment_approve_change(
        client=world.client_b, deployment=fleet.service_desk, actor=world.users["client_b_admin"]
    )
    assert fresh(world.client_b, fleet.service_desk).version_id == agent.v110.pk

    services.rollout_revert(rollout=rollout, actor=world.users["vendor_admin"])
    services.rollout_revert_execute(rollout=rollout)  # actor defaults to the rollout's author

    targets = targets_of(rollout)
    assert targets[world.client_a.pk].message == "1 rollback waiting for approval."
    assert targets[world.client_b.pk].message == "1 rollback waiting for approval."
    for client, deployment in [(world.client_a, fleet.helpdesk), (world.client_b, fleet.service_desk)]:
        after = fresh(client, deployment)
        assert (after.version_id, after.pending_version_id) == (agent.v110.pk, agent.v100.pk)
        assert after.pending_requested_by_id == world.users["vendor_admin"].pk


def test_revert_leaves_a_deployment_that_moved_on_since(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    services.deployment_change_version(
        client=world.client_a,
        deployment=fleet.helpdesk,
        version=agent.v200,
        actor=world.users["client_a_admin"],
    )
    services.rollout_revert(rollout=rollout, actor=world.users["vendor_admin"])
    services.rollout_revert_execute(rollout=rollout)
    a = targets_of(rollout)[world.client_a.pk]
    assert (a.result, a.message) == (R.REVERTED, "1 changed since, left alone.")
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v200.pk


def test_revert_leaves_a_deployment_that_moves_while_it_is_read(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    services.rollout_revert(rollout=rollout, actor=world.users["vendor_admin"])
    with moved_before_the_lock(world.client_a, fleet.helpdesk, agent.v200):
        services.rollout_revert_execute(rollout=rollout)
    a = targets_of(rollout)[world.client_a.pk]
    assert (a.result, a.message) == (R.REVERTED, "1 changed since, left alone.")
    assert fresh(world.client_a, fleet.helpdesk).version_id == agent.v200.pk


def test_create_is_refused_while_another_rollout_of_the_variant_reverts(world, agent, fleet):
    admin = world.users["vendor_admin"]
    first = services.rollout_execute(rollout=_create(world, agent))
    services.rollout_revert(rollout=first, actor=admin)
    with pytest.raises(ApplicationError, match=f"Rollout #{first.pk} of Test ITSM is still reverting"):
        services.rollout_create(variant=agent.variant, target_version=agent.v200, actor=admin)
    assert Rollout.objects.count() == 1


def test_revert_is_refused_while_another_rollout_of_the_variant_is_active(world, agent, fleet):
    admin = world.users["vendor_admin"]
    first = services.rollout_execute(rollout=_create(world, agent))
    second = services.rollout_create(variant=agent.variant, target_version=agent.v200, actor=admin)
    with pytest.raises(ApplicationError, match=f"Rollout #{second.pk} of Test ITSM is still pending"):
        services.rollout_revert(rollout=first, actor=admin)
    first.refresh_from_db()
    assert first.status == Rollout.Status.COMPLETED
    # Once the other one has finished, the revert goes ahead.
    services.rollout_execute(rollout=second)
    assert services.rollout_revert(rollout=first, actor=admin).status == Rollout.Status.REVERTING


def test_a_client_failing_to_revert_does_not_stop_the_others(world, agent, fleet):
    rollout = services.rollout_execute(rollout=_create(world, agent))
    services.rollout_revert(rollout=rollout, actor=world.users["vendor_admin"])
    break_deployments_table(world.client_b)
    rollout = services.rollout_revert_execute(rollout=rollout)
    targets = targets_of(rollout)
    assert targets[world.client_b.pk].result == R.FAILED
    assert targets[world.client_b.pk].message.startswith("Revert failed: ")
    assert targets[world.client_a.pk].result == R.REVERTED
    assert rollout.status == Rollout.Status.REVERTED


def test_resume_schedules_an_unfinished_rollout_again(
    world, agent, fleet, django_capture_on_commit_callbacks
):
    rollout = _create(world, agent)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.rollout_resume(rollout=rollout, actor=world.users["vendor_admin"])
    assert len(callbacks) == 1
    services.rollout_execute(rollout=rollout)
    with pytest.raises(ApplicationError, match="is completed"):
        services.rollout_resume(rollout=rollout, actor=world.users["vendor_admin"])


def test_a_client_that_cannot_be_read_when_planning_is_kept_and_fails_visibly(world, agent, fleet):
    break_deployments_table(world.client_b)
    rollout = _create(world, agent)
    assert world.client_b.pk in targets_of(rollout)
    rollout = services.rollout_execute(rollout=rollout)
    assert targets_of(rollout)[world.client_b.pk].result == R.FAILED
    assert targets_of(rollout)[world.client_a.pk].result == R.MOVED
