"""Maker-checker: whoever asked cannot approve; only a client admin of this client or a platform admin can."""

import pytest

from apps.core.exceptions import ApplicationError
from apps.deployments import services
from apps.deployments.models import Deployment

from .conftest import fresh, put_deployment, snapshot

S = Deployment.Status


def _submitted(world, agent, submitter):
    deployment = put_deployment(world.client_a, agent.v100, status=S.DRAFT)
    services.deployment_submit(client=world.client_a, deployment=deployment, actor=submitter)
    return deployment


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize(
    ("submitter", "approver", "refusal"),
    [
        # The submitter never decides, even as a client admin.
        ("client_a_admin", "client_a_admin", "someone else must"),
        ("partner_a_engineer", "partner_a_engineer", "someone else must"),
        # Neither partner staff nor the client's other roles approve.
        ("client_a_operator", "partner_a_engineer", "Only a client admin of"),
        ("partner_a_engineer", "partner_a_admin", "Only a client admin of"),
        ("partner_a_engineer", "client_a_operator", "Only a client admin of"),
        ("partner_a_engineer", "client_a_viewer", "Only a client admin of"),
        # A client admin of another client, or vendor support, does not either.
        ("partner_a_engineer", "client_b_admin", "Only a client admin of"),
        ("partner_a_engineer", "support", "Only a client admin of"),
    ],
)
def test_refused_approvers_change_nothing(world, agent, decision, submitter, approver, refusal):
    deployment = _submitted(world, agent, world.users[submitter])
    before = snapshot(world.client_a, deployment)
    service = services.deployment_approve if decision == "approve" else services.deployment_reject
    with pytest.raises(ApplicationError, match=refusal):
        service(client=world.client_a, deployment=deployment, actor=world.users[approver], reason="Because")
    assert snapshot(world.client_a, deployment) == before


@pytest.mark.parametrize("approver", ["client_a_admin", "vendor_admin"])
@pytest.mark.parametrize(("decision", "status"), [("approve", S.APPROVED), ("reject", S.REJECTED)])
def test_client_admin_or_platform_admin_decides(world, agent, approver, decision, status):
    deployment = _submitted(world, agent, world.users["partner_a_engineer"])
    service = services.deployment_approve if decision == "approve" else services.deployment_reject
    service(client=world.client_a, deployment=deployment, actor=world.users[approver], reason="Checked")
    assert fresh(world.client_a, deployment).status == status


def test_anonymous_or_missing_approver_is_refused(world, agent):
    deployment = _submitted(world, agent, world.users["partner_a_engineer"])
    with pytest.raises(ApplicationError, match="Only a client admin"):
        services.deployment_approve(client=world.client_a, deployment=deployment, actor=None)
    assert fresh(world.client_a, deployment).status == S.SUBMITTED


def test_an_inactive_client_admin_is_refused(world, agent):
    admin = world.users["client_a_admin"]
    deployment = _submitted(world, agent, world.users["partner_a_engineer"])
    admin.is_active = False
    admin.save(update_fields=["is_active"])
    try:
        with pytest.raises(ApplicationError, match="Only a client admin"):
            services.deployment_approve(client=world.client_a, deployment=deployment, actor=admin)
    finally:
        admin.is_active = True
        admin.save(update_fields=["is_active"])


def test_client_b_admin_approves_on_client_b(world, agent):
    deployment = put_deployment(world.client_b, agent.v100, status=S.DRAFT)
    services.deployment_submit(
        client=world.client_b, deployment=deployment, actor=world.users["partner_b_admin"]
    )
    services.deployment_approve(
        client=world.client_b, deployment=deployment, actor=world.users["client_b_admin"]
    )
    assert fresh(world.client_b, deployment).status == S.APPROVED


@pytest.mark.parametrize("decision", ["approve_change", "reject_change"])
@pytest.mark.parametrize(
    ("requester", "approver", "refusal"),
    [
        ("client_a_admin", "client_a_admin", "someone else must"),
        ("vendor_admin", "vendor_admin", "someone else must"),
        ("partner_a_engineer", "partner_a_admin", "Only a client admin of"),
        ("partner_a_engineer", "client_b_admin", "Only a client admin of"),
        ("partner_a_engineer", "client_a_operator", "Only a client admin of"),
    ],
)
def test_version_changes_follow_the_same_rule(world, agent, decision, requester, approver, refusal):
    deployment = put_deployment(
        world.client_a, agent.v100, pending_version=agent.v110, pending_requested_by=world.users[requester]
    )
    before = snapshot(world.client_a, deployment)
    service = getattr(services, f"deployment_{decision}")
    with pytest.raises(ApplicationError, match=refusal):
        service(client=world.client_a, deployment=deployment, actor=world.users[approver], reason="Because")
    assert snapshot(world.client_a, deployment) == before
