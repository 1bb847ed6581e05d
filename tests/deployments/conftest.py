"""Fixtures for deployments and rollouts: a test variant with published versions, deployments in any state.

The factory's own seeding is not needed here: the variant and its versions are
made with the ORM (a spec is irrelevant to deployments).
"""

from dataclasses import dataclass

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment, DeploymentTransition
from apps.deployments.selectors import deployment_get
from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion
from apps.tenancy.models import Client


@dataclass
class Agent:
    variant: AgentVariant
    v100: AgentVersion
    v110: AgentVersion
    v200: AgentVersion
    draft: AgentVersion  # 2.1.0, not published
    foreign: AgentVersion  # a published version of another variant


def make_version(variant: AgentVariant, version: str, *, published: bool = True) -> AgentVersion:
    major, minor, patch = (int(part) for part in version.split("."))
    return AgentVersion.objects.create(
        variant=variant,
        version=version,
        major=major,
        minor=minor,
        patch=patch,
        status=AgentVersion.Status.PUBLISHED if published else AgentVersion.Status.DRAFT,
        published_at=timezone.now() if published else None,
        spec={},
        changelog=f"Version {version}.",
    )


@pytest.fixture
def agent(world) -> Agent:
    template = AgentTemplate.objects.create(key="dtest", name="Deployment tests")
    # Domain variants cloned from a base agent: the base itself is never deployed.
    base = AgentVariant.objects.create(template=template, key="dtest-base", name="Test base")
    variant = AgentVariant.objects.create(template=template, key="dtest-itsm", name="Test ITSM", parent=base)
    other = AgentVariant.objects.create(template=template, key="dtest-hr", name="Test HR", parent=base)
    return Agent(
        variant=variant,
        v100=make_version(variant, "1.0.0"),
        v110=make_version(variant, "1.1.0"),
        v200=make_version(variant, "2.0.0"),
        draft=make_version(variant, "2.1.0", published=False),
        foreign=make_version(other, "1.0.0"),
    )


def put_deployment(
    client: Client,
    version: AgentVersion,
    *,
    status: str = Deployment.Status.DEPLOYED,
    name: str = "Helpdesk",
    submitted_by=None,
    pending_version: AgentVersion | None = None,
    pending_requested_by=None,
) -> Deployment:
    """A deployment in any state, written straight to the client's schema (setup, not the flow)."""
    with tenant_context(client):
        deployment = Deployment.objects.create(
            name=name,
            variant=version.variant,
            version=version,
            status=status,
            submitted_by=submitted_by,
            pending_version=pending_version,
            pending_requested_by=pending_requested_by,
        )
    return deployment_get(client=client, pk=deployment.pk)


def snapshot(client: Client, deployment: Deployment) -> tuple[dict, int]:
    """The deployment's stored fields and its number of transitions, to show nothing changed."""
    with tenant_context(client):
        row = Deployment.objects.filter(pk=deployment.pk).values().get()
        transitions = DeploymentTransition.objects.filter(deployment_id=deployment.pk).count()
    return row, transitions


def fresh(client: Client, deployment: Deployment) -> Deployment:
    return deployment_get(client=client, pk=deployment.pk)


def last_transition(client: Client, deployment: Deployment) -> DeploymentTransition:
    with tenant_context(client):
        return DeploymentTransition.objects.filter(deployment_id=deployment.pk).order_by("-pk").first()
