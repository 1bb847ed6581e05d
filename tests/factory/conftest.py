"""Fixtures for the factory tests: the seeded variants and a vendor platform admin as actor."""

import copy

import pytest

from apps.factory.models import AgentVariant


def small_spec(**overrides) -> dict:
    """A small valid spec: one entity, three tools, one workflow."""
    spec = {
        "instructions": "Help the service desk.",
        "tools": [
            {"name": "db.get", "entities": ["ticket"]},
            {"name": "db.update", "entities": ["ticket"]},
            {"name": "notify.email"},
        ],
        "data": [
            {
                "name": "ticket",
                "fields": [
                    {"name": "id", "required": True},
                    {"name": "subject", "required": True},
                    {"name": "status", "required": False},
                ],
            }
        ],
        "workflows": [
            {
                "name": "close_ticket",
                "inputs": ["ticket_id"],
                "steps": [
                    {
                        "id": "load",
                        "tool": "db.get",
                        "entity": "ticket",
                        "params": {"id": "{{ inputs.ticket_id }}"},
                    },
                    {
                        "id": "close",
                        "tool": "db.update",
                        "entity": "ticket",
                        "params": {"id": "{{ inputs.ticket_id }}", "status": "closed"},
                        "when": "steps.load.status != 'closed'",
                    },
                ],
            }
        ],
        "policy_pack": "baseline",
    }
    spec.update(copy.deepcopy(overrides))
    return spec


@pytest.fixture
def actor(world):
    return world.users["vendor_admin"]


@pytest.fixture
def base(world):
    return AgentVariant.objects.get(key="base")


@pytest.fixture
def itsm(world):
    return AgentVariant.objects.get(key="itsm")
