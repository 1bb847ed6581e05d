"""The policy-pack editor, end to end in a real browser.

The vendor admin opens the Agent Factory, opens the ITSM pack, starts a new version, adds a rule
whose CEL condition does not parse, presses Check and sees the error with its rule, line and
position; fixes it, checks again (the new rule shows as added) and publishes 1.1.0, which then
lists the new rule.
"""

import re

from playwright.sync_api import Page, expect

from apps.factory.models import PolicyPackVersion
from tests.e2e.helpers import sign_in

PACK = "itsm-baseline"
NEW_RULE = """\
  - key: hold_weekend_escalations
    name: Weekend escalations need an operator
    selector:
      tools: [db.update]
      entities: [ticket]
    condition: {condition}
    effect: require_approval
    approver_role: operator
    message: Escalations at the weekend are confirmed by an operator.
"""
BAD_CONDITION = "time.weekday >= 6 &&"
GOOD_CONDITION = "time.weekday >= 6 && has(action.params.status) && action.params.status == 'escalated'"


def test_vendor_fixes_a_bad_condition_and_publishes_a_pack_version(
    page: Page, live_server, demo_data, screenshot
):
    platform = live_server.url
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "Publish this pack version?"

    sign_in(page, platform, "admin@triplane.local", demo_data)
    page.goto(f"{platform}/vendor/factory/")
    page.get_by_role("link", name="ITSM baseline", exact=True).click()
    expect(page).to_have_url(f"{platform}/vendor/packs/{PACK}/")
    expect(page.get_by_test_id("pack-rules")).to_contain_text("stop_runaway_loops")
    expect(page.get_by_test_id("pack-usage")).to_contain_text("ITSM agent")

    page.get_by_role("link", name="New version").first.click()
    expect(page).to_have_url(f"{platform}/vendor/packs/{PACK}/versions/new/")
    rules = page.locator("form [name=rules]")
    current = rules.input_value()
    assert current.startswith("rules:\n") and "stop_runaway_loops" in current
    bad = current.rstrip("\n") + "\n" + NEW_RULE.format(condition=BAD_CONDITION)
    rules.fill(bad)
    expect(page.locator("form [name=version]")).to_have_value("1.1.0")
    page.locator("form [name=changelog]").fill("Weekend escalations are held for an operator.")

    # Check: the error names the rule, its path, its YAML line and the position in the condition.
    page.get_by_role("button", name="Check").click()
    errors = page.get_by_test_id("pack-errors")
    expect(errors).to_contain_text("hold_weekend_escalations")
    expect(errors).to_contain_text(re.compile(r"rules\[\d+\]\.condition"))
    bad_line = bad.splitlines().index(f"    condition: {BAD_CONDITION}") + 1
    expect(errors).to_contain_text(f"Line {bad_line}")
    expect(errors).to_contain_text(re.compile(r"condition 1:\d+"))
    screenshot(page, "pack-editor-error")
    assert not PolicyPackVersion.objects.filter(pack__key=PACK, version="1.1.0").exists()

    # Fixed: the check passes and shows the new rule as added; then publish.
    rules.fill(current.rstrip("\n") + "\n" + NEW_RULE.format(condition=f'"{GOOD_CONDITION}"'))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_test_id("pack-check-ok")).to_be_visible()
    expect(page.get_by_test_id("rule-diff")).to_contain_text("hold_weekend_escalations")
    expect(page.get_by_test_id("rule-diff")).to_contain_text("added")
    page.get_by_role("button", name="Publish").click()

    expect(page).to_have_url(f"{platform}/vendor/packs/{PACK}/versions/1.1.0/")
    expect(page.get_by_test_id("pack-rules")).to_contain_text("hold_weekend_escalations")
    expect(page.get_by_test_id("pack-rules")).to_contain_text(GOOD_CONDITION)
    expect(page.get_by_test_id("pack-changelog")).to_contain_text("Weekend escalations")
    screenshot(page, "pack-version-published")
    published = PolicyPackVersion.objects.get(pack__key=PACK, version="1.1.0")
    assert published.rules[-1]["key"] == "hold_weekend_escalations"
    assert published.rules[-1]["condition"] == GOOD_CONDITION

    # The pack page lists it as the latest version, and the audit trail names the publisher.
    page.get_by_role("link", name=PACK).first.click()
    expect(page.get_by_test_id("pack-latest")).to_contain_text("1.1.0")
    expect(page.get_by_test_id("pack-versions")).to_contain_text("1.0.0")
    expect(page.locator("body")).to_contain_text("admin@triplane.local")
