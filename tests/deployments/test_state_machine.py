"""The deployment state machine: each (status, action); legal ones succeed, illegal ones change nothing."""

import pytest
from django_tenants.utils import tenant_context

from apps.core.exceptions import ApplicationError
from apps.deployments import services
from apps.deployments.models import Deployment, DeploymentTransition
from apps.deployments.selectors import deployment_actions

from .conftest import fresh, last_transition, make_version, put_deployment, snapshot

S = Deployment.Status
ACTIONS = [
    "submit",
    "approve",
    "reject",
    "revise",
    "deploy",
    "pause",
    "resume",
    "retire",
    "change_version",
    "approve_change",
    "reject_change",
]
# (status, action) → (status afterwards, action recorded in the history)
LEGAL = {
    (S.DRAFT, "submit"): (S.SUBMITTED, "submit"),
    (S.SUBMITTED, "approve"): (S.APPROVED, "approve"),
    (S.SUBMITTED, "reject"): (S.REJECTED, "reject"),
    (S.REJECTED, "revise"): (S.DRAFT, "revise"),
    (S.APPROVED, "deploy"): (S.DEPLOYED, "deploy"),
    (S.DEPLOYED, "pause"): (S.PAUSED, "pause"),
    (S.PAUSED, "resume"): (S.DEPLOYED, "resume"),
    (S.DEPLOYED, "retire"): (S.RETIRED, "retire"),
    (S.PAUSED, "retire"): (S.RETIRED, "retire"),
    (S.DEPLOYED, "change_version"): (S.DEPLOYED, "upgrade"),
    (S.PAUSED, "change_version"): (S.PAUSED, "upgrade"),
    (S.DEPLOYED, "approve_change"): (S.DEPLOYED, "version_change_approved"),
    (S.PAUSED, "approve_change"): (S.PAUSED, "version_change_approved"),
    (S.DEPLOYED, "reject_change"): (S.DEPLOYED, "version_change_rejected"),
    (S.PAUSED, "reject_change"): (S.PAUSED, "version_change_rejected"),
}
PAIRS = [(status, action) for status in S.values for action in ACTIONS]


def _call(action, *, world, agent, deployment):
    client = world.client_a
    engineer, admin = world.users["partner_a_engineer"], world.users["client_a_admin"]
    common = {"client": client, "deployment": deployment}
    match action:
        case "submit":
            return services.deployment_submit(**common, actor=engineer)
        case "approve":
            return services.deployment_approve(**common, actor=admin, reason="Looks right")
        case "reject":
            return services.deployment_reject(**common, actor=admin, reason="Wrong mapping")
        case "revise":
            return services.deployment_revise(**common, actor=engineer)
        case "deploy":
            return services.deployment_deploy(**common, actor=engineer)
        case "pause":
            return services.deployment_pause(**common, actor=engineer, reason="Maintenance")
        case "resume":
            return services.deployment_resume(**common, actor=engineer)
        case "retire":
            return services.deployment_retire(**common, actor=engineer, reason="Replaced")
        case "change_version":
            return services.deployment_change_version(**common, version=agent.v110, actor=engineer)
        case "approve_change":
            return services.deployment_approve_change(**common, actor=admin)
        case "reject_change":
            return services.deployment_reject_change(**common, actor=admin, reason="Not now")
    raise AssertionError(action)


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_status_and_action(world, agent, status, action):
    client = world.client_a
    # The *_change actions need a change waiting; any other refusal must then come from the status.
    pending = action in ("approve_change", "reject_change")
    deployment = put_deployment(
        client,
        agent.v100,
        status=status,
        submitted_by=world.users["partner_a_engineer"],
        pending_version=agent.v110 if pending else None,
        pending_requested_by=world.users["partner_a_engineer"] if pending else None,
    )
    before = snapshot(client, deployment)

    if (status, action) in LEGAL:
        to_status, recorded = LEGAL[(status, action)]
        _call(action, world=world, agent=agent, deployment=deployment)
        after = fresh(client, deployment)
        assert after.status == to_status
        assert deployment.status == to_status  # the caller's instance follows
        step = last_transition(client, deployment)
        assert (step.action, step.from_status, step.to_status) == (recorded, status, to_status)
        if action in ("change_version", "approve_change"):
            assert after.version_id == agent.v110.pk and after.pending_version_id is None
            assert (step.from_version_id, step.to_version_id) == (agent.v100.pk, agent.v110.pk)
        else:
            assert after.version_id == agent.v100.pk
        assert snapshot(client, deployment)[1] == before[1] + 1
    else:
        with pytest.raises(ApplicationError) as refused:
            _call(action, world=world, agent=agent, deployment=deployment)
        assert f"it is {S(status).label.lower()}" in refused.value.message
        assert snapshot(client, deployment) == before


def test_every_legal_pair_is_offered_and_no_other(world, agent):
    offered = set()
    for status in S.values:
        deployment = Deployment(status=status)
        offered |= {(status, action) for action in deployment_actions(deployment=deployment)}
        deployment.pending_version_id = agent.v110.pk
        offered |= {(status, action) for action in deployment_actions(deployment=deployment)}
    assert offered == set(LEGAL)


def test_create_records_a_draft(world, agent):
    engineer = world.users["partner_a_engineer"]
    deployment = services.deployment_create(
        client=world.client_a, variant=agent.variant, version=agent.v100, name=" Helpdesk ", actor=engineer
    )
    assert (deployment.name, deployment.status, deployment.version_id) == ("Helpdesk", S.DRAFT, agent.v100.pk)
    step = last_transition(world.client_a, deployment)
    assert (step.action, step.from_status, step.to_status, step.actor_id) == (
        "create",
        "",
        S.DRAFT,
        engineer.pk,
    )
    # Only in client A's schema.
    with tenant_context(world.client_b):
        assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    ("version_name", "message"),
    [("draft", "only published versions"), ("foreign", "version of this deployment's agent variant")],
)
def test_create_refuses_a_version_that_is_not_a_published_one_of_the_variant(
    world, agent, version_name, message
):
    with pytest.raises(ApplicationError, match=message):
        services.deployment_create(
            client=world.client_a,
            variant=agent.variant,
            version=getattr(agent, version_name),
            name="Helpdesk",
            actor=None,
        )
    with tenant_context(world.client_a):
        assert not Deployment.objects.exists()


def test_create_refuses_the_base_agent(world, agent):
    base = agent.variant.parent
    base_v100 = make_version(base, "1.0.0")
    with pytest.raises(ApplicationError, match="base agent, which is not deployable") as refused:
        services.deployment_create(
            client=world.client_a, variant=base, version=base_v100, name="Helpdesk", actor=None
        )
    assert refused.value.field == "variant"
    with tenant_context(world.client_a):
        assert not Deployment.objects.exists()


def test_create_refuses_a_duplicate_or_empty_name(world, agent):
    services.deployment_create(
        client=world.client_a, variant=agent.variant, version=agent.v100, name="Helpdesk", actor=None
    )
    with pytest.raises(ApplicationError, match="already has a deployment named"):
        services.deployment_create(
            client=world.client_a, variant=agent.variant, version=agent.v110, name="helpdesk", actor=None
        )
    with pytest.raises(ApplicationError, match="Give the deployment a name"):
        services.deployment_create(
            client=world.client_a, variant=agent.variant, version=agent.v110, name="  ", actor=None
        )
    # Another client may use the same name.
    services.deployment_create(
        client=world.client_b, variant=agent.variant, version=agent.v100, name="Helpdesk", actor=None
    )


def test_the_whole_flow_leaves_a_readable_history(world, agent):
    client = world.client_a
    engineer, admin = world.users["partner_a_engineer"], world.users["client_a_admin"]
    deployment = services.deployment_create(
        client=client, variant=agent.variant, version=agent.v100, name="Helpdesk", actor=engineer
    )
    services.deployment_submit(client=client, deployment=deployment, actor=engineer)
    assert deployment.submitted_by_id == engineer.pk
    services.deployment_reject(client=client, deployment=deployment, actor=admin, reason="Add the SLA rules")
    services.deployment_revise(client=client, deployment=deployment, actor=engineer)
    assert deployment.submitted_by_id is None
    services.deployment_submit(client=client, deployment=deployment, actor=engineer, reason="SLA rules added")
    services.deployment_approve(client=client, deployment=deployment, actor=admin)
    services.deployment_deploy(client=client, deployment=deployment, actor=engineer)
    with tenant_context(client):
        history = list(
            DeploymentTransition.objects.filter(deployment_id=deployment.pk)
            .order_by("pk")
            .values_list("action", "to_status", "actor_id", "reason")
        )
    assert history == [
        ("create", S.DRAFT, engineer.pk, ""),
        ("submit", S.SUBMITTED, engineer.pk, ""),
        ("reject", S.REJECTED, admin.pk, "Add the SLA rules"),
        ("revise", S.DRAFT, engineer.pk, ""),
        ("submit", S.SUBMITTED, engineer.pk, "SLA rules added"),
        ("approve", S.APPROVED, admin.pk, ""),
        ("deploy", S.DEPLOYED, engineer.pk, ""),
    ]


def test_reject_needs_a_reason(world, agent):
    deployment = put_deployment(
        world.client_a, agent.v100, status=S.SUBMITTED, submitted_by=world.users["partner_a_engineer"]
    )
    before = snapshot(world.client_a, deployment)
    with pytest.raises(ApplicationError, match="Give a reason"):
        services.deployment_reject(
            client=world.client_a, deployment=deployment, actor=world.users["client_a_admin"], reason="  "
        )
    assert snapshot(world.client_a, deployment) == before


def test_retiring_drops_a_waiting_change(world, agent):
    engineer = world.users["partner_a_engineer"]
    deployment = put_deployment(
        world.client_a, agent.v100, pending_version=agent.v110, pending_requested_by=engineer
    )
    services.deployment_retire(client=world.client_a, deployment=deployment, actor=engineer)
    after = fresh(world.client_a, deployment)
    assert (
        after.status == S.RETIRED
        and after.pending_version_id is None
        and after.pending_requested_by_id is None
    )


def test_a_deployment_of_one_client_is_refused_with_another_client(world, agent):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    put_deployment(world.client_b, agent.v100, status=S.DRAFT, name="Other")  # may share the pk
    with pytest.raises(ApplicationError, match="another client project"):
        services.deployment_submit(client=world.client_b, deployment=deployment, actor=None)
    with tenant_context(world.client_b):
        assert Deployment.objects.get().status == S.DRAFT
