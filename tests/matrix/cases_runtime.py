"""Permission matrix: the governed runtime — dashboard pages, the API on client A's host, and the
management portal's LLM endpoint settings.

Dashboard (client A's host): every member reads tasks and traces; client admins and operators run
workflows and open the approvals inbox; a held action waiting for a client admin is 404 to operators
and viewers (they may not see it), and deciding it is the client admin's. Client B's admin (the foreign
tenant) and every partner or vendor persona get 403. API: the same, anonymous 403. Management: partner
A's admin and assigned engineer; partner B's admin 404.

The helpers here also serve the runtime's portal and API tests (tests/portals/test_runtime_*.py,
tests/api/test_runtime_api.py): an agent whose only tool is `notify.email` runs end to end without a
client database, with partner rules that allow mail, hold it for a client admin ("Hold …" subjects) or
an operator ("Check …"), and deny mail to evil.example.
"""

from __future__ import annotations

from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment
from apps.deployments.selectors import deployment_get
from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion
from apps.governance import services as governance
from apps.runtime import services
from apps.runtime.models import Approval, Task
from apps.runtime.settings_services import llm_endpoint_save
from tests.matrix.base import CLIENT_A, FORBIDDEN, NOT_FOUND, Case, client_a_all, client_a_in_portal, only

AGENT_NAME = "Notice agent"
WORKFLOW = "send_notice"
MAIL_SPEC = {
    "instructions": "Send notices to people when asked.",
    "tools": [{"name": "notify.email", "entities": [], "settings": {}}],
    "data": [],
    "workflows": [
        {
            "name": WORKFLOW,
            "description": "Mail one notice.",
            "inputs": ["to", "subject", "body"],
            "steps": [
                {
                    "id": "send",
                    "tool": "notify.email",
                    "entity": None,
                    "params": {
                        "to": "{{ inputs.to }}",
                        "subject": "{{ inputs.subject }}",
                        "body": "{{ inputs.body }}",
                    },
                    "when": None,
                    "on_failure": "halt",
                }
            ],
        }
    ],
    "planner": {"kind": "workflow", "max_steps": 20, "model": None, "temperature": 0.0},
}
MAIL_RULES = [
    {
        "key": "rt_allow_mail",
        "name": "Notices may be mailed",
        "effect": "allow",
        "message": "Mail is fine.",
        "selector": {"tools": ["notify.email"]},
    },
    {
        "key": "rt_hold_for_admin",
        "name": "Hold notices for a client admin",
        "effect": "require_approval",
        "approver_role": "client_admin",
        "message": "A client admin approves notices marked Hold.",
        "selector": {"tools": ["notify.email"]},
        "condition": "action.params.subject.startsWith('Hold')",
    },
    {
        "key": "rt_hold_for_operator",
        "name": "Hold notices for an operator",
        "effect": "require_approval",
        "approver_role": "operator",
        "message": "An operator checks notices marked Check.",
        "selector": {"tools": ["notify.email"]},
        "condition": "action.params.subject.startsWith('Check')",
    },
    {
        "key": "rt_deny_evil",
        "name": "Never mail evil.example",
        "effect": "deny",
        "message": "Mail to evil.example is forbidden.",
        "selector": {"tools": ["notify.email"]},
        "condition": "action.params.to.endsWith('@evil.example')",
    },
]


def mail_agent(w) -> Deployment:
    """A deployed notice agent in client A (made once per test) with the mail rules published."""
    with tenant_context(w.client_a):
        existing = Deployment.objects.filter(name=AGENT_NAME).first()
    if existing is not None:
        return deployment_get(client=w.client_a, pk=existing.pk)
    template, _ = AgentTemplate.objects.get_or_create(key="rt-test", defaults={"name": "Runtime tests"})
    base, _ = AgentVariant.objects.get_or_create(
        key="rt-base", defaults={"template": template, "name": "Base"}
    )
    variant, _ = AgentVariant.objects.get_or_create(
        key="rt-notice", defaults={"template": template, "name": "Notices", "parent": base}
    )
    version, _ = AgentVersion.objects.get_or_create(
        variant=variant,
        version="1.0.0",
        defaults={
            "major": 1,
            "minor": 0,
            "patch": 0,
            "status": AgentVersion.Status.PUBLISHED,
            "published_at": timezone.now(),
            "spec": MAIL_SPEC,
            "changelog": "Runtime tests.",
        },
    )
    with tenant_context(w.client_a):
        deployment = Deployment.objects.create(
            name=AGENT_NAME, variant=variant, version=version, status=Deployment.Status.DEPLOYED
        )
    engineer = w.users["partner_a_engineer"]
    draft = governance.ruleset_save_draft(client=w.client_a, rules=MAIL_RULES, actor=engineer)
    governance.ruleset_publish(client=w.client_a, version=draft, actor=engineer)
    return deployment_get(client=w.client_a, pk=deployment.pk)


def run_notice(
    w, subject: str = "Weekly notice", *, to: str = "ops@acme.test", persona: str = "client_a_operator"
) -> Task:
    """Create a notice task as `persona` and advance it in this process (what a worker does)."""
    task = services.task_create(
        client=w.client_a,
        deployment=mail_agent(w),
        workflow=WORKFLOW,
        inputs={"to": to, "subject": subject, "body": "Hello."},
        source=Task.Source.DASHBOARD,
        actor=w.users[persona],
        enqueue=False,
    )
    return services.task_advance(client=w.client_a, task_id=task.pk)


def held(w, role: str = "client_admin", *, persona: str | None = None) -> Approval:
    """A pending approval of a notice held for `role`, asked for by someone else than its approvers."""
    subject = "Hold: payroll run" if role == "client_admin" else "Check: rota change"
    requester = persona or ("client_a_operator" if role == "client_admin" else "client_a_admin")
    task = run_notice(w, subject, persona=requester)
    with tenant_context(w.client_a):
        approval = Approval.objects.select_related("step__task").get(step__task=task)
    mail.outbox.clear()
    return approval


def endpoint(w, key: str = "sk-matrix-secret") -> Deployment:
    deployment = mail_agent(w)
    llm_endpoint_save(
        client=w.client_a,
        deployment=deployment,
        actor=w.users["partner_a_engineer"],
        base_url="https://llm.example.com/v1",
        model="test-model",
        api_key=key,
    )
    return deployment


# --- kwargs makers


def _task(w) -> dict:
    """A task waiting for a client admin: a trace with a decision and an approval to show."""
    return {"task_id": held(w).step.task_id}


def _admin_approval(w) -> dict:
    return {"approval_id": held(w).pk}


def _operator_approval(w) -> dict:
    return {"approval_id": held(w, "operator").pk}


def _api_task(w) -> dict:
    return {"pk": held(w).step.task_id}


def _api_admin_approval(w) -> dict:
    return {"pk": held(w).pk}


def _agent_page(w) -> dict:
    return {"pk": w.client_a.pk, "deployment_id": mail_agent(w).pk}


def _agent_page_kwargs(w) -> dict:
    """No URL kwargs, but the notice agent exists (so the page has a workflow to offer)."""
    mail_agent(w)
    return {}


def _endpoint_page(w) -> dict:
    return {"pk": w.client_a.pk, "deployment_id": endpoint(w).pk}


def _run_data(w) -> dict:
    return {
        "workflow": f"{mail_agent(w).pk}:{WORKFLOW}",
        "in_to": "ops@acme.test",
        "in_subject": "Refused personas must not run this",
        "in_body": "x",
    }


RUNNERS = {"client_a_admin", "client_a_operator"}
runners = only(RUNNERS)
# A held action waiting for a client admin: operators and viewers may not even see it.
admin_decides = only({"client_a_admin"}, client_a_operator=NOT_FOUND, client_a_viewer=NOT_FOUND)
admin_decides_post = only({"client_a_admin"}, client_a_operator=NOT_FOUND)
api_members = only(CLIENT_A, anonymous=FORBIDDEN)
api_runners = only(RUNNERS, anonymous=FORBIDDEN)
api_admin_decides = only({"client_a_admin"}, client_a_operator=NOT_FOUND, anonymous=FORBIDDEN)
ENDPOINT_POST = {
    "base_url": "https://evil.example/v1",
    "model": "evil",
    "api_key": "sk-evil",
    "temperature": "0",
    "max_steps": "20",
    "max_tokens": "1000",
    "max_cost": "1",
    "price_per_1k_tokens": "0",
    "timeout_seconds": "30",
}

CASES = [
    # Client dashboard
    Case("tenant:dashboard:workflow_run", _agent_page_kwargs, host="client_a", get=runners),
    Case("tenant:dashboard:workflow_run", _agent_page_kwargs, host="client_a", post=runners, data=_run_data),
    Case("tenant:dashboard:task_list", host="client_a", get=client_a_all),
    Case("tenant:dashboard:task_detail", _task, host="client_a", get=client_a_all),
    Case("tenant:dashboard:approval_inbox", host="client_a", get=runners),
    Case("tenant:dashboard:approval_detail", _admin_approval, host="client_a", get=admin_decides),
    Case(
        "tenant:dashboard:approval_detail",
        _operator_approval,
        host="client_a",
        get=only(RUNNERS, client_a_viewer=NOT_FOUND),
    ),
    Case(
        "tenant:dashboard:approval_approve",
        _admin_approval,
        host="client_a",
        post=admin_decides_post,
        data={"note": "Refused personas must not approve."},
    ),
    Case(
        "tenant:dashboard:approval_reject",
        _admin_approval,
        host="client_a",
        post=admin_decides_post,
        data={"reason": "Refused personas must not reject."},
    ),
    Case(
        "tenant:dashboard:approval_edit",
        _admin_approval,
        host="client_a",
        post=admin_decides_post,
        data={"params": '{"to": "ops@acme.test", "subject": "Hold: edited", "body": "x"}'},
    ),
    # API on client A's host
    Case(
        "tenant:api:task_list",
        host="client_a",
        get=api_members,
        post=api_runners,
        data=lambda w: {"deployment": mail_agent(w).pk, "workflow": WORKFLOW},
    ),
    Case("tenant:api:task_detail", _api_task, host="client_a", get=api_members),
    Case("tenant:api:approval_list", host="client_a", get=api_runners),
    Case(
        "tenant:api:approval_approve",
        _api_admin_approval,
        host="client_a",
        post=api_admin_decides,
        data={"note": "Refused personas must not approve."},
    ),
    Case(
        "tenant:api:approval_reject",
        _api_admin_approval,
        host="client_a",
        post=api_admin_decides,
        data={"reason": "Refused personas must not reject."},
    ),
    # Management portal: a deployment's LLM endpoint
    Case(
        "public:management:llm_endpoint",
        _endpoint_page,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=ENDPOINT_POST,
    ),
    Case(
        "public:management:llm_endpoint",
        _agent_page,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=ENDPOINT_POST,
    ),
    Case(
        "public:management:llm_endpoint_delete",
        _endpoint_page,
        get=client_a_in_portal,
        post=client_a_in_portal,
    ),
]
