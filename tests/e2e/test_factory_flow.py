"""Agent Factory to deployment to rollout, end to end in a real browser.

The vendor admin clones the ITSM variant, edits its spec, previews the diff
and publishes 1.1.0 → a partner engineer deploys the clone's 1.0.0 for Acme
and submits it → Acme's client admin approves it on Acme's host → the
engineer deploys it → the vendor rolls 1.1.0 out to Acme (a real Celery
worker runs it) and then reverts the rollout.
"""

import re

from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from apps.deployments.models import Deployment
from apps.factory.models import AgentVariant, AgentVersion, Rollout
from apps.tenancy.models import Client
from tests.e2e.helpers import sign_in, sign_out

CLONE = {"key": "itsm-emea", "name": "ITSM EMEA", "domain": "IT service management"}
NEW_INSTRUCTIONS = "Triage EMEA tickets in the requester's language."
DEPLOYMENT = "Service desk EMEA"
WAIT_MS = 30_000


def acme_deployment() -> Deployment:
    with tenant_context(Client.objects.get(slug="acme")):
        return Deployment.objects.select_related("version").get(name=DEPLOYMENT)


def test_clone_publish_deploy_approve_roll_out_and_revert(
    page: Page, live_server, host_url, demo_data, celery_worker, screenshot
):
    platform = live_server.url
    acme = host_url("acme.localhost")
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "Publish this version?" confirmations

    # --- Vendor: clone ITSM, edit the spec, preview the diff, publish 1.1.0 ----------
    sign_in(page, platform, "admin@triplane.local", demo_data)
    page.goto(f"{platform}/vendor/factory/itsm/")
    page.get_by_role("link", name="Clone", exact=True).click()
    for field, value in CLONE.items():
        page.locator(f"form [name={field}]").fill(value)
    page.get_by_role("button", name="Clone variant").click()
    expect(page).to_have_url(f"{platform}/vendor/factory/{CLONE['key']}/")
    variant = AgentVariant.objects.get(key=CLONE["key"])
    assert variant.parent.key == "itsm"
    assert list(variant.versions.values_list("version", "status")) == [("1.0.0", "published")]

    page.get_by_role("link", name="Edit spec (new version)").click()
    spec = page.locator("form [name=spec]")
    yaml_text = spec.input_value()
    edited = re.sub(
        r"(?m)^instructions:.*(\n(?: .*|))*", f"instructions: {NEW_INSTRUCTIONS}\n", yaml_text, count=1
    )
    assert edited != yaml_text
    spec.fill(edited)
    expect(page.locator("form [name=version]")).to_have_value("1.1.0")
    page.locator("form [name=changelog]").fill("EMEA triage instructions.")
    page.get_by_role("button", name="Preview diff").click()
    expect(page.locator("#diff-preview")).to_contain_text("instructions")
    expect(page.locator("#diff-preview")).to_contain_text(NEW_INSTRUCTIONS)
    screenshot(page, "factory-editor-diff")
    page.get_by_role("button", name="Save and publish").click()
    expect(page).to_have_url(f"{platform}/vendor/factory/{CLONE['key']}/versions/1.1.0/")
    published = AgentVersion.objects.get(variant=variant, version="1.1.0")
    assert published.status == AgentVersion.Status.PUBLISHED
    assert published.spec["instructions"] == NEW_INSTRUCTIONS
    sign_out(page)

    # --- Partner engineer: a deployment of the clone's 1.0.0 for Acme, submitted -----
    client = Client.objects.get(slug="acme")
    sign_in(page, platform, "engineer@northwind.test", demo_data)
    page.goto(f"{platform}/partner/clients/{client.pk}/deployments/new/")
    page.locator("form [name=name]").fill(DEPLOYMENT)
    page.locator("form [name=variant]").select_option(label=CLONE["name"])
    page.locator("form [name=version]").select_option(label=f"{CLONE['key']} 1.0.0")
    page.get_by_role("button", name="Create deployment").click()
    page.get_by_role("button", name="Submit for approval").click()
    assert acme_deployment().status == Deployment.Status.SUBMITTED
    sign_out(page)

    # --- Acme's client admin approves on Acme's own host -------------------------------
    sign_in(page, acme, "admin@acme.test", demo_data)
    page.goto(f"{acme}/agents/")
    page.get_by_role("link", name=DEPLOYMENT).first.click()
    page.get_by_role("button", name="Approve deployment").click()
    assert acme_deployment().status == Deployment.Status.APPROVED
    sign_out(page)

    # --- The engineer deploys it ----------------------------------------------------------
    sign_in(page, platform, "engineer@northwind.test", demo_data)
    page.goto(f"{platform}/partner/clients/{client.pk}/deployments/{acme_deployment().pk}/")
    page.get_by_role("button", name="Deploy", exact=True).click()
    deployment = acme_deployment()
    assert deployment.status == Deployment.Status.DEPLOYED and deployment.version.version == "1.0.0"
    sign_out(page)

    # --- Vendor: roll 1.1.0 out to Acme (canary), then revert ------------------------------
    sign_in(page, platform, "admin@triplane.local", demo_data)
    page.goto(f"{platform}/vendor/rollouts/new/")
    with page.expect_response(re.compile(r"/vendor/rollouts/")):  # htmx narrows the versions to the variant
        page.locator("form [name=variant]").select_option(label=CLONE["name"])
    page.wait_for_load_state("networkidle")
    page.locator("form [name=target_version]").select_option(label=f"{CLONE['key']} / 1.1.0")
    page.locator("form [name=clients]").select_option(label="Acme Corporation")
    page.get_by_role("button", name="Start rollout").click()
    results = page.locator("#rollout-results")
    expect(results).to_have_attribute("data-status", "completed", timeout=WAIT_MS)
    expect(results).to_contain_text("Moved")
    screenshot(page, "rollout-completed")
    rollout = Rollout.objects.get(variant=variant)
    assert any(run.name == "apps.deployments.tasks.rollout_run" for run in celery_worker)
    assert acme_deployment().version.version == "1.1.0"

    page.get_by_role("link", name="Revert").click()
    page.get_by_role("button", name="Revert rollout").click()
    expect(page.locator("#rollout-results")).to_have_attribute("data-status", "reverted", timeout=WAIT_MS)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.REVERTED
    assert acme_deployment().version.version == "1.0.0"
