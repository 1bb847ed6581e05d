"""Onboarding, end to end in a real browser.

The vendor admin creates a partner and invites its admin → the partner admin
sets a password, signs in and creates a client project, which a real Celery
worker provisions while the page polls → the client's admin (seeded) signs in
on the client's own host and sees the dashboard. Screenshots of each portal's
home go to <output dir>/screenshots/.
"""

import re
from urllib.parse import urlsplit

from django_tenants.utils import schema_exists
from playwright.sync_api import Page, expect

from apps.accounts.models import PartnerMembership, PartnerRole, User
from apps.tenancy.models import Client, Partner
from tests.e2e.helpers import sign_in, sign_out

PARTNER = {"name": "Contoso Delivery", "slug": "contoso", "contact_email": "team@contoso.test"}
PARTNER_ADMIN = {"full_name": "Casey Contoso", "email": "casey@contoso.test"}
NEW_PASSWORD = "Kestrel-orbit-4419"
CLIENT = {"name": "Contoso Retail", "slug": "contoso-retail"}
SET_PASSWORD_LINK = re.compile(r"https?://\S+/accounts/set-password/\S+/")
PROVISIONING_TIMEOUT_MS = 30_000


def test_vendor_partner_client_onboarding(
    page: Page, live_server, host_url, demo_data, celery_worker, mailoutbox, screenshot
):
    platform = live_server.url  # http://localhost:<port>
    page.set_default_timeout(15_000)

    # --- Vendor admin: new partner, invitation for its first admin --------------
    sign_in(page, platform, "admin@triplane.local", demo_data)
    expect(page).to_have_url(f"{platform}/vendor/")
    screenshot(page, "vendor-home")

    page.get_by_role("link", name="New partner").first.click()
    expect(page).to_have_url(f"{platform}/vendor/partners/new/")
    for field, value in PARTNER.items():
        page.locator(f"form [name={field}]").fill(value)
    page.get_by_role("button", name="Create partner").click()

    partner = Partner.objects.get(slug=PARTNER["slug"])
    expect(page).to_have_url(f"{platform}/vendor/partners/{partner.pk}/invite/")
    for field, value in PARTNER_ADMIN.items():
        page.locator(f"form [name={field}]").fill(value)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation sent to {PARTNER_ADMIN['email']}")).to_be_visible()

    # The live server thread shares this process, so its locmem outbox is ours.
    assert len(mailoutbox) == 1, [m.subject for m in mailoutbox]
    invitation = mailoutbox[0]
    assert invitation.to == [PARTNER_ADMIN["email"]]
    match = SET_PASSWORD_LINK.search(invitation.body)
    assert match, invitation.body
    link = match.group(0)
    assert urlsplit(link).netloc == urlsplit(platform).netloc  # built from the request's host
    membership = PartnerMembership.objects.get(user__email=PARTNER_ADMIN["email"])
    assert membership.partner == partner and membership.role == PartnerRole.PARTNER_ADMIN
    sign_out(page)

    # --- Partner admin: set a password, sign in, create a client project ---------
    page.goto(link)
    page.locator("form [name=new_password1]").fill(NEW_PASSWORD)
    page.locator("form [name=new_password2]").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()
    assert User.objects.get(email=PARTNER_ADMIN["email"]).has_usable_password()

    sign_in(page, platform, PARTNER_ADMIN["email"], NEW_PASSWORD)
    expect(page).to_have_url(f"{platform}/partner/")
    screenshot(page, "partner-home")

    page.get_by_role("link", name="New client project").first.click()
    expect(page).to_have_url(f"{platform}/partner/clients/new/")
    for field, value in CLIENT.items():
        page.locator(f"form [name={field}]").fill(value)
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if request.url.endswith("/status/") else None
    )
    page.locator("main form button[type=submit]").click()

    client = Client.objects.get(slug=CLIENT["slug"])
    assert client.partner == partner
    expect(page).to_have_url(f"{platform}/partner/clients/{client.pk}/")
    status = page.locator("#client-status")
    expect(status).to_be_visible()
    first_status = status.get_attribute("data-status")
    assert first_status in (Client.Status.PROVISIONING, Client.Status.READY)
    # The worker provisions the schema; htmx polls the status block every 2 s until it is ready.
    expect(page.locator("#client-status[data-status=ready]")).to_be_visible(timeout=PROVISIONING_TIMEOUT_MS)
    if first_status == Client.Status.PROVISIONING:
        # (Unless the worker beat the page render.) It became ready through the htmx poll.
        assert polls and polls[-1].endswith(f"/partner/clients/{client.pk}/status/"), polls
    screenshot(page, "partner-client-ready")

    client.refresh_from_db()
    assert client.status == Client.Status.READY, client.provisioning_error
    assert client.provisioned_at is not None
    assert schema_exists(client.schema_name)
    provisioned = [run for run in celery_worker if run.name == "apps.tenancy.tasks.provision_client"]
    assert [(run.args, run.state, run.result) for run in provisioned] == [((client.pk,), "SUCCESS", "ready")]
    assert provisioned[0].thread != "MainThread"  # the worker's thread, not an eager call
    sign_out(page)

    # --- Client admin (seeded) on the client's own host ----------------------------
    acme = host_url("acme.localhost")
    sign_in(page, acme, "admin@acme.test", demo_data)
    expect(page).to_have_url(f"{acme}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Corporation")
    screenshot(page, "client-dashboard")
