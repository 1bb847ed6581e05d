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
    """Field requirements from "name:type", "name:type!" (the `!` marks a required field) or either
    with "/classification" (e.g. "email:string!/confidential"; a field without one is internal)."""
    fields = []
    for spec in specs:
        spec, _, classification = spec.partition("/")
        name, _, kind = spec.partition(":")
        required = kind.endswith("!")
        field = {"name": name, "type": kind.rstrip("!") or "string", "required": required}
        if classification:
            field["classification"] = classification
        fields.append(field)
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
            "email:string!/confidential",
            "phone:string/confidential",
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
                    # Unchanged, but carried so rules can tell which tickets are being closed.
                    priority="{{ steps.load.priority }}",
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
            "amount_total:decimal!/confidential",
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
            "amount:decimal!/confidential",
            "paid_at:datetime",
            "method:string/confidential",
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
            "email:string!/confidential",
            "department:string",
            "job_title:string",
            "manager_id:reference",
            "hire_date:date/confidential",
            "status:string!",
        ),
        _entity(
            "leave_request",
            "A request for time off.",
            "id:string!",
            "employee_id:reference!",
            "leave_type:string!/confidential",
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
            "tax_id:string!/restricted",
            "email:string/confidential",
            "phone:string/confidential",
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
            "value:decimal/confidential",
            "status:string!",
        ),
        _entity(
            "purchase_order",
            "An order placed with a vendor.",
            "id:string!",
            "vendor_id:reference!",
            "number:string!",
            "amount:decimal!/confidential",
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
#
# The governance engine decides with zero trust: an action runs only when its tool is in the deployed
# version's allowlist, at least one `allow` rule matches and no deny/require_approval rule matches
# (deny > require_approval > redact > allow; a condition that errors counts as matched for
# deny/require_approval/redact and as not matched for allow). So every pack carries the allow rules
# for what its agent's workflows do, the shared baseline guards, and its domain's stricter rules.
# Conditions are CEL over the context documented in apps/governance/context.py; checks on optional
# parameters start with `has(...)`, since a missing field would otherwise error and fail closed.


def _rule(key: str, name: str, effect: str, message: str, *, severity="medium", **extra) -> dict:
    return {"key": key, "name": name, "effect": effect, "message": message, "severity": severity, **extra}


READ_TOOLS = ["db.get", "db.query"]
SEND_TOOLS = ["notify.email", "notify.webhook", "http.request"]
OUTBOUND_CALL_TOOLS = ["notify.webhook", "http.request"]

# One plain address (no lists, display names or separators) whose domain is one of the client's own.
# endsWith on '@' + domain: exact domains only (a subdomain must be listed itself); no regex is built
# from a domain, since its dots would match any character.
INSIDE_DOMAINS = (
    "action.params.to.matches('^[^@\\\\s,;<>\"]+@[^@\\\\s,;<>\"]+$')"
    " && tenant.domains.exists(d, action.params.to.endsWith('@' + d))"
)
# An https URL without user info or odd characters whose host is exactly one of the allowed hosts
# (followed by the end, a port, a path, a query or a fragment).
ALLOWED_HOST_URL = (
    "action.params.url.matches('^https://[^/?#@\\\\\\\\:\\\\s]+(:[0-9]{1,5})?([/?#][^\\\\\\\\\\\\s]*)?$')"
    " && tenant.allowed_hosts.exists(h, (action.params.url + '/').startsWith('https://' + h + '/')"
    " || action.params.url.startsWith('https://' + h + ':')"
    " || action.params.url.startsWith('https://' + h + '?')"
    " || action.params.url.startsWith('https://' + h + '#'))"
)
# PII kinds that never leave in a message without a person's approval (apps.governance.guards.pii).
PAYMENT_AND_ID_PII = "['iban', 'card', 'national_id', 'us_ssn', 'fr_nir', 'es_dni', 'es_nie', 'de_idnr']"
INJECTION_DENY = 0.7
INJECTION_HOLD = 0.5  # the injection guard's own threshold: a likely attack


def _baseline_rules(*, outside_mail: str = "deny") -> list[dict]:
    """The guards every pack starts with.

    `outside_mail` is what mail to an address outside the client's domains gets: denied, or for an
    agent whose correspondents are outside by nature (vendors), held for an operator.
    """
    if outside_mail == "deny":
        mail_rule = _rule(
            "deny_email_outside_domains",
            "Mail goes only to the client's own domains",
            "deny",
            "Agents only send mail to one address in the client's own domains.",
            severity="high",
            selector={"tools": ["notify.email"]},
            condition=f"!({INSIDE_DOMAINS})",
        )
    else:
        mail_rule = _rule(
            "approve_email_outside_domains",
            "Mail outside the client's domains needs an operator",
            "require_approval",
            "This message goes outside the client's domains; an operator checks it first.",
            severity="high",
            selector={"tools": ["notify.email"]},
            condition=f"!({INSIDE_DOMAINS})",
            approver_role="operator",
        )
    return [
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
            "A bulk update (without exactly one record id) is not allowed.",
            severity="high",
            selector={"tools": ["db.update"]},
            condition=(
                "!has(action.params.id) || string(action.params.id) == ''"
                " || (has(action.target_ids) && size(action.target_ids) > 1)"
            ),
        ),
        _rule(
            "deny_prompt_injection",
            "No action on a likely prompt injection",
            "deny",
            "The request text looks like a prompt-injection attack; the action is blocked.",
            severity="critical",
            condition=f"input.injection >= {INJECTION_DENY}",
        ),
        _rule(
            "approve_suspicious_input",
            "Suspicious request text needs an operator",
            "require_approval",
            "The request text may be a prompt-injection attempt; an operator confirms the action.",
            severity="high",
            condition=f"input.injection >= {INJECTION_HOLD}",
            approver_role="operator",
        ),
        _rule(
            "stop_runaway_loops",
            "Step budget per task",
            "deny",
            "This task has used its step budget (50 actions).",
            severity="high",
            condition="trace.steps > 50",
        ),
        mail_rule,
        _rule(
            "deny_email_copies",
            "No copies of agent mail",
            "deny",
            "Agent mail has one recipient: no cc or bcc.",
            severity="high",
            selector={"tools": ["notify.email"]},
            condition="has(action.params.cc) || has(action.params.bcc)",
        ),
        _rule(
            "approve_email_bursts",
            "Mail bursts need an operator",
            "require_approval",
            "This agent sent 100 messages in the last hour; an operator confirms the next ones.",
            selector={"tools": ["notify.email"]},
            condition="rate('tool:notify.email', 3600) >= 100",
            approver_role="operator",
        ),
        _rule(
            "approve_external_calls",
            "Outbound calls to hosts outside the allow-list need approval",
            "require_approval",
            "This call goes to a host outside the client's allow-list (or not over https); "
            "a client admin must approve it.",
            severity="high",
            selector={"tools": OUTBOUND_CALL_TOOLS},
            condition=f"!({ALLOWED_HOST_URL})",
            approver_role="client_admin",
        ),
        _rule(
            "approve_payment_and_id_data_out",
            "Payment details and national ids leave only with approval",
            "require_approval",
            "The message carries a card number, IBAN or national id; a client admin must approve it.",
            severity="high",
            selector={"tools": SEND_TOOLS},
            condition=f"data.pii.exists(k, k in {PAYMENT_AND_ID_PII})",
            approver_role="client_admin",
        ),
    ]


def _allow_reads(entities: list[str], **extra) -> dict:
    return _rule(
        "allow_reads",
        "Read the agent's records",
        "allow",
        "Reading these records is allowed.",
        severity="low",
        selector={"tools": READ_TOOLS, **({"entities": entities} if entities else {})},
        **extra,
    )


def _allow(key: str, name: str, tools: list[str], entities: list[str] | None = None) -> dict:
    selector: dict = {"tools": tools}
    if entities:
        selector["entities"] = entities
    return _rule(
        key, name, "allow", f"Allowed: {name[0].lower()}{name[1:]}.", severity="low", selector=selector
    )


def _only_fields(key: str, entity: str, fields: list[str]) -> dict:
    """Deny a db.update of `entity` that names any parameter but `id` and `fields`."""
    listed = ", ".join(f"'{name}'" for name in ["id", *fields])
    return _rule(
        key,
        f"Updates of {entity} change only {', '.join(fields)}",
        "deny",
        f"An agent may only change {', '.join(fields)} of a {entity.replace('_', ' ')}.",
        severity="high",
        selector={"tools": ["db.update"], "entities": [entity]},
        condition=f"action.params.exists(k, !(k in [{listed}]))",
    )


ALLOW_EMAIL = _allow("allow_email", "Send mail", ["notify.email"])

BASELINE_RULES = _baseline_rules()

POLICY_PACKS = [
    {
        "key": "baseline",
        "name": "Baseline",
        "description": (
            "Vendor rules for every agent: no deletes, scoped updates, injection and loop guards, mail only "
            "inside the client, outbound calls held; the base agent reads non-sensitive data and sends mail."
        ),
        "rules": [
            *BASELINE_RULES,
            _allow_reads(
                [],
                condition="data.classification in ['public', 'internal']",
            ),
            _rule(
                "approve_sensitive_reads",
                "Reading confidential data needs a client admin",
                "require_approval",
                "The generic agent reads confidential or restricted data only with a client admin's "
                "approval.",
                selector={"tools": READ_TOOLS},
                condition="data.classification in ['confidential', 'restricted']",
                approver_role="client_admin",
            ),
            ALLOW_EMAIL,
        ],
    },
    {
        "key": "itsm-baseline",
        "name": "ITSM baseline",
        "description": (
            "Service desk rules: read tickets, people and comments; update tickets and add comments; "
            "critical priority needs a person; internal notes stay internal."
        ),
        "rules": [
            *BASELINE_RULES,
            _allow_reads(ITSM_ENTITIES),
            _allow("allow_comment_inserts", "Add ticket comments", ["db.insert"], ["ticket_comment"]),
            _allow("allow_ticket_updates", "Update tickets", ["db.update"], ["ticket"]),
            _only_fields(
                "deny_other_ticket_fields",
                "ticket",
                ["status", "priority", "category", "assignee_id", "team_id", "resolved_at", "due_at"],
            ),
            _rule(
                "approve_critical_priority",
                "Setting critical priority needs an operator",
                "require_approval",
                "Only a person may raise a ticket to critical.",
                selector={"tools": ["db.update"], "entities": ["ticket"]},
                condition="has(action.params.priority) && action.params.priority == 'critical'",
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
            ALLOW_EMAIL,
            _allow("allow_paging", "Page on-call by webhook", ["notify.webhook"]),
        ],
    },
    {
        "key": "finance-baseline",
        "name": "Finance baseline",
        "description": (
            "Accounts payable rules: read invoices and payments, record payments and invoice status; "
            "large or out-of-hours payments need approval; amounts never change."
        ),
        "rules": [
            *BASELINE_RULES,
            _allow_reads(["invoice", "payment"]),
            _allow("allow_payment_inserts", "Record payments", ["db.insert"], ["payment"]),
            _allow("allow_invoice_updates", "Update invoice status", ["db.update"], ["invoice"]),
            _rule(
                "deny_amount_changes",
                "Invoice amounts never change",
                "deny",
                "Agents do not change invoice amounts.",
                severity="critical",
                selector={"tools": ["db.update"], "entities": ["invoice"]},
                condition="has(action.params.amount_total)",
            ),
            _only_fields("deny_other_invoice_fields", "invoice", ["status", "paid_at"]),
            _rule(
                "deny_payments_without_invoice",
                "A payment pays one invoice",
                "deny",
                "A payment must name the invoice it pays.",
                severity="high",
                selector={"tools": ["db.insert"], "entities": ["payment"]},
                condition="!has(action.params.invoice_id) || string(action.params.invoice_id) == ''",
            ),
            _rule(
                "deny_non_positive_payments",
                "Payment amounts are positive",
                "deny",
                "A payment needs a positive amount.",
                severity="high",
                selector={"tools": ["db.insert"], "entities": ["payment"]},
                condition="double(action.params.amount) <= 0.0",
            ),
            _rule(
                "approve_large_payments",
                "Payments above 10,000 need a client admin",
                "require_approval",
                "Payments above 10,000 are approved by a client admin.",
                severity="high",
                selector={"tools": ["db.insert"], "entities": ["payment"]},
                condition="double(action.params.amount) > 10000.0",
                approver_role="client_admin",
            ),
            _rule(
                "approve_payments_out_of_hours",
                "Payments outside business hours need an operator",
                "require_approval",
                "Payments recorded outside business hours are confirmed by an operator.",
                selector={"tools": ["db.insert"], "entities": ["payment"]},
                condition="!time.business_hours",
                approver_role="operator",
            ),
            ALLOW_EMAIL,
        ],
    },
    {
        "key": "hr-baseline",
        "name": "HR baseline",
        "description": (
            "HR rules: read employees and leave requests a few at a time, record new employees and "
            "leave decisions; employee status changes need approval; personal fields stay out of messages."
        ),
        "rules": [
            *BASELINE_RULES,
            _allow_reads(["employee", "leave_request"]),
            _rule(
                "deny_bulk_employee_reads",
                "No bulk reads of employee records",
                "deny",
                "Employee records are read a few at a time: give a filter and a limit of at most 10.",
                selector={"tools": ["db.query"], "entities": ["employee"]},
                condition=(
                    "!has(action.params.filter) || size(action.params.filter) == 0"
                    " || !has(action.params.limit) || int(action.params.limit) > 10"
                ),
            ),
            _allow("allow_employee_inserts", "Record new employees", ["db.insert"], ["employee"]),
            _allow(
                "allow_status_updates",
                "Update leave requests and employee status",
                ["db.update"],
                ["leave_request", "employee"],
            ),
            _only_fields("deny_other_leave_fields", "leave_request", ["status"]),
            _only_fields("deny_other_employee_fields", "employee", ["status"]),
            _rule(
                "approve_employee_status_changes",
                "Employee status changes need a client admin",
                "require_approval",
                "Changing an employee's status (a leaver, a suspension) is approved by a client admin.",
                severity="high",
                selector={"tools": ["db.update"], "entities": ["employee"]},
                approver_role="client_admin",
            ),
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
            ALLOW_EMAIL,
        ],
    },
    {
        "key": "vendor-baseline",
        "name": "Vendor management baseline",
        "description": (
            "Vendor rules: read vendors, contracts and orders; record vendors for review and renew "
            "contracts; activation, contact changes and large contracts need approval; tax ids never "
            "change; mail to vendors is checked by an operator."
        ),
        "rules": [
            *_baseline_rules(outside_mail="require_approval"),
            _allow_reads(VENDOR_ENTITIES),
            _allow("allow_vendor_inserts", "Record new vendors", ["db.insert"], ["vendor"]),
            _rule(
                "deny_vendors_not_pending_review",
                "New vendors start in review",
                "deny",
                "A new vendor is recorded with status pending_review; a person activates it.",
                severity="high",
                selector={"tools": ["db.insert"], "entities": ["vendor"]},
                condition="!has(action.params.status) || action.params.status != 'pending_review'",
            ),
            _allow("allow_updates", "Update vendors and contracts", ["db.update"], ["vendor", "contract"]),
            _rule(
                "deny_tax_id_changes",
                "A vendor's tax id never changes",
                "deny",
                "Agents do not change a vendor's tax id.",
                severity="critical",
                selector={"tools": ["db.update"], "entities": ["vendor"]},
                condition="has(action.params.tax_id)",
            ),
            _only_fields("deny_other_vendor_fields", "vendor", ["status", "email", "phone"]),
            _only_fields("deny_other_contract_fields", "contract", ["status", "end_date", "value"]),
            _rule(
                "approve_vendor_activation",
                "Activating a vendor needs a client admin",
                "require_approval",
                "A client admin activates a vendor after its review.",
                severity="high",
                selector={"tools": ["db.update"], "entities": ["vendor"]},
                condition="has(action.params.status) && action.params.status == 'active'",
                approver_role="client_admin",
            ),
            _rule(
                "approve_vendor_contact_changes",
                "Changing a vendor's contact details needs a client admin",
                "require_approval",
                "Changed vendor contact details are a common payment-fraud route; "
                "a client admin confirms them.",
                severity="high",
                selector={"tools": ["db.update"], "entities": ["vendor"]},
                condition="has(action.params.email) || has(action.params.phone)",
                approver_role="client_admin",
            ),
            _rule(
                "approve_large_contracts",
                "Contracts above 100,000 need a client admin",
                "require_approval",
                "Contracts above 100,000 are approved by a client admin.",
                severity="high",
                selector={"tools": ["db.insert", "db.update"], "entities": ["contract"]},
                condition="has(action.params.value) && double(action.params.value) > 100000.0",
                approver_role="client_admin",
            ),
            _rule(
                "approve_non_get_requests",
                "Outbound requests only read",
                "require_approval",
                "Screening calls only read (GET); any other request is approved by a client admin.",
                selector={"tools": ["http.request"]},
                condition="has(action.params.method) && action.params.method != 'GET'",
                approver_role="client_admin",
            ),
            ALLOW_EMAIL,
            _allow("allow_screening_requests", "Call the screening service", ["http.request"]),
        ],
    },
]
