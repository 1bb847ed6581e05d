"""Editing a draft: name and pinned version, so a rejected deployment can be fixed and resubmitted."""

import pytest

from apps.core.exceptions import ApplicationError
from apps.deployments import selectors, services
from apps.deployments.models import Deployment

from .conftest import fresh, last_transition, put_deployment, snapshot

S = Deployment.Status


def test_a_draft_gets_a_new_name_and_version_recorded_in_its_history(world, agent):
    engineer = world.users["partner_a_engineer"]
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    before = snapshot(world.client_a, deployment)

    services.deployment_update_draft(
        client=world.client_a, deployment=deployment, name=" IT desk ", version=agent.v110, actor=engineer
    )

    after = fresh(world.client_a, deployment)
    assert (after.name, after.version_id, after.status) == ("IT desk", agent.v110.pk, S.DRAFT)
    assert (deployment.name, deployment.version_id) == ("IT desk", agent.v110.pk)  # the caller's instance
    step = last_transition(world.client_a, deployment)
    assert (step.action, step.from_status, step.to_status, step.actor_id) == (
        "edit",
        S.DRAFT,
        S.DRAFT,
        engineer.pk,
    )
    assert (step.from_version_id, step.to_version_id) == (agent.v100.pk, agent.v110.pk)
    assert step.reason == "Renamed from “Helpdesk”."
    assert snapshot(world.client_a, deployment)[1] == before[1] + 1


def test_a_rejected_deployment_is_revised_fixed_and_resubmitted(world, agent):
    client, engineer, admin = world.client_a, world.users["partner_a_engineer"], world.users["client_a_admin"]
    deployment = services.deployment_create(
        client=client, variant=agent.variant, version=agent.v100, name="Helpdesk", actor=engineer
    )
    services.deployment_submit(client=client, deployment=deployment, actor=engineer)
    services.deployment_reject(client=client, deployment=deployment, actor=admin, reason="Use 1.1.0")
    services.deployment_revise(client=client, deployment=deployment, actor=engineer)
    services.deployment_update_draft(
        client=client, deployment=deployment, name="Helpdesk", version=agent.v110, actor=engineer
    )
    services.deployment_submit(client=client, deployment=deployment, actor=engineer)

    after = fresh(client, deployment)
    assert (after.status, after.version_id) == (S.SUBMITTED, agent.v110.pk)
    history = selectors.deployment_history(client=client, deployment=deployment)
    assert [(t.action, t.to_status, t.to_version_id) for t in reversed(history)][-3:] == [
        ("revise", S.DRAFT, agent.v100.pk),
        ("edit", S.DRAFT, agent.v110.pk),
        ("submit", S.SUBMITTED, agent.v110.pk),
    ]


@pytest.mark.parametrize("status", [s for s in S.values if s != S.DRAFT])
def test_only_a_draft_can_be_edited(world, agent, status):
    deployment = put_deployment(world.client_a, agent.v100, status=status)
    before = snapshot(world.client_a, deployment)
    with pytest.raises(ApplicationError) as refused:
        services.deployment_update_draft(
            client=world.client_a, deployment=deployment, name="Renamed", version=agent.v110, actor=None
        )
    assert refused.value.message == (
        f"Cannot edit “Helpdesk”: it is {S(status).label.lower()} (only a draft deployment allows this)."
    )
    assert snapshot(world.client_a, deployment) == before


@pytest.mark.parametrize(
    ("version_name", "message"),
    [("foreign", "version of this deployment's agent variant"), ("draft", "only published versions")],
)
def test_the_version_must_be_a_published_one_of_the_same_variant(world, agent, version_name, message):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    before = snapshot(world.client_a, deployment)
    with pytest.raises(ApplicationError, match=message) as refused:
        services.deployment_update_draft(
            client=world.client_a,
            deployment=deployment,
            name="Helpdesk",
            version=getattr(agent, version_name),
            actor=None,
        )
    assert refused.value.field == "version"
    assert snapshot(world.client_a, deployment) == before


def test_the_name_must_be_given_and_free(world, agent):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    put_deployment(world.client_a, agent.v100, name="Finance desk")
    put_deployment(world.client_b, agent.v100, name="B desk")
    before = snapshot(world.client_a, deployment)
    for name, message in [("finance DESK", "already has a deployment named"), ("  ", "Give the deployment")]:
        with pytest.raises(ApplicationError, match=message) as refused:
            services.deployment_update_draft(
                client=world.client_a, deployment=deployment, name=name, version=agent.v100, actor=None
            )
        assert refused.value.field == "name"
    assert snapshot(world.client_a, deployment) == before
    # Its own name in another case, and a name another client uses, are fine.
    services.deployment_update_draft(
        client=world.client_a, deployment=deployment, name="HELPDESK", version=agent.v100, actor=None
    )
    services.deployment_update_draft(
        client=world.client_a, deployment=deployment, name="B desk", version=agent.v100, actor=None
    )
    assert fresh(world.client_a, deployment).name == "B desk"


def test_saving_the_same_values_records_nothing(world, agent):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    before = snapshot(world.client_a, deployment)
    services.deployment_update_draft(
        client=world.client_a, deployment=deployment, name="Helpdesk", version=agent.v100, actor=None
    )
    assert snapshot(world.client_a, deployment) == before


def test_a_version_change_alone_has_no_rename_reason(world, agent):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    services.deployment_update_draft(
        client=world.client_a, deployment=deployment, name="Helpdesk", version=agent.v200, actor=None
    )
    step = last_transition(world.client_a, deployment)
    assert (step.action, step.reason, step.from_version_id, step.to_version_id) == (
        "edit",
        "",
        agent.v100.pk,
        agent.v200.pk,
    )


def test_a_deployment_of_one_client_is_refused_with_another_client(world, agent):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    other = put_deployment(world.client_b, agent.v100, status=S.DRAFT, name="Other")
    before = snapshot(world.client_b, other)
    with pytest.raises(ApplicationError, match="another client project"):
        services.deployment_update_draft(
            client=world.client_b, deployment=deployment, name="Taken over", version=agent.v110, actor=None
        )
    assert snapshot(world.client_b, other) == before
