"""API v1, the governed runtime on a client's host: tasks (idempotent creation, list, trace) and approvals.

Tasks run end to end in the test process with the notice agent of tests/matrix/cases_runtime.py (its only
tool is notify.email: no client database needed).
"""

import json

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from apps.runtime import services
from apps.runtime.models import Approval, Task
from tests.matrix.cases_runtime import WORKFLOW, endpoint, held, mail_agent, run_notice

SECRET = "sk-api-test-SECRET-key"


def tasks(world) -> list[Task]:
    with tenant_context(world.client_a):
        return list(Task.objects.order_by("pk"))


def fresh(world, approval: Approval) -> Approval:
    with tenant_context(world.client_a):
        return Approval.objects.select_related("step").get(pk=approval.pk)


def post(browser, path: str, body: dict, **headers):
    return browser.post(path, json.dumps(body), content_type="application/json", **headers)


def body(world, **overrides) -> dict:
    data = {
        "deployment": mail_agent(world).pk,
        "workflow": WORKFLOW,
        "inputs": {"to": "ops@acme.test", "subject": "From the API", "body": "Hello."},
    }
    data.update(overrides)
    return data


# --- Creating tasks ---------------------------------------------------------------------------------


def test_an_operator_creates_a_task_and_reads_its_trace(world, client_host):
    api = client_host("client_a_operator")
    response = post(api, "/api/v1/tasks", body(world))
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["status"] == "queued" and created["source"] == "api" and created["steps"] == []
    assert created["requested_by"] == "client.a.operator@example.com" and created["workflow"] == WORKFLOW
    [task] = tasks(world)
    assert task.pk == created["id"] and task.principal["channel"] == "api"

    services.task_advance(client=world.client_a, task_id=task.pk)
    trace = api.get(f"/api/v1/tasks/{task.pk}").json()
    assert trace["status"] == "completed" and trace["trace_id"] == task.trace_id
    [step] = trace["steps"]
    assert step["key"] == "send" and step["tool"] == "notify.email" and step["status"] == "executed"
    assert step["decision"]["effect"] == "allow" and step["decision"]["deciding_rule"] == "rt_allow_mail"
    assert step["decision"]["layer"] == "partner" and step["decision"]["ruleset_version"] == 1
    assert step["result"] == {"sent_to": ["ops@acme.test"], "subject": "From the API"}
    assert step["approval"] is None and step["duration_ms"] is not None
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]


def test_a_repeated_idempotency_key_returns_the_first_task(world, client_host):
    api = client_host("client_a_operator")
    first = post(api, "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY="order-42")
    again = post(api, "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY="order-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and len(tasks(world)) == 1
    # Another key makes another task; so does the same key from another user (keys are per caller).
    assert post(api, "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY="order-43").status_code == 201
    other = post(client_host("client_a_admin"), "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY="order-42")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert len(tasks(world)) == 3


def test_an_idempotency_key_reused_for_another_request_is_refused(world, client_host):
    api = client_host("client_a_operator")
    post(api, "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY="k1")
    changed = body(world, inputs={"to": "ops@acme.test", "subject": "Something else", "body": "x"})
    response = post(api, "/api/v1/tasks", changed, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422 and "different task" in response.json()["detail"]
    assert len(tasks(world)) == 1


@pytest.mark.parametrize("key", ["", "x" * 65, "naïve"])
def test_a_malformed_idempotency_key_is_refused(world, client_host, key):
    response = post(client_host("client_a_operator"), "/api/v1/tasks", body(world), HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()
    assert tasks(world) == []


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"deployment": 999999}, "deployment", "no such deployment"),
        ({"workflow": "no_such"}, "workflow", "has no workflow no_such"),
        ({"inputs": {"to": "ops@acme.test", "subject": "x"}}, "body", "The input body is required."),
        (
            {"inputs": {"to": "a@acme.test", "subject": "x", "body": "y", "extra": "z"}},
            "inputs",
            "Unknown input",
        ),
        ({"instruction": "Mail everyone"}, "workflow", "either a workflow or an instruction"),
        ({"workflow": "", "instruction": "Mail everyone"}, "instruction", "no LLM endpoint"),
    ],
)
def test_refused_tasks_answer_400_with_the_field(world, client_host, overrides, field, message):
    response = post(client_host("client_a_admin"), "/api/v1/tasks", body(world, **overrides))
    assert response.status_code == 400, response.json()
    answer = response.json()
    if "detail" in answer:
        assert answer["field"] == field and message in answer["detail"]
    else:
        assert message in " ".join(answer[field])
    assert tasks(world) == []


def test_an_instruction_task_is_queued_when_the_agent_has_an_llm_endpoint(world, client_host):
    endpoint(world, SECRET)
    response = post(
        client_host("client_a_operator"),
        "/api/v1/tasks",
        {"deployment": mail_agent(world).pk, "instruction": "Tell ops the rota changed."},
    )
    assert response.status_code == 201 and response.json()["instruction"] == "Tell ops the rota changed."
    assert SECRET not in response.content.decode()


def test_viewers_read_tasks_but_cannot_create_them(world, client_host):
    run_notice(world)
    viewer = client_host("client_a_viewer")
    assert post(viewer, "/api/v1/tasks", body(world)).status_code == 403
    assert len(tasks(world)) == 1
    listed = viewer.get("/api/v1/tasks").json()
    assert listed["count"] == 1 and listed["results"][0]["status"] == "completed"


def test_the_task_list_filters_and_pages(world, client_host):
    done = run_notice(world)
    waiting = run_notice(world, "Hold: payroll")
    api = client_host("client_a_viewer")
    assert [t["id"] for t in api.get("/api/v1/tasks").json()["results"]] == [waiting.pk, done.pk]
    assert [t["id"] for t in api.get("/api/v1/tasks", {"status": "waiting"}).json()["results"]] == [
        waiting.pk
    ]
    assert api.get("/api/v1/tasks", {"trace_id": done.trace_id}).json()["count"] == 1
    assert api.get("/api/v1/tasks", {"workflow": "other"}).json()["count"] == 0
    assert api.get("/api/v1/tasks", {"status": "bogus"}).status_code == 400
    assert api.get("/api/v1/tasks", {"page": "2"}).status_code == 404  # one page only


def test_the_trace_shows_approvals_and_another_clients_task_is_404(world, client_host):
    approval = held(world)
    services.approval_approve(
        client=world.client_a, approval_id=approval.pk, actor=world.users["client_a_admin"], note="Fine."
    )
    trace = client_host("client_a_viewer").get(f"/api/v1/tasks/{approval.step.task_id}").json()
    [step] = trace["steps"]
    assert step["status"] == "approved" and step["decision"]["effect"] == "require_approval"
    assert step["approval"]["status"] == "approved" and step["approval"]["note"] == "Fine."
    assert step["approval"]["decided_by"] == "client.a.admin@example.com"
    foreign = client_host("client_b_admin", client=world.client_b)
    assert foreign.get(f"/api/v1/tasks/{approval.step.task_id}").status_code == 404


# --- Approvals -------------------------------------------------------------------------------------


def test_the_approval_list_holds_what_the_caller_may_decide(world, client_host):
    for_admin = held(world)
    for_operator = held(world, "operator")
    admin = client_host("client_a_admin").get("/api/v1/approvals").json()
    operator = client_host("client_a_operator").get("/api/v1/approvals").json()
    assert {a["id"] for a in admin["results"]} == {for_admin.pk, for_operator.pk}
    assert [a["id"] for a in operator["results"]] == [for_operator.pk]
    entry = next(a for a in admin["results"] if a["id"] == for_admin.pk)
    assert entry["approver_role"] == "client_admin" and entry["step"]["key"] == "send"
    assert entry["held_decision"]["deciding_rule"] == "rt_hold_for_admin"
    assert entry["reason"] == "A client admin approves notices marked Hold."
    assert client_host("client_a_viewer").get("/api/v1/approvals").status_code == 403
    assert client_host("client_a_admin").get("/api/v1/approvals", {"status": "approved"}).json()["count"] == 0


def test_approving_through_the_api(world, client_host):
    approval = held(world)
    response = post(client_host("client_a_admin"), f"/api/v1/approvals/{approval.pk}/approve", {"note": "ok"})
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert response.json()["note"] == "ok"
    task = services.task_advance(client=world.client_a, task_id=approval.step.task_id)
    assert task.status == Task.Status.COMPLETED and len(mail.outbox) == 1


def test_an_edit_the_rules_deny_is_refused_and_changes_nothing(world, client_host):
    approval = held(world)
    params = {**approval.step.action["params"], "to": "boss@evil.example"}
    response = post(
        client_host("client_a_admin"), f"/api/v1/approvals/{approval.pk}/approve", {"params": params}
    )
    assert response.status_code == 400 and "Mail to evil.example is forbidden." in response.json()["detail"]
    approval = fresh(world, approval)
    assert approval.is_pending and approval.step.action["params"]["to"] == "ops@acme.test"


def test_edited_params_must_be_an_object(world, client_host):
    approval = held(world)
    response = post(
        client_host("client_a_admin"), f"/api/v1/approvals/{approval.pk}/approve", {"params": [1]}
    )
    assert response.status_code == 400 and "params" in response.json()
    assert fresh(world, approval).is_pending


def test_an_approved_edit_runs_as_edited(world, client_host):
    approval = held(world)
    params = {**approval.step.action["params"], "to": "payroll@acme.test"}
    response = post(
        client_host("client_a_admin"), f"/api/v1/approvals/{approval.pk}/approve", {"params": params}
    )
    assert response.status_code == 200 and response.json()["edited_action"]["params"] == params
    services.task_advance(client=world.client_a, task_id=approval.step.task_id)
    assert [m.to for m in mail.outbox] == [["payroll@acme.test"]]


def test_rejecting_needs_a_reason(world, client_host):
    approval = held(world)
    api = client_host("client_a_admin")
    assert post(api, f"/api/v1/approvals/{approval.pk}/reject", {}).status_code == 400
    assert post(api, f"/api/v1/approvals/{approval.pk}/reject", {"reason": " "}).status_code == 400
    assert fresh(world, approval).is_pending
    response = post(api, f"/api/v1/approvals/{approval.pk}/reject", {"reason": "No."})
    assert response.status_code == 200 and response.json()["status"] == "rejected"


def test_role_restrictions_on_deciding(world, client_host):
    for_admin = held(world)
    own = held(world, persona="client_a_admin")
    operator = client_host("client_a_operator")
    # An operator may not see, let alone decide, what waits for a client admin.
    assert post(operator, f"/api/v1/approvals/{for_admin.pk}/approve", {}).status_code == 404
    assert (
        post(client_host("client_a_viewer"), f"/api/v1/approvals/{for_admin.pk}/approve", {}).status_code
        == 403
    )
    # Nobody decides a task they asked for.
    response = post(client_host("client_a_admin"), f"/api/v1/approvals/{own.pk}/approve", {})
    assert response.status_code == 400 and "someone else" in response.json()["detail"]
    assert fresh(world, for_admin).is_pending and fresh(world, own).is_pending
    # A decided one cannot be decided again.
    api = client_host("client_a_admin")
    post(api, f"/api/v1/approvals/{for_admin.pk}/reject", {"reason": "No."})
    again = post(api, f"/api/v1/approvals/{for_admin.pk}/approve", {})
    assert again.status_code == 400 and "already rejected" in again.json()["detail"]
