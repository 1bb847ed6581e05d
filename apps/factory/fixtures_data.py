"""The built-in factory content that `seed_factory` publishes: policy packs, the base agent, four variants.

Specs follow the canonical data model in PRODUCT.md. Conventions the workflows
use for tool parameters: `db.get {id}`, `db.query {filter, limit}`,
`db.insert {<field>: value, …}`, `db.update {id, <field>: value, …}`,
`notify.email {to, subject, body}`, `notify.webhook {url, payload}`,
`http.request {method, url, query}`. Templates read `inputs.*`, `steps.<id>.*`
(an earlier step's result; `rows` for a query) and `now`; `when` conditions are
CEL over the same names.
"""

from __future__ import annotations

TEMPLATE = {
    "key": "enterprise-agent",
    "name": "Enterprise agent",
    "description": "The governed enterprise agent every Triplane variant descends from.",
}

BASE_VARIANT = {
    "key": "base",
    "name": "Base enterprise agent",
    "domain": "",
    "description": "Generic, read-mostly enterprise agent; domain variants are cloned from it.",
}

INITIAL_VERSION = "1.0.0"
INITIAL_CHANGELOG = "Initial release."


def _fields(*specs: str) -> list[dict]:
    """Field requirements from "name:type" or "name:type!" (the `!` marks a required field)."""
    fields = []
    for spec in specs:
        name, _, kind = spec.partition(":")
        required = kind.endswith("!")
        fields.append({"name": name, "type": kind.rstrip("!") or "string", "required": required})
    return fields


def _entity(name: str, description: str, *fields: str) -> dict:
    return {"name": name, "description": description, "fields": _fields(*fields)}


def _tool(name: str, entities: list[str] | None = None, **settings) -> dict:
    return {"name": name, "entities": entities or [], "settings": settings}


def _step(step_id: str, tool: str, entity: str | None = None, *, when=None, on_failure="halt", **params):
    return {
        "id": step_id,
        "tool": tool,
        "entity": entity,
        "params": params,
        "when": when,
        "on_failure": on_failure,
    }


PLANNER = {"kind": "workflow", "max_steps": 20, "model": None, "temperature": 0.0}

# ---------------------------------------------------------------- base

BASE_SPEC = {
    "instructions": (
        "You are an enterprise operations agent working for one client organisation.\n"
        "Work only on the canonical entities listed in your data requirements and only through\n"
        "the tools in your allowlist. Every action you propose is checked against the client's\n"
        "governance rules before it runs; when an action is denied or held for approval, say so\n"
        "plainly and do not try to reach the same result another way.\n"
        "Never invent data: if a field is missing in the client's system, report it as missing."
    ),
    "tools": [
        _tool("db.query", max_rows=100),
        _tool("db.get"),
        _tool("notify.email"),
    ],
    "data": [],
    "workflows": [],
    "planner": PLANNER,
    "policy_pack": "baseline",
}

# ---------------------------------------------------------------- ITSM

ITSM_ENTITIES = ["ticket", "person", "ticket_comment"]
ITSM_SPEC = {
    "instructions": (
        "You are the IT service management agent. You triage incoming tickets, keep requesters\n"
        "informed, resolve tickets with a clear resolution note and escalate when priority or\n"
        "SLA demands it. Internal comments are for the service desk only; never send them to\n"
        "requesters."
    ),
    "tools": [
        _tool("db.query", ITSM_ENTITIES, max_rows=200),
        _tool("db.get", ITSM_ENTITIES),
        _tool("db.insert", ["ticket_comment"]),
        _tool(
            "db.update",
            ["ticket"],
            fields=["status", "priority", "category", "assignee_id", "team_id", "resolved_at", "due_at"],
        ),
        _tool("notify.email"),
        _tool("notify.webhook", purpose="Page the on-call engineer."),
    ],
    "data": [
        _entity(
            "ticket",
            "A service desk ticket (incident or request).",
            "id:string!",
            "reference:string!",
            "subject:string!",
            "description:text",
            "status:string!",
            "priority:string!",
            "category:string",
            "requester_id:reference!",
            "assignee_id:reference",
            "team_id:reference",
            "created_at:datetime!",
            "updated_at:datetime",
            "resolved_at:datetime",
            "due_at:datetime",
        ),
        _entity(
            "person",
            "A requester or agent.",
            "id:string!",
            "name:string!",
            "email:string!",
            "phone:string",
        ),
        _entity(
            "ticket_comment",
            "A comment on a ticket; internal ones are visible to the service desk only.",
            "id:string!",
            "ticket_id:reference!",
            "author_id:reference",
            "body:text!",
            "created_at:datetime!",
            "is_internal:boolean",
        ),
    ],
    "workflows": [
        {
            "name": "triage_ticket",
            "description": "Classify a new ticket, route it to a team and acknowledge the requester.",
            "inputs": ["ticket_id", "priority", "category", "team_id"],
            "steps": [
                _step("load", "db.get", "ticket", id="{{ inputs.ticket_id }}"),
                _step(
                    "classify",
                    "db.update",
                    "ticket",
                    when="steps.load.status == 'new'",
                    id="{{ inputs.ticket_id }}",
                    priority="{{ inputs.priority }}",
                    category="{{ inputs.category }}",
                    team_id="{{ inputs.team_id }}",
                    status="triaged",
                ),
                _step(
                    "note",
                    "db.insert",
                    "ticket_comment",
                    on_failure="continue",
                    ticket_id="{{ inputs.ticket_id }}",
                    body="Triaged as {{ inputs.priority }} / {{ inputs.category }}.",
                    is_internal=True,
                    created_at="{{ now }}",
                ),
                _step("requester", "db.get", "person", id="{{ steps.load.requester_id }}"),
                _step(
                    "acknowledge",
                    "notify.email",
                    on_failure="continue",
                    to="{{ steps.requester.email }}",
                    subject="[{{ steps.load.reference }}] We received your request",
                    body="Your ticket “{{ steps.load.subject }}” is with our team.",
                ),
            ],
        },
        {
            "name": "resolve_ticket",
            "description": "Resolve a ticket with a resolution note and tell the requester.",
            "inputs": ["ticket_id", "resolution"],
            "steps": [
                _step("load", "db.get", "ticket", id="{{ inputs.ticket_id }}"),
                _step(
                    "resolve",
                    "db.update",
                    "ticket",
                    when="steps.load.status != 'resolved'",
                    id="{{ inputs.ticket_id }}",
                    status="resolved",
                    resolved_at="{{ now }}",
                ),
                _step(
                    "comment",
                    "db.insert",
                    "ticket_comment",
                    on_failure="compensate",
                    ticket_id="{{ inputs.ticket_id }}",
                    body="{{ inputs.resolution }}",
                    is_internal=False,
                    created_at="{{ now }}",
                ),
                _step("requester", "db.get", "person", id="{{ steps.load.requester_id }}"),
                _step(
                    "inform",
                    "notify.email",
                    on_failure="continue",
                    to="{{ steps.requester.email }}",
                    subject="[{{ steps.load.reference }}] Resolved",
                    body="{{ inputs.resolution }}",
                ),
            ],
        },
        {
            "name": "escalate_ticket",
            "description": "Raise a ticket's priority, hand it to another team and page on-call if critical.",
            "inputs": ["ticket_id", "team_id", "reason"],
            "steps": [
                _step("load", "db.get", "ticket", id="{{ inputs.ticket_id }}"),
                _step(
                    "escalate",
                    "db.update",
                    "ticket",
                    when="steps.load.status != 'resolved'",
                    id="{{ inputs.ticket_id }}",
                    priority="high",
                    team_id="{{ inputs.team_id }}",
                    status="escalated",
                ),
                _step(
                    "note",
                    "db.insert",
                    "ticket_comment",
                    on_failure="continue",
                    ticket_id="{{ inputs.ticket_id }}",
                    body="Escalated: {{ inputs.reason }}",
                    is_internal=True,
                    created_at="{{ now }}",
                ),
                _step(
                    "page",
                    "notify.webhook",
                    when="steps.load.priority == 'critical'",
                    on_failure="continue",
                    url="{{ settings.oncall_webhook_url }}",
                    payload={"ticket": "{{ steps.load.reference }}", "reason": "{{ inputs.reason }}"},
                ),
            ],
        },
    ],
    "planner": PLANNER,
    "policy_pack": "itsm-baseline",
}

# ---------------------------------------------------------------- Finance (accounts payable)

FINANCE_SPEC = {
    "instructions": (
        "You are the accounts payable agent. You review incoming invoices for completeness and\n"
        "duplicates, and schedule payments for approved invoices. Never change an invoice amount;\n"
        "payments above the client's threshold wait for a person's approval."
    ),
    "tools": [
        _tool("db.query", ["invoice", "payment"], max_rows=200),
        _tool("db.get", ["invoice", "payment"]),
        _tool("db.insert", ["payment"]),
        _tool("db.update", ["invoice"], fields=["status", "paid_at"]),
        _tool("notify.email"),
    ],
    "data": [
        _entity(
            "invoice",
            "A supplier invoice to pay.",
            "id:string!",
            "number:string!",
            "vendor_id:reference!",
            "amount_total:decimal!",
            "currency:string!",
            "status:string!",
            "issue_date:date!",
            "due_date:date",
            "paid_at:datetime",
        ),
        _entity(
            "payment",
            "A payment made (or scheduled) against an invoice.",
            "id:string!",
            "invoice_id:reference!",
            "amount:decimal!",
            "paid_at:datetime",
            "method:string",
        ),
    ],
    "workflows": [
        {
            "name": "review_invoice",
            "description": "Check an invoice for duplicates and approve it or put it on hold.",
            "inputs": ["invoice_id"],
            "steps": [
                _step("load", "db.get", "invoice", id="{{ inputs.invoice_id }}"),
                _step(
                    "duplicates",
                    "db.query",
                    "invoice",
                    filter={"vendor_id": "{{ steps.load.vendor_id }}", "number": "{{ steps.load.number }}"},
                    limit=10,
                ),
                _step(
                    "approve",
                    "db.update",
                    "invoice",
                    when="size(steps.duplicates.rows) <= 1 && steps.load.status == 'received'",
                    id="{{ inputs.invoice_id }}",
                    status="approved",
                ),
                _step(
                    "hold",
                    "db.update",
                    "invoice",
                    when="size(steps.duplicates.rows) > 1",
                    id="{{ inputs.invoice_id }}",
                    status="on_hold",
                ),
                _step(
                    "report",
                    "notify.email",
                    on_failure="continue",
                    to="{{ settings.ap_team_email }}",
                    subject="Invoice {{ steps.load.number }} reviewed",
                    body="{{ size(steps.duplicates.rows) }} invoice(s) with this number from this vendor.",
                ),
            ],
        },
        {
            "name": "schedule_payment",
            "description": "Schedule the payment of an approved invoice.",
            "inputs": ["invoice_id", "method", "pay_on"],
            "steps": [
                _step("load", "db.get", "invoice", id="{{ inputs.invoice_id }}"),
                _step(
                    "pay",
                    "db.insert",
                    "payment",
                    when="steps.load.status == 'approved'",
                    invoice_id="{{ inputs.invoice_id }}",
                    amount="{{ steps.load.amount_total }}",
                    method="{{ inputs.method }}",
                    paid_at="{{ inputs.pay_on }}",
                ),
                _step(
                    "mark",
                    "db.update",
                    "invoice",
                    on_failure="compensate",
                    id="{{ inputs.invoice_id }}",
                    status="scheduled",
                ),
                _step(
                    "confirm",
                    "notify.email",
                    on_failure="continue",
                    to="{{ settings.ap_team_email }}",
                    subject="Payment scheduled for invoice {{ steps.load.number }}",
                    body="{{ steps.load.amount_total }} {{ steps.load.currency }} on {{ inputs.pay_on }}.",
                ),
            ],
        },
    ],
    "planner": PLANNER,
    "policy_pack": "finance-baseline",
}

# ---------------------------------------------------------------- HR

HR_SPEC = {
    "instructions": (
        "You are the human resources agent. You process leave requests and prepare the onboarding\n"
        "of new employees. Employee data is personal data: share it only with the people who need\n"
        "it for the task at hand, and never in bulk."
    ),
    "tools": [
        _tool("db.query", ["employee", "leave_request"], max_rows=50),
        _tool("db.get", ["employee", "leave_request"]),
        _tool("db.insert", ["employee"]),
        _tool("db.update", ["leave_request", "employee"], fields=["status"]),
        _tool("notify.email"),
    ],
    "data": [
        _entity(
            "employee",
            "A person employed by the client.",
            "id:string!",
            "first_name:string!",
            "last_name:string!",
            "email:string!",
            "department:string",
            "job_title:string",
            "manager_id:reference",
            "hire_date:date",
            "status:string!",
        ),
        _entity(
            "leave_request",
            "A request for time off.",
            "id:string!",
            "employee_id:reference!",
            "leave_type:string!",
            "start_date:date!",
            "end_date:date!",
            "status:string!",
        ),
    ],
    "workflows": [
        {
            "name": "approve_leave",
            "description": "Approve a pending leave request that does not overlap approved leave.",
            "inputs": ["leave_request_id"],
            "steps": [
                _step("load", "db.get", "leave_request", id="{{ inputs.leave_request_id }}"),
                _step("employee", "db.get", "employee", id="{{ steps.load.employee_id }}"),
                _step(
                    "overlaps",
                    "db.query",
                    "leave_request",
                    filter={
                        "employee_id": "{{ steps.load.employee_id }}",
                        "status": "approved",
                        "start_date__lte": "{{ steps.load.end_date }}",
                        "end_date__gte": "{{ steps.load.start_date }}",
                    },
                    limit=5,
                ),
                _step(
                    "approve",
                    "db.update",
                    "leave_request",
                    when="steps.load.status == 'pending' && size(steps.overlaps.rows) == 0",
                    id="{{ inputs.leave_request_id }}",
                    status="approved",
                ),
                _step(
                    "inform",
                    "notify.email",
                    on_failure="continue",
                    to="{{ steps.employee.email }}",
                    subject="Your leave request",
                    body="Leave from {{ steps.load.start_date }} to {{ steps.load.end_date }} is approved.",
                ),
            ],
        },
        {
            "name": "onboard_employee",
            "description": "Create a new employee record and tell the manager.",
            "inputs": [
                "first_name",
                "last_name",
                "email",
                "department",
                "job_title",
                "manager_id",
                "hire_date",
            ],
            "steps": [
                _step("existing", "db.query", "employee", filter={"email": "{{ inputs.email }}"}, limit=1),
                _step(
                    "create",
                    "db.insert",
                    "employee",
                    when="size(steps.existing.rows) == 0",
                    first_name="{{ inputs.first_name }}",
                    last_name="{{ inputs.last_name }}",
                    email="{{ inputs.email }}",
                    department="{{ inputs.department }}",
                    job_title="{{ inputs.job_title }}",
                    manager_id="{{ inputs.manager_id }}",
                    hire_date="{{ inputs.hire_date }}",
                    status="onboarding",
                ),
                _step(
                    "manager",
                    "db.get",
                    "employee",
                    when="inputs.manager_id != ''",
                    on_failure="continue",
                    id="{{ inputs.manager_id }}",
                ),
                _step(
                    "tell_manager",
                    "notify.email",
                    when="has(steps.manager.email)",
                    on_failure="continue",
                    to="{{ steps.manager.email }}",
                    subject="{{ inputs.first_name }} {{ inputs.last_name }} joins on {{ inputs.hire_date }}",
                    body="Please prepare their first week.",
                ),
            ],
        },
    ],
    "planner": PLANNER,
    "policy_pack": "hr-baseline",
}

# ---------------------------------------------------------------- Vendor management

VENDOR_ENTITIES = ["vendor", "contract", "purchase_order"]
VENDOR_SPEC = {
    "instructions": (
        "You are the vendor management agent. You onboard new vendors after screening them and\n"
        "renew contracts with active vendors. A vendor's tax id never changes once recorded."
    ),
    "tools": [
        _tool("db.query", VENDOR_ENTITIES, max_rows=200),
        _tool("db.get", VENDOR_ENTITIES),
        _tool("db.insert", ["vendor"]),
        _tool("db.update", ["vendor", "contract"], fields=["status", "end_date", "value", "email", "phone"]),
        _tool("notify.email"),
        _tool("http.request", purpose="Sanctions screening of new vendors."),
    ],
    "data": [
        _entity(
            "vendor",
            "A supplier of goods or services.",
            "id:string!",
            "name:string!",
            "tax_id:string!",
            "email:string",
            "phone:string",
            "country:string!",
            "status:string!",
        ),
        _entity(
            "contract",
            "A contract with a vendor.",
            "id:string!",
            "vendor_id:reference!",
            "title:string!",
            "start_date:date!",
            "end_date:date",
            "value:decimal",
            "status:string!",
        ),
        _entity(
            "purchase_order",
            "An order placed with a vendor.",
            "id:string!",
            "vendor_id:reference!",
            "number:string!",
            "amount:decimal!",
            "status:string!",
            "order_date:date",
        ),
    ],
    "workflows": [
        {
            "name": "onboard_vendor",
            "description": "Screen a new vendor and record it for review.",
            "inputs": ["name", "tax_id", "email", "phone", "country"],
            "steps": [
                _step("existing", "db.query", "vendor", filter={"tax_id": "{{ inputs.tax_id }}"}, limit=1),
                _step(
                    "screen",
                    "http.request",
                    when="size(steps.existing.rows) == 0",
                    method="GET",
                    url="{{ settings.screening_url }}",
                    query={"tax_id": "{{ inputs.tax_id }}", "country": "{{ inputs.country }}"},
                ),
                _step(
                    "create",
                    "db.insert",
                    "vendor",
                    when="size(steps.existing.rows) == 0 && steps.screen.status == 200",
                    name="{{ inputs.name }}",
                    tax_id="{{ inputs.tax_id }}",
                    email="{{ inputs.email }}",
                    phone="{{ inputs.phone }}",
                    country="{{ inputs.country }}",
                    status="pending_review",
                ),
                _step(
                    "tell_procurement",
                    "notify.email",
                    on_failure="continue",
                    to="{{ settings.procurement_email }}",
                    subject="New vendor to review: {{ inputs.name }}",
                    body="Screening passed for {{ inputs.name }} ({{ inputs.country }}).",
                ),
            ],
        },
        {
            "name": "renew_contract",
            "description": "Extend a contract with an active vendor.",
            "inputs": ["contract_id", "end_date", "value"],
            "steps": [
                _step("load", "db.get", "contract", id="{{ inputs.contract_id }}"),
                _step("vendor", "db.get", "vendor", id="{{ steps.load.vendor_id }}"),
                _step(
                    "open_orders",
                    "db.query",
                    "purchase_order",
                    on_failure="continue",
                    filter={"vendor_id": "{{ steps.load.vendor_id }}", "status": "open"},
                    limit=20,
                ),
                _step(
                    "renew",
                    "db.update",
                    "contract",
                    when="steps.vendor.status == 'active'",
                    id="{{ inputs.contract_id }}",
                    end_date="{{ inputs.end_date }}",
                    value="{{ inputs.value }}",
                    status="active",
                ),
                _step(
                    "tell_vendor",
                    "notify.email",
                    when="steps.vendor.email != ''",
                    on_failure="continue",
                    to="{{ steps.vendor.email }}",
                    subject="Contract “{{ steps.load.title }}” renewed",
                    body="Renewed until {{ inputs.end_date }}.",
                ),
            ],
        },
    ],
    "planner": PLANNER,
    "policy_pack": "vendor-baseline",
}

VARIANTS = [
    {
        "key": "itsm",
        "name": "ITSM agent",
        "domain": "IT service management",
        "description": "Triages, resolves and escalates service desk tickets.",
        "spec": ITSM_SPEC,
    },
    {
        "key": "finance",
        "name": "Finance agent",
        "domain": "Accounts payable",
        "description": "Reviews supplier invoices and schedules payments.",
        "spec": FINANCE_SPEC,
    },
    {
        "key": "hr",
        "name": "HR agent",
        "domain": "Human resources",
        "description": "Handles leave requests and employee onboarding.",
        "spec": HR_SPEC,
    },
    {
        "key": "vendor",
        "name": "Vendor management agent",
        "domain": "Vendor management",
        "description": "Onboards vendors and renews their contracts.",
        "spec": VENDOR_SPEC,
    },
]

# ---------------------------------------------------------------- policy packs


def _rule(key: str, name: str, effect: str, message: str, *, severity="medium", **extra) -> dict:
    return {"key": key, "name": name, "effect": effect, "message": message, "severity": severity, **extra}


POLICY_PACKS = [
    {
        "key": "baseline",
        "name": "Baseline",
        "description": "Vendor rules for every agent: no deletes, scoped updates, outbound calls held.",
        "rules": [
            _rule(
                "deny_deletes",
                "Agents never delete records",
                "deny",
                "Agents do not delete records; ask a person to do it in the source system.",
                severity="high",
                selector={"operations": ["delete"]},
            ),
            _rule(
                "deny_unscoped_updates",
                "Updates name exactly one record",
                "deny",
                "A bulk update (without a record id) is not allowed.",
                severity="high",
                selector={"tools": ["db.update"]},
                condition="!has(action.params.id) || action.params.id == ''",
            ),
            _rule(
                "approve_external_calls",
                "Outbound calls to hosts outside the allow-list need approval",
                "require_approval",
                "This call leaves the client's network; a client admin must approve it.",
                selector={"tools": ["notify.webhook", "http.request"]},
                condition="!(action.params.host in tenant.allowed_hosts)",
                approver_role="client_admin",
            ),
            _rule(
                "stop_runaway_loops",
                "Step budget per task",
                "deny",
                "This task has used its step budget.",
                condition="trace.steps > 50",
            ),
        ],
    },
    {
        "key": "itsm-baseline",
        "name": "ITSM baseline",
        "description": "Service desk rules: critical priority needs a person; internal notes stay internal.",
        "rules": [
            _rule(
                "approve_critical_priority",
                "Setting critical priority needs an operator",
                "require_approval",
                "Only a person may raise a ticket to critical.",
                selector={"tools": ["db.update"], "entities": ["ticket"]},
                condition="action.params.priority == 'critical'",
                approver_role="operator",
            ),
            _rule(
                "redact_internal_comments",
                "Internal comments never reach requesters",
                "redact",
                "Internal comment text was removed from an outgoing message.",
                selector={"tools": ["notify.email", "notify.webhook"], "entities": ["ticket_comment"]},
                condition="has(action.params.is_internal) && action.params.is_internal == true",
                redact_fields=["body"],
            ),
        ],
    },
    {
        "key": "finance-baseline",
        "name": "Finance baseline",
        "description": "Accounts payable rules: large payments need approval; amounts never change.",
        "rules": [
            _rule(
                "approve_large_payments",
                "Payments above 10,000 need a client admin",
                "require_approval",
                "Payments above 10,000 are approved by a client admin.",
                severity="high",
                selector={"tools": ["db.insert"], "entities": ["payment"]},
                condition="action.params.amount > 10000",
                approver_role="client_admin",
            ),
            _rule(
                "deny_amount_changes",
                "Invoice amounts never change",
                "deny",
                "Agents do not change invoice amounts.",
                severity="critical",
                selector={"tools": ["db.update"], "entities": ["invoice"]},
                condition="has(action.params.amount_total)",
            ),
        ],
    },
    {
        "key": "hr-baseline",
        "name": "HR baseline",
        "description": "HR rules: personal fields are redacted from notifications; no bulk reads.",
        "rules": [
            _rule(
                "redact_personal_fields",
                "Personal fields stay out of notifications",
                "redact",
                "Personal data was removed from an outgoing message.",
                severity="high",
                selector={
                    "tools": ["notify.email", "notify.webhook"],
                    "entities": ["employee", "leave_request"],
                },
                redact_fields=["email", "hire_date", "manager_id", "leave_type"],
            ),
            _rule(
                "deny_bulk_employee_reads",
                "No bulk reads of employee records",
                "deny",
                "Employee records are read a few at a time.",
                selector={"tools": ["db.query"], "entities": ["employee"]},
                condition="action.params.limit > 50",
            ),
        ],
    },
    {
        "key": "vendor-baseline",
        "name": "Vendor management baseline",
        "description": "Vendor rules: large contracts need approval; tax ids never change.",
        "rules": [
            _rule(
                "approve_large_contracts",
                "Contracts above 100,000 need a client admin",
                "require_approval",
                "Contracts above 100,000 are approved by a client admin.",
                selector={"tools": ["db.insert", "db.update"], "entities": ["contract"]},
                condition="action.params.value > 100000",
                approver_role="client_admin",
            ),
            _rule(
                "deny_tax_id_changes",
                "A vendor's tax id never changes",
                "deny",
                "Agents do not change a vendor's tax id.",
                severity="high",
                selector={"tools": ["db.update"], "entities": ["vendor"]},
                condition="has(action.params.tax_id)",
            ),
        ],
    },
]
