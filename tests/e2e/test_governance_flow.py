"""A client's governance rules, end to end in a real browser (management portal, partner engineer).

Setup: Acme runs a deployed helpdesk agent whose version pins no policy pack (so only the rules
written here decide, whatever the built-in packs hold), and three of its actions are already in the
decision log — all denied, since nothing is published yet (zero trust).

The engineer adds a rule whose CEL condition has a syntax error and sees the live check flag it
without submitting, fixes it and saves; adds a test case the rule makes fail; tries to publish and
is blocked by that case; fixes the rule, publishes, sees the active version; then replays it against
the decision log and sees the one decision it changes.
"""

import re

from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from apps.accounts.models import User
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVersion
from apps.governance import services as governance_services
from apps.governance.models import RulesetVersion
from apps.tenancy.models import Client
from tests.e2e.helpers import sign_in

DEPLOYMENT = "Helpdesk without pack"
RULE_KEY = "allow_routine_ticket_updates"
BROKEN = "action.params.priority == 'low' &&"
TOO_NARROW = "action.params.priority == 'low'"
FIXED = "action.params.priority != 'critical'"
CASE = "high priority update runs"


def deployed_agent(client: Client) -> Deployment:
    """An ITSM agent, deployed for `client`, pinned to a version without a policy pack."""
    itsm = AgentVersion.objects.get(variant__key="itsm", version="1.0.0")
    version = AgentVersion.objects.create(
        variant=itsm.variant,
        version="1.9.0",
        major=1,
        minor=9,
        patch=0,
        status=AgentVersion.Status.PUBLISHED,
        spec=itsm.spec,
        changelog="Without a policy pack, for the governance flow.",
        derived_from=itsm,
        policy_pack_version=None,
    )
    engineer = User.objects.get(email="engineer@northwind.test")
    admin = User.objects.get(email="admin@acme.test")
    deployment = deployment_services.deployment_create(
        client=client, variant=itsm.variant, version=version, name=DEPLOYMENT, actor=engineer
    )
    for step, actor in (("submit", engineer), ("approve", admin), ("deploy", engineer)):
        getattr(deployment_services, f"deployment_{step}")(client=client, deployment=deployment, actor=actor)
    return deployment


def update(ticket: str, priority: str) -> dict:
    return {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": {"id": ticket, "priority": priority},
    }


def test_write_test_publish_and_replay_a_rule(page: Page, live_server, demo_data, screenshot):
    platform = live_server.url
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "Publish draft v1?"

    client = Client.objects.get(slug="acme")
    deployment = deployed_agent(client)
    logged = {}
    for name, action in {
        "high": update("T-1", "high"),
        "critical": update("T-2", "critical"),
        "read": {"tool": "db.query", "operation": "read", "entity": "ticket"},
    }.items():
        _decision, logged[name] = governance_services.decision_make(
            client=client, deployment=deployment, action=action, rate_counter=lambda key, window: 0
        )
    assert {entry.effect for entry in logged.values()} == {"deny"}  # nothing published: zero trust

    # --- The governance page, from the client's page -----------------------------------------
    sign_in(page, platform, "engineer@northwind.test", demo_data)
    page.goto(f"{platform}/partner/clients/{client.pk}/")
    page.get_by_role("link", name="Governance rules").click()
    rules_url = f"{platform}/partner/clients/{client.pk}/governance/"
    expect(page).to_have_url(rules_url)
    expect(page.get_by_text("No rules yet")).to_be_visible()
    expect(page.get_by_test_id("active-state")).to_have_text("Nothing published yet")

    # --- A rule with a syntax error: the live check flags it before anything is submitted ------
    page.get_by_role("link", name="Add rule").first.click()
    form_url = page.url
    page.locator("form [name=key]").fill(RULE_KEY)
    page.locator("form [name=name]").fill("Ticket updates below critical")
    page.locator("form [name=tools]").select_option(["db.update"])
    page.locator("form [name=entities]").select_option(["ticket"])
    page.locator("form [name=message]").fill("Agents may update tickets.")
    check = page.get_by_test_id("condition-check")
    page.locator("form [name=condition]").fill(BROKEN)
    expect(check).to_have_attribute("data-state", "error")
    expect(check).to_contain_text("Line 1, column")
    expect(check).to_contain_text("Syntax error")
    assert page.url == form_url  # nothing was submitted
    screenshot(page, "governance-live-check-error")
    page.locator("form [name=condition]").fill(TOO_NARROW)
    expect(check).to_have_attribute("data-state", "ok")
    expect(check).to_contain_text("✓ compiles, reads: action.params.priority")
    page.get_by_role("button", name="Add rule").click()
    expect(page).to_have_url(rules_url)
    expect(page.get_by_test_id("draft-state")).to_have_text("Draft v1 — not published")
    expect(page.get_by_test_id(f"rule-{RULE_KEY}")).to_contain_text(TOO_NARROW)

    # --- A test case the rule makes fail -----------------------------------------------------------
    page.get_by_role("link", name="Test cases").click()
    expect(page.get_by_text("No test cases yet")).to_be_visible()
    page.get_by_role("link", name="Add test case").first.click()
    page.locator("form [name=name]").fill(CASE)
    page.locator("form [name=deployment]").select_option(str(deployment.pk))
    page.locator("form [name=tool]").fill("db.update")
    page.locator("form [name=operation]").select_option("update")
    page.locator("form [name=entity]").fill("ticket")
    page.locator("form [name=params]").fill('{"id": "T-9", "priority": "high"}')
    page.locator("form [name=expected_effect]").select_option("allow")
    page.get_by_role("button", name="Add test case").click()
    expect(page.get_by_test_id("test-cases")).to_contain_text(CASE)
    page.get_by_role("button", name="Run all").click()
    expect(page.get_by_test_id("test-results")).to_contain_text("0 of 1 pass")

    # --- Publishing is blocked by the failing case ------------------------------------------------
    page.get_by_role("link", name="Publish", exact=True).click()
    blocked = page.get_by_test_id("publish-blocked")
    expect(blocked).to_contain_text("Publishing is blocked")
    expect(page.get_by_test_id("failing-cases")).to_contain_text(CASE)
    expect(page.get_by_role("button", name="Publish v1")).to_be_disabled()
    screenshot(page, "governance-publish-blocked")
    with tenant_context(client):
        assert not RulesetVersion.objects.filter(status="published").exists()

    # --- Fix the rule, publish, see the active version ----------------------------------------------
    page.get_by_role("link", name="Rules", exact=True).click()
    page.get_by_test_id(f"rule-{RULE_KEY}").get_by_role("link", name=re.compile("^Edit")).click()
    page.locator("form [name=condition]").fill(FIXED)
    expect(check).to_have_attribute("data-state", "ok")
    page.get_by_role("button", name="Save rule").click()
    expect(page).to_have_url(rules_url)
    page.get_by_role("link", name="Review and publish v1").click()
    expect(page.get_by_test_id("publish-ready")).to_be_visible()
    expect(page.get_by_test_id("rules-diff")).to_contain_text(RULE_KEY)
    page.get_by_role("button", name="Publish v1").click()
    expect(page).to_have_url(rules_url)
    expect(page.get_by_text("Version 1 is published and active")).to_be_visible()
    expect(page.get_by_test_id("active-state")).to_have_text("Active v1")
    expect(page.get_by_test_id("draft-state")).to_have_count(0)
    with tenant_context(client):
        active = RulesetVersion.objects.get(is_active=True)
    assert active.number == 1 and active.rules[0]["condition"] == FIXED

    # --- Replay the active version against the decision log -------------------------------------------
    page.get_by_role("link", name="Replay", exact=True).click()
    expect(page.locator("form [name=last]")).to_have_value("200")
    page.get_by_role("button", name="Replay v1").click()
    result = page.get_by_test_id("replay-result")
    expect(result).to_contain_text("1 of 3 decisions would change with v1")
    changed = page.get_by_test_id(f"change-{logged['high'].pk}")
    expect(changed).to_contain_text(DEPLOYMENT)
    expect(changed).to_contain_text("db.update")
    expect(changed.locator("[data-effect=deny]")).to_be_visible()
    expect(changed.locator("[data-effect=allow]")).to_be_visible()
    expect(changed).to_contain_text(RULE_KEY)
    expect(page.get_by_test_id(f"change-{logged['critical'].pk}")).to_have_count(0)
    screenshot(page, "governance-replay")
