"""The governed runtime in a real browser, with a real Celery worker and Globex's real helpdesk database.

Globex's operator runs "resolve ticket" on a P1 ticket → the close is held for a client admin → the
client admin approves it in the approval inbox → the worker closes the ticket in the helpdesk database
→ the trace shows every step with its decision → "Verify" says the audit chain is intact.
"""

import re

import psycopg
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from apps.deployments.models import Deployment
from apps.runtime.management.commands.seed_runtime_demo import _server_dsn, helpdesk_database_name
from apps.runtime.models import Task
from apps.tenancy.models import Client
from tests.e2e.helpers import sign_in, sign_out

RESOLUTION = "ERP session store restarted; logins work again."


def _ticket(ref: str) -> tuple[int, str]:
    with psycopg.connect(_server_dsn(helpdesk_database_name("globex"))) as db:
        row = db.execute("SELECT tkt_id, stat_cd FROM hd_tkt WHERE tkt_ref = %s", [ref]).fetchone()
    assert row is not None
    return row


def test_operator_runs_a_p1_close_admin_approves_trace_and_audit_verify(
    page: Page, host_url, demo_data, celery_worker, screenshot
):
    globex_url = host_url("globex.localhost")
    page.set_default_timeout(20_000)
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm on approve
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    globex = Client.objects.get(slug="globex")
    with tenant_context(globex):
        deployment = Deployment.objects.get(status=Deployment.Status.DEPLOYED, variant__key="itsm")
    ticket_id, status = _ticket("INC-1005")
    assert status == "open"

    # --- Operator: run resolve_ticket on the P1 ticket ------------------------------------------
    sign_in(page, globex_url, "operator@globex.test", demo_data)
    page.goto(f"{globex_url}/run/?workflow={deployment.pk}:resolve_ticket")
    form = page.get_by_test_id("workflow-run")
    form.get_by_label("Ticket id").fill(str(ticket_id))
    form.get_by_label("Resolution").fill(RESOLUTION)
    form.get_by_role("button", name="Run resolve_ticket").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(globex_url)}/tasks/\d+/$"))
    task_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    # The worker loads the ticket, then the close waits for a client admin (the page polls).
    expect(page.get_by_test_id("task-status")).to_contain_text("Waiting for approval")
    expect(page.locator("li[data-step=resolve]")).to_have_attribute("data-status", "held")
    screenshot(page, "runtime-task-held")
    assert _ticket("INC-1005")[1] == "open"
    sign_out(page)

    # --- Client admin: approve it in the inbox ---------------------------------------------------
    sign_in(page, globex_url, "admin@globex.test", demo_data)
    page.get_by_role("link", name="Approvals", exact=True).click()
    with tenant_context(globex):
        approval_id = Task.objects.get(pk=task_id).steps.get(key="resolve").approval.pk
    row = page.locator(f"tr[data-approval='{approval_id}']")
    expect(row).to_contain_text("Client admin")
    row.get_by_role("link", name="resolve").click()
    expect(page.get_by_text("closed only with a client admin's approval").first).to_be_visible()
    screenshot(page, "runtime-approval")
    page.get_by_test_id("approve-form").get_by_role("button", name="Approve").click()

    # --- The worker closes the ticket; the trace shows every step ---------------------------------
    page.goto(f"{globex_url}/tasks/{task_id}/")
    expect(page.get_by_test_id("task-status")).to_contain_text("Completed")
    steps = page.locator("[data-testid=trace-steps] > li")
    expect(steps).to_have_count(5)
    for key in ("load", "resolve", "comment", "requester", "inform"):
        expect(page.locator(f"li[data-step={key}]")).to_have_attribute("data-status", "executed")
    resolve = page.locator("li[data-step=resolve]")
    expect(resolve.get_by_test_id("step-decision")).to_contain_text("approve_closing_p1")
    expect(resolve.get_by_test_id("step-approval")).to_contain_text("admin@globex.test")
    screenshot(page, "runtime-trace")
    assert _ticket("INC-1005")[1] == "resolved"

    # --- The audit chain is intact ----------------------------------------------------------------
    page.get_by_role("link", name="Audit log", exact=True).click()
    page.get_by_test_id("audit-verify").click()
    result = page.get_by_test_id("audit-verify-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("intact")
    screenshot(page, "runtime-audit-verified")
    assert [e for e in console_errors if "Failed to load resource" not in e] == []
