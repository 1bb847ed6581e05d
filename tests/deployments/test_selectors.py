"""Deployment selectors read the right client's schema and hand back evaluated lists."""

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from apps.deployments import selectors, services
from apps.deployments.models import Deployment
from apps.factory.models import RolloutTarget
from apps.tenancy.models import Client

from .conftest import put_deployment

S = Deployment.Status


def test_list_and_get_read_the_clients_own_schema(world, agent):
    helpdesk = put_deployment(world.client_a, agent.v100, name="Helpdesk")
    put_deployment(world.client_a, agent.v110, name="Finance desk", status=S.DRAFT)
    put_deployment(world.client_b, agent.v100, name="B desk")

    listed = selectors.deployment_list(client=world.client_a)
    assert isinstance(listed, list)  # evaluated in client A's schema, not later elsewhere
    assert [d.name for d in listed] == ["Finance desk", "Helpdesk"]
    assert listed[1].version.version == "1.0.0" and listed[1].variant.key == "dtest-itsm"
    assert [d.name for d in selectors.deployment_list(client=world.client_b)] == ["B desk"]
    assert selectors.deployment_list(client=world.client_a2) == []

    assert selectors.deployment_get(client=world.client_a, pk=helpdesk.pk).name == "Helpdesk"
    with pytest.raises(Http404):
        selectors.deployment_get(client=world.client_a, pk=987654)
    with pytest.raises(Http404):
        selectors.deployment_get(client=world.client_a2, pk=helpdesk.pk)
    with pytest.raises(Http404):
        selectors.deployment_get(client=world.client_a, pk="not-a-number")


def test_history_is_newest_first_and_stays_with_its_client(world, agent):
    engineer = world.users["partner_a_engineer"]
    deployment = services.deployment_create(
        client=world.client_a, variant=agent.variant, version=agent.v100, name="Helpdesk", actor=engineer
    )
    services.deployment_submit(client=world.client_a, deployment=deployment, actor=engineer)
    history = selectors.deployment_history(client=world.client_a, deployment=deployment)
    assert [(t.action, t.actor.email) for t in history] == [
        ("submit", engineer.email),
        ("create", engineer.email),
    ]
    assert history[0].to_version.version == "1.0.0"
    with pytest.raises(Http404):
        selectors.deployment_history(client=world.client_b, deployment=deployment)


def test_counts_by_variant_add_up_non_retired_deployments_of_every_client(world, agent):
    put_deployment(world.client_a, agent.v100, name="One")
    put_deployment(world.client_a, agent.v100, name="Two", status=S.DRAFT)
    put_deployment(world.client_a, agent.v100, name="Gone", status=S.RETIRED)
    put_deployment(world.client_b, agent.v110, name="Three", status=S.PAUSED)
    put_deployment(world.client_b, agent.foreign, name="Other variant")
    counts = selectors.deployment_counts_by_variant()
    assert counts[agent.variant.pk] == 3
    assert counts[agent.foreign.variant_id] == 1


def test_deployments_of_one_variant(world, agent):
    put_deployment(world.client_a, agent.v100, name="One")
    put_deployment(world.client_a, agent.foreign, name="Other")
    found = selectors.client_deployments_for_variant(client=world.client_a, variant=agent.variant)
    assert [d.name for d in found] == ["One"]


def test_actions_offered_follow_the_status(world, agent):
    deployed = put_deployment(world.client_a, agent.v100)
    assert selectors.deployment_actions(deployment=deployed) == ["pause", "retire", "change_version"]
    waiting = put_deployment(world.client_a, agent.v100, name="Waiting", pending_version=agent.v110)
    assert selectors.deployment_actions(deployment=waiting) == [
        "pause",
        "retire",
        "approve_change",
        "reject_change",
    ]


def test_rollout_selectors(world, agent):
    put_deployment(world.client_a, agent.v100)
    rollout = services.rollout_create(
        variant=agent.variant, target_version=agent.v110, actor=world.users["vendor_admin"], schedule=False
    )
    listed = selectors.rollout_list(variant=agent.variant)
    assert [(r.pk, r.target_count) for r in listed] == [(rollout.pk, 1)]
    assert selectors.rollout_get(pk=rollout.pk) == rollout
    with pytest.raises(Http404):
        selectors.rollout_get(pk=987654)
    targets = selectors.rollout_targets(rollout=rollout)
    assert [(t.client, t.result) for t in targets] == [(world.client_a, RolloutTarget.Result.PENDING)]


def test_counts_by_variant_take_one_statement(world, agent):
    put_deployment(world.client_a, agent.v100, name="One")
    put_deployment(world.client_b, agent.v110, name="Two")
    put_deployment(world.client_b, agent.v110, name="Gone", status=S.RETIRED)
    with CaptureQueriesContext(connection) as captured:
        counts = selectors.deployment_counts_by_variant()
    # One UNION ALL over every ready client's schema, whatever their number.
    counting = [q["sql"] for q in captured.captured_queries if "deployments_deployment" in q["sql"]]
    assert len(counting) == 1
    for client in selectors.ready_clients():
        assert f'"{client.schema_name}"."deployments_deployment"' in counting[0]
    assert counts == {agent.variant.pk: 2}


def test_counts_by_variant_are_the_same_in_chunks(world, agent, monkeypatch):
    put_deployment(world.client_a, agent.v100, name="One")
    put_deployment(world.client_a, agent.v100, name="Gone", status=S.RETIRED)
    put_deployment(world.client_b, agent.v110, name="Two", status=S.DRAFT)
    put_deployment(world.client_b, agent.foreign, name="Other variant")
    whole = selectors.deployment_counts_by_variant()
    monkeypatch.setattr(selectors, "COUNT_SCHEMAS_PER_STATEMENT", 1)
    assert (
        selectors.deployment_counts_by_variant()
        == whole
        == {agent.variant.pk: 2, agent.foreign.variant_id: 1}
    )


def test_counts_by_variant_skip_a_client_whose_schema_cannot_be_read(world, agent):
    put_deployment(world.client_a, agent.v100, name="One")
    put_deployment(world.client_b, agent.v100, name="Two")
    # A ready client pointing at a schema that is not there (rolled back with the test).
    Client.objects.filter(pk=world.client_a2.pk).update(schema_name="no_such_schema")
    assert selectors.deployment_counts_by_variant() == {agent.variant.pk: 2}
