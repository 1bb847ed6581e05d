"""A client's own governance rules, end to end in a real browser (Acme's host).

Acme's client admin opens Rules (nothing published yet), adds a stricter rule whose condition has
a syntax error and sees the error with its line and column, fixes it, reviews the draft's changes
and publishes it, and finds the rule among the active rules with a client badge → Acme's operator
sees the same rules with no way to change them.
"""

import re

from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from apps.governance.models import RulesetVersion
from apps.tenancy.models import Client
from tests.e2e.helpers import sign_in, sign_out

RULE = {
    "key": "deny_big_updates",
    "name": "No big updates by agents",
    "message": "Updates over 5,000 are made by a person.",
}
BAD_CONDITION = "action.params.amount >"
GOOD_CONDITION = "action.params.amount > 5000"


def test_client_admin_adds_and_publishes_a_stricter_rule_operator_only_reads(
    page: Page, host_url, demo_data, screenshot
):
    acme = host_url("acme.localhost")
    page.set_default_timeout(15_000)
    # A strict CSP: a refused inline script or style shows up as a console error. Failed requests too
    # (but the browser's own favicon request, which this site does not serve).
    console_errors: list[str] = []
    page.on(
        "console", lambda message: console_errors.append(message.text) if message.type == "error" else None
    )
    failed: list[str] = []
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )

    # --- Client admin: Rules is empty; add a rule, fix its condition ---------------------------
    sign_in(page, acme, "admin@acme.test", demo_data)
    expect(page).to_have_url(f"{acme}/")
    page.get_by_role("link", name="Rules", exact=True).click()
    expect(page).to_have_url(f"{acme}/rules/")
    expect(page.get_by_text("No rules yet")).to_be_visible()
    expect(page.get_by_test_id("active-version")).to_contain_text("nothing published yet")

    page.get_by_role("link", name="Add a rule").first.click()
    expect(page).to_have_url(f"{acme}/rules/new/")
    expect(page.get_by_test_id("context-doc")).to_contain_text("tenant.allowed_hosts")
    for field, value in RULE.items():
        page.locator(f"form [name={field}]").fill(value)
    page.locator("input[name=operations][value=update]").check()
    page.locator("form [name=condition]").fill(BAD_CONDITION)
    page.locator("form [name=effect]").select_option("deny")
    page.locator("form [name=severity]").select_option("high")
    page.get_by_role("button", name="Save to draft").click()

    errors = page.get_by_test_id("condition-errors")
    expect(errors).to_be_visible()
    expect(page.get_by_test_id("condition-position")).to_have_text("Line 1, column 23")
    expect(errors).to_contain_text("Syntax error")
    screenshot(page, "client-rule-condition-error")
    # Everything else the admin typed is kept.
    expect(page.locator("form [name=key]")).to_have_value(RULE["key"])
    expect(page.locator("input[name=operations][value=update]")).to_be_checked()
    page.locator("form [name=condition]").fill(GOOD_CONDITION)
    page.get_by_role("button", name="Save to draft").click()

    expect(page).to_have_url(f"{acme}/rules/")
    expect(page.get_by_text(f"Rule {RULE['key']} was added to the draft")).to_be_visible()
    expect(page.get_by_test_id("draft")).to_contain_text(f"{RULE['key']} added")

    # --- Review the draft and publish it ------------------------------------------------------------
    page.get_by_role("link", name="Review and publish").first.click()
    expect(page).to_have_url(f"{acme}/rules/publish/")
    expect(page.get_by_test_id("publish-ok")).to_be_visible()
    change = page.locator(f"tr[data-key={RULE['key']}][data-kind=added]")
    expect(change).to_contain_text(RULE["name"])
    expect(change).to_contain_text("Client")
    screenshot(page, "client-rules-publish")
    page.get_by_role("button", name="Publish version 1").click()

    expect(page).to_have_url(f"{acme}/rules/")
    expect(page.get_by_text("Version 1 of the rules is published and active.")).to_be_visible()
    expect(page.get_by_test_id("draft")).to_have_count(0)
    row = page.locator(f"tr[data-testid=rule-{RULE['key']}][data-section=active]")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("layer-badge")).to_have_text("Client")
    expect(row).to_contain_text(GOOD_CONDITION)
    expect(row.get_by_role("link", name=re.compile("^Edit"))).to_be_visible()
    expect(page.get_by_test_id("active-version")).to_contain_text("version 1, published")
    screenshot(page, "client-rules-active")

    with tenant_context(Client.objects.get(slug="acme")):
        active = RulesetVersion.objects.get(is_active=True)
    assert [(r["key"], r["layer"], r["condition"]) for r in active.rules] == [
        (RULE["key"], "client", GOOD_CONDITION)
    ]
    sign_out(page)

    # --- Operator: the same rules, read-only -----------------------------------------------------
    sign_in(page, acme, "operator@acme.test", demo_data)
    page.get_by_role("link", name="Rules", exact=True).click()
    expect(page).to_have_url(f"{acme}/rules/")
    row = page.locator(f"tr[data-testid=rule-{RULE['key']}][data-section=active]")
    expect(row.get_by_test_id("layer-badge")).to_have_text("Client")
    main = page.locator("main")
    expect(main.get_by_role("link", name=re.compile("^(Edit|Delete)"))).to_have_count(0)
    expect(main.get_by_role("link", name="Add a rule")).to_have_count(0)
    expect(main.get_by_role("link", name="Review and publish")).to_have_count(0)
    # The decision log is open to operators too.
    page.get_by_role("link", name="Decisions", exact=True).click()
    expect(page.get_by_text("No decisions yet")).to_be_visible()

    assert failed == []
    assert [e for e in console_errors if "Failed to load resource" not in e] == []
