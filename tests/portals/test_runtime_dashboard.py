"""Client dashboard, the governed runtime: run a workflow, the tasks list, a task's trace, approvals.

Tasks run end to end in the test process (services.task_advance, what a worker does) with an agent whose
only tool is notify.email (tests/matrix/cases_runtime.py): mail to acme.test is allowed, "Hold …" subjects
wait for a client admin, "Check …" subjects for an operator, mail to evil.example is denied.
"""

import json
import re

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment
from apps.runtime import notifications, services
from apps.runtime.models import Approval, Step, Task
from tests.matrix.cases_runtime import WORKFLOW, held, mail_agent, run_notice


def tasks(world) -> list[Task]:
    with tenant_context(world.client_a):
        return list(Task.objects.order_by("pk"))


def fresh(world, approval: Approval) -> Approval:
    with tenant_context(world.client_a):
        return Approval.objects.select_related("step__task").get(pk=approval.pk)


def advance(world, task_id: int) -> Task:
    return services.task_advance(client=world.client_a, task_id=task_id)


def choice(world) -> str:
    return f"{mail_agent(world).pk}:{WORKFLOW}"


def run_data(world, **overrides) -> dict:
    data = {"workflow": choice(world), "in_to": "ops@acme.test", "in_subject": "Rota", "in_body": "Hello."}
    data.update(overrides)
    return data


# --- Run a workflow -------------------------------------------------------------------------------


def test_the_run_page_offers_deployed_workflows_and_a_field_per_input(world, client_host):
    deployment = mail_agent(world)
    browser = client_host("client_a_operator")
    page = browser.get("/run/").content.decode()
    assert f'value="{deployment.pk}:{WORKFLOW}"' in page and "Notice agent — send_notice" in page
    assert 'name="in_to"' not in page  # nothing chosen yet

    page = browser.get("/run/", {"workflow": choice(world)}).content.decode()
    for name in ("in_to", "in_subject", "in_body"):
        assert re.search(rf'<input[^>]+name="{name}"[^>]+required', page), name

    # htmx swaps only the inputs card when the choice changes.
    fragment = browser.get("/run/", {"workflow": choice(world)}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-inputs"' in fragment and "<html" not in fragment and 'name="in_body"' in fragment


def test_a_paused_agent_offers_nothing_to_run(world, client_host):
    deployment = mail_agent(world)
    with tenant_context(world.client_a):
        Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.Status.PAUSED)
    browser = client_host("client_a_operator")
    assert "No workflows to run" in browser.get("/run/").content.decode()
    response = browser.post("/run/", run_data(world))
    assert response.status_code == 200 and "not one of a deployed agent" in response.content.decode()
    assert tasks(world) == []


def test_running_a_workflow_queues_a_task_and_opens_its_trace(world, client_host):
    browser = client_host("client_a_operator")
    response = browser.post("/run/", run_data(world))
    [task] = tasks(world)
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    assert task.source == Task.Source.DASHBOARD and task.status == Task.Status.QUEUED
    assert task.requested_by == world.users["client_a_operator"] and task.workflow == WORKFLOW
    assert task.inputs == {"to": "ops@acme.test", "subject": "Rota", "body": "Hello."}
    assert task.principal["role"] == "operator"

    advance(world, task.pk)
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]
    page = browser.get(f"/tasks/{task.pk}/").content.decode()
    assert 'data-status="completed"' in page and 'data-step="send"' in page
    assert "rt_allow_mail" in page and "partner layer" in page  # the deciding rule and its layer
    assert "&quot;sent_to&quot;" in page  # the result as JSON
    assert task.trace_id in page and "client.a.operator@example.com" in page


def test_every_input_is_required_and_nothing_runs_without_them(world, client_host):
    response = client_host("client_a_admin").post("/run/", run_data(world, in_body=""))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert tasks(world) == []


def test_a_workflow_that_is_not_offered_is_refused(world, client_host):
    mail_agent(world)
    response = client_host("client_a_admin").post("/run/", run_data(world, workflow="999999:send_notice"))
    assert "not one of a deployed agent" in response.content.decode()
    assert tasks(world) == []


def test_viewers_read_tasks_but_are_offered_no_run_button(world, client_host):
    run_notice(world)
    page = client_host("client_a_viewer").get("/tasks/").content.decode()
    assert "Run a workflow" not in page and 'data-status="completed"' in page
    assert "Run a workflow" in client_host("client_a_operator").get("/tasks/").content.decode()


# --- Tasks list -----------------------------------------------------------------------------------


def test_the_tasks_list_filters_by_status_agent_and_workflow(world, client_host):
    done = run_notice(world, "Weekly")
    waiting = run_notice(world, "Hold: payroll")
    denied = run_notice(world, "Weekly", to="x@evil.example")
    assert (done.status, waiting.status, denied.status) == ("completed", "waiting", "stopped")
    browser = client_host("client_a_viewer")

    def listed(**params) -> set[int]:
        page = browser.get("/tasks/", params).content.decode()
        return {int(pk) for pk in re.findall(r'data-task="(\d+)"', page)}

    assert listed() == {done.pk, waiting.pk, denied.pk}
    assert listed(status="waiting") == {waiting.pk}
    assert listed(status="stopped") == {denied.pk}
    assert listed(deployment=str(done.deployment_id), workflow=WORKFLOW) == {done.pk, waiting.pk, denied.pk}
    assert listed(workflow="no_such_workflow") == {done.pk, waiting.pk, denied.pk}  # not a choice: ignored
    page = browser.get("/tasks/", {"status": "failed"}).content.decode()
    assert "No tasks match" in page


def test_the_tasks_list_is_paginated_and_has_an_empty_state(world, client_host):
    browser = client_host("client_a_operator")
    assert "No tasks yet" in browser.get("/tasks/").content.decode()
    deployment = mail_agent(world)
    for n in range(27):
        services.task_create(
            client=world.client_a,
            deployment=deployment,
            workflow=WORKFLOW,
            inputs={"to": "ops@acme.test", "subject": f"n{n}", "body": "x"},
            source=Task.Source.API,
            actor=None,
            enqueue=False,
        )
    first = browser.get("/tasks/").content.decode()
    second = browser.get("/tasks/", {"page": "2"}).content.decode()
    assert len(re.findall(r'data-task="\d+"', first)) == 25
    assert len(re.findall(r'data-task="\d+"', second)) == 2
    assert "Showing" in first and 'rel="next"' in first


# --- Trace ----------------------------------------------------------------------------------------


def test_the_trace_polls_while_queued_and_stops_once_finished(world, client_host):
    task = services.task_create(
        client=world.client_a,
        deployment=mail_agent(world),
        workflow=WORKFLOW,
        inputs={"to": "ops@acme.test", "subject": "Poll", "body": "x"},
        source=Task.Source.DASHBOARD,
        actor=world.users["client_a_operator"],
        enqueue=False,
    )
    browser = client_host("client_a_viewer")
    page = browser.get(f"/tasks/{task.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page and "Waiting for a worker" in page
    # The poll gets the fragment alone.
    fragment = browser.get(f"/tasks/{task.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="task-trace"') and "<html" not in fragment

    advance(world, task.pk)
    fragment = browser.get(f"/tasks/{task.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="completed"' in fragment and "hx-trigger" not in fragment


def test_a_waiting_task_stops_polling_and_shows_the_held_step(world, client_host):
    approval = held(world)
    page = client_host("client_a_viewer").get(f"/tasks/{approval.step.task_id}/").content.decode()
    assert "hx-trigger" not in page and 'data-status="waiting"' in page
    assert 'data-status="held"' in page and "A client admin approves notices marked Hold." in page
    assert "rt_hold_for_admin" in page and f"/approvals/{approval.pk}/" in page


def test_a_denied_step_shows_the_reason_and_the_deciding_rule(world, client_host):
    task = run_notice(world, to="boss@evil.example")
    page = client_host("client_a_viewer").get(f"/tasks/{task.pk}/").content.decode()
    assert 'data-status="denied"' in page and "Mail to evil.example is forbidden." in page
    assert "rt_deny_evil" in page
    assert mail.outbox == []


def test_long_results_are_truncated_on_the_page(world, client_host):
    task = run_notice(world)
    with tenant_context(world.client_a):
        Step.objects.filter(task=task).update(result={"rows": ["x" * 100] * 200})
    page = client_host("client_a_viewer").get(f"/tasks/{task.pk}/").content.decode()
    assert "Shortened; the API returns the whole result." in page
    assert page.count("x" * 100) < 200


def test_another_clients_task_is_not_found(world, client_host):
    task = run_notice(world)
    assert client_host("client_b_admin", client=world.client_b).get(f"/tasks/{task.pk}/").status_code == 404


# --- Approvals inbox -------------------------------------------------------------------------------


def test_the_inbox_lists_what_each_role_may_decide(world, client_host):
    for_admin = held(world)
    for_operator = held(world, "operator")
    admin_page = client_host("client_a_admin").get("/approvals/").content.decode()
    operator_page = client_host("client_a_operator").get("/approvals/").content.decode()
    assert (
        f'data-approval="{for_admin.pk}"' in admin_page and f'data-approval="{for_operator.pk}"' in admin_page
    )
    assert f'data-approval="{for_operator.pk}"' in operator_page
    assert f'data-approval="{for_admin.pk}"' not in operator_page
    assert "escalated" not in admin_page


def test_the_inbox_shows_escalation_and_a_tab_of_decided_ones(world, client_host):
    approval = held(world)
    with tenant_context(world.client_a):
        Approval.objects.filter(pk=approval.pk).update(escalated_at=timezone.now())
    browser = client_host("client_a_admin")
    assert 'data-testid="escalated"' in browser.get("/approvals/").content.decode()
    assert "Nothing decided yet" in browser.get("/approvals/", {"tab": "decided"}).content.decode()

    services.approval_reject(
        client=world.client_a, approval_id=approval.pk, actor=world.users["client_a_admin"], reason="No."
    )
    assert "Nothing waits for you" in browser.get("/approvals/").content.decode()
    decided = browser.get("/approvals/", {"tab": "decided"}).content.decode()
    assert f'data-approval="{approval.pk}"' in decided and "client.a.admin@example.com" in decided


# --- One approval ---------------------------------------------------------------------------------


def test_the_approval_page_shows_the_held_action_and_its_evidence(world, client_host):
    approval = held(world)
    page = client_host("client_a_admin").get(f"/approvals/{approval.pk}/").content.decode()
    assert "A client admin approves notices marked Hold." in page
    assert "Hold: payroll run" in page  # the held parameters
    assert "rt_hold_for_admin" in page and approval.step.action_hash in page
    # Approve and reject ask for confirmation (static JS, no inline script).
    assert re.search(r'<form[^>]+approve/"[^>]*\n?[^>]*data-confirm=', page)
    assert re.search(r'<form[^>]+reject/"[^>]*\n?[^>]*data-confirm=', page)
    assert "<script>" not in page and " onclick=" not in page


def test_approving_runs_the_held_action(world, client_host):
    approval = held(world)
    browser = client_host("client_a_admin")
    response = browser.post(f"/approvals/{approval.pk}/approve/", {"note": "Payroll checked."})
    assert response.status_code == 302 and response["Location"] == f"/tasks/{approval.step.task_id}/"
    approval = fresh(world, approval)
    assert (
        approval.status == Approval.Status.APPROVED and approval.decided_by == world.users["client_a_admin"]
    )
    assert approval.decision_note == "Payroll checked."
    assert mail.outbox == []  # nothing ran yet: the worker does it
    task = advance(world, approval.step.task_id)
    assert task.status == Task.Status.COMPLETED and [m.to for m in mail.outbox] == [["ops@acme.test"]]
    page = browser.get(f"/tasks/{task.pk}/").content.decode()
    assert "Approved by client.a.admin@example.com" in page and "Payroll checked." in page


def test_rejecting_needs_a_reason_and_the_action_never_runs(world, client_host):
    approval = held(world)
    browser = client_host("client_a_admin")
    response = browser.post(f"/approvals/{approval.pk}/reject/", {"reason": "  "})
    assert response.status_code == 200 and "Say why you reject it." in response.content.decode()
    assert fresh(world, approval).is_pending

    response = browser.post(f"/approvals/{approval.pk}/reject/", {"reason": "Not this week."})
    assert response.status_code == 302
    approval = fresh(world, approval)
    assert approval.status == Approval.Status.REJECTED and approval.decision_note == "Not this week."
    task = advance(world, approval.step.task_id)
    assert task.status == Task.Status.STOPPED and "Not this week." in task.outcome
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{not json", "Not valid JSON"),
        ('["a list"]', "one JSON object"),
        (json.dumps({"body": "x" * 25_000}), "larger than 20 KB"),
    ],
)
def test_edit_and_approve_needs_one_json_object(world, client_host, params, message):
    approval = held(world)
    response = client_host("client_a_admin").post(f"/approvals/{approval.pk}/edit/", {"params": params})
    assert response.status_code == 200 and message in response.content.decode()
    assert "<details open" in response.content.decode()  # the edit form stays open with the error
    assert fresh(world, approval).is_pending


def test_an_edit_the_rules_deny_is_refused_and_changes_nothing(world, client_host):
    approval = held(world)
    before = approval.step.action
    edited = {**before["params"], "to": "boss@evil.example"}
    response = client_host("client_a_admin").post(
        f"/approvals/{approval.pk}/edit/", {"params": json.dumps(edited)}
    )
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="edit-refused"' in page
    assert "Mail to evil.example is forbidden." in page
    approval = fresh(world, approval)
    assert approval.is_pending and approval.edited_action is None and approval.step.action == before
    assert mail.outbox == []


def test_edit_and_approve_runs_the_edited_action(world, client_host):
    approval = held(world)
    edited = {**approval.step.action["params"], "to": "payroll@acme.test"}
    response = client_host("client_a_admin").post(
        f"/approvals/{approval.pk}/edit/", {"params": json.dumps(edited), "note": "Right team."}
    )
    assert response.status_code == 302
    approval = fresh(world, approval)
    assert approval.status == Approval.Status.APPROVED and approval.edited_action["params"] == edited
    advance(world, approval.step.task_id)
    assert [m.to for m in mail.outbox] == [["payroll@acme.test"]]


def test_nobody_decides_a_task_they_asked_for(world, client_host):
    approval = held(world, persona="client_a_admin")
    browser = client_host("client_a_admin")
    page = browser.get(f"/approvals/{approval.pk}/").content.decode()
    assert "You asked for this task" in page and "approve-form" not in page
    response = browser.post(f"/approvals/{approval.pk}/approve/", {"note": ""})
    assert response.status_code == 200
    assert "someone else must approve" in response.content.decode()
    assert fresh(world, approval).is_pending


def test_an_operator_decides_what_is_held_for_operators(world, client_host):
    approval = held(world, "operator")
    browser = client_host("client_a_operator")
    assert 'data-testid="approve-form"' in browser.get(f"/approvals/{approval.pk}/").content.decode()
    assert browser.post(f"/approvals/{approval.pk}/approve/", {"note": "ok"}).status_code == 302
    assert fresh(world, approval).decided_by == world.users["client_a_operator"]


def test_an_operator_cannot_edit_into_something_only_an_admin_may_approve(world, client_host):
    approval = held(world, "operator")
    edited = {**approval.step.action["params"], "subject": "Hold: now it needs an admin"}
    response = client_host("client_a_operator").post(
        f"/approvals/{approval.pk}/edit/", {"params": json.dumps(edited)}
    )
    assert "needs a client admin" in response.content.decode()
    assert fresh(world, approval).is_pending


def test_an_expired_approval_offers_no_decision(world, client_host):
    approval = held(world)
    with tenant_context(world.client_a):
        Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now())
    browser = client_host("client_a_admin")
    page = browser.get(f"/approvals/{approval.pk}/").content.decode()
    assert "approve-form" not in page and "has expired" in page
    response = browser.post(f"/approvals/{approval.pk}/approve/", {})
    assert "This approval has expired." in response.content.decode()
    assert fresh(world, approval).is_pending


def test_a_viewer_sees_decided_approvals_read_only(world, client_host):
    approval = held(world)
    services.approval_approve(
        client=world.client_a, approval_id=approval.pk, actor=world.users["client_a_admin"]
    )
    page = client_host("client_a_viewer").get(f"/approvals/{approval.pk}/").content.decode()
    assert 'data-testid="approval-outcome"' in page and "approve-form" not in page


# --- The e-mail's signed link ------------------------------------------------------------------------


def test_the_emailed_link_opens_the_approval(world, client_host):
    approval = held(world)
    link = notifications.approval_link(client=world.client_a, approval=approval)
    path = link.split(world.client_a.primary_host, 1)[1].split("/", 1)[1]
    response = client_host("client_a_admin").get("/" + path)
    assert response.status_code == 200 and 'data-testid="approve-form"' in response.content.decode()


@pytest.mark.parametrize("tamper", ["garbage", "other-approval"])
def test_a_tampered_link_is_refused_with_a_clear_message(world, client_host, tamper):
    approval = held(world)
    other = held(world)
    if tamper == "other-approval":
        signature = notifications.approval_link(client=world.client_a, approval=other).split("?s=", 1)[1]
    else:
        signature = "garbage"
    response = client_host("client_a_admin").get(f"/approvals/{approval.pk}/", {"s": signature})
    page = response.content.decode()
    assert response.status_code == 400 and "This link is not valid" in page
    assert "approve-form" not in page and "Hold: payroll run" not in page


def test_a_valid_link_replaces_neither_sign_in_nor_role_checks(world, client_host):
    approval = held(world)
    signature = notifications.approval_link(client=world.client_a, approval=approval).split("?s=", 1)[1]
    url = f"/approvals/{approval.pk}/"
    anonymous = client_host().get(url, {"s": signature})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client_host("client_a_viewer").get(url, {"s": signature}).status_code == 404
    assert client_host("client_a_operator").get(url, {"s": signature}).status_code == 404
    assert client_host("client_b_admin").get(url, {"s": signature}).status_code == 403  # foreign tenant
    # A viewer's POST with the signature is refused by role, and nothing changes.
    assert client_host("client_a_viewer").post(url + f"approve/?s={signature}", {}).status_code == 403
    assert fresh(world, approval).is_pending


def test_deciding_writes_the_evidence_to_the_audit_trail(world, client_host):
    approval = held(world)
    client_host("client_a_admin").post(f"/approvals/{approval.pk}/approve/", {"note": "Evidence."})
    with tenant_context(world.client_a):
        event = AuditEvent.objects.get(kind="approval.approved", trace_id=approval.step.task.trace_id)
    assert event.actor == "client.a.admin@example.com" and event.data["note"] == "Evidence."
    assert event.data["action_hash"] == approval.step.action_hash
