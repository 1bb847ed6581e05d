"""The governance demo seed: settings, a deployed agent, a published layered ruleset and logged decisions."""

import io

from django.core.management import call_command
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment
from apps.governance.models import DecisionLog, RulesetVersion, RuleTestCase
from apps.tenancy.models import Client


def test_seed_governance_demo_is_idempotent(world):
    slug = world.client_a.slug
    for _ in range(2):
        call_command("seed_governance_demo", client=slug, stdout=io.StringIO())
    client = Client.objects.get(slug=slug)
    assert client.own_domains == [f"{slug}.test"] and client.timezone == "America/New_York"
    with tenant_context(client):
        assert Deployment.objects.filter(status=Deployment.Status.DEPLOYED).count() == 1
        version = RulesetVersion.objects.get()
        assert version.is_active and {r["layer"] for r in version.rules} == {"partner", "client"}
        assert RuleTestCase.objects.count() == 1
        decisions = list(DecisionLog.objects.order_by("pk"))
    assert len(decisions) == 7 and {d.trace_id for d in decisions} == {"demo-trace-1"}
    by_tool = {(d.action["tool"], d.action["params"].get("limit")): d for d in decisions}
    # Saturday in New York: the partner rule holds the plain ticket update for an operator.
    assert (
        decisions[3].effect == "require_approval" and decisions[3].deciding_rule == "hold_after_hours_updates"
    )
    # The shadow rule would have denied the 500-row query, without deciding it.
    big = by_tool[("db.query", 500)]
    assert big.effect != "deny" and big.shadow_results["changed"] is True
    assert decisions[5].effect == "deny"  # a delete
