"""The vendor policy packs that seed_factory publishes, as the governance engine applies them.

Every pack is compiled as the runtime compiles it: the pack version pinned by the seeded agent version,
as locked vendor rules, with that version's tool allowlist. Then every step of every seeded workflow,
as an action in a normal context (business hours, a clean request, recipients in the client's
domains, outbound calls to allowed hosts), must be allowed or held for approval, never denied; and
the dangerous variations of those actions must be denied or held.
"""

import re

import pytest

from apps.factory.fixtures_data import POLICY_PACKS
from apps.factory.models import AgentVersion
from apps.governance.context import data_context, input_context
from apps.governance.engine import compile_ruleset, evaluate
from apps.governance.rules import check_condition, validate_rules, vendor_rules

RULES = [(pack["key"], rule) for pack in POLICY_PACKS for rule in pack["rules"]]
VARIANTS = ["base", "itsm", "finance", "hr", "vendor"]

# Plausible values for the workflows' templates (as the runtime would resolve them).
VALUES = {
    "now": "2025-06-03T10:15:00+02:00",
    "inputs.ticket_id": "INC-1001",
    "inputs.priority": "high",
    "inputs.category": "network",
    "inputs.team_id": "TEAM-7",
    "inputs.resolution": "Replaced the VPN profile; please reconnect.",
    "inputs.reason": "The whole second floor is offline.",
    "steps.load.reference": "INC-1001",
    "steps.load.subject": "VPN drops every hour",
    "steps.load.requester_id": "P-42",
    "steps.load.priority": "medium",
    "steps.requester.email": "ana@acme.com",
    "settings.oncall_webhook_url": "https://hooks.acme.com/oncall",
    "inputs.invoice_id": "INV-77",
    "inputs.method": "transfer",
    "inputs.pay_on": "2025-06-30",
    "steps.load.vendor_id": "V-12",
    "steps.load.number": "2025-0042",
    "steps.load.amount_total": "2480.00",
    "steps.load.currency": "EUR",
    "size(steps.duplicates.rows)": "1",
    "settings.ap_team_email": "ap@acme.com",
    "inputs.leave_request_id": "LR-5",
    "steps.load.employee_id": "E-8",
    "steps.load.start_date": "2025-07-14",
    "steps.load.end_date": "2025-07-25",
    "steps.employee.email": "ben@acme.com",
    "inputs.first_name": "Chloé",
    "inputs.last_name": "Martin",
    "inputs.email": "chloe.martin@acme.com",
    "inputs.department": "Finance",
    "inputs.job_title": "Accountant",
    "inputs.manager_id": "E-3",
    "inputs.hire_date": "2025-09-01",
    "steps.manager.email": "dana@acme.com",
    "inputs.name": "Globex Supplies Ltd",
    "inputs.tax_id": "GB123456789",
    "inputs.phone": "+44 20 7946 0000",
    "inputs.country": "GB",
    "settings.screening_url": "https://screening.acme.com/v1/check",
    "settings.procurement_email": "procurement@acme.com",
    "inputs.contract_id": "C-9",
    "inputs.end_date": "2026-12-31",
    "inputs.value": "48000",
    "steps.load.title": "Office supplies 2025",
    # A vendor's own address is outside the client's domains by nature.
    "steps.vendor.email": "accounts@globex-supplies.example",
}
# The onboarding form's vendor address, not the client's.
VENDOR_INPUTS = {"inputs.email": "sales@globex-supplies.example"}
OPERATIONS = {
    "db.get": "read",
    "db.query": "read",
    "db.insert": "create",
    "db.update": "update",
    "notify.email": "send",
    "notify.webhook": "send",
    "http.request": "send",
}
TENANT = {
    "slug": "acme",
    "name": "Acme Corporation",
    "jurisdiction": "EU",
    "timezone": "Europe/Paris",
    "domains": ["acme.com"],
    "allowed_hosts": ["hooks.acme.com", "screening.acme.com"],
    "attributes": {},
}
BUSINESS_HOURS = {"now": "2025-06-03T10:15:00+02:00", "weekday": 2, "hour": 10, "business_hours": True}
NIGHT = {"now": "2025-06-03T23:40:00+02:00", "weekday": 2, "hour": 23, "business_hours": False}
# Steps of the seeded workflows that are held in a normal context, by design.
HELD = {("vendor", "renew_contract", "tell_vendor"): ("approve_email_outside_domains", "operator")}
_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@pytest.mark.parametrize(("pack", "rule"), RULES, ids=[f"{pack}:{rule['key']}" for pack, rule in RULES])
def test_seeded_rule_conditions_compile_against_the_context_schema(pack, rule):
    if not rule.get("condition"):
        return
    program, errors = check_condition(rule["condition"])
    assert errors == [] and program is not None, (pack, rule["key"], errors)


@pytest.mark.parametrize("pack", POLICY_PACKS, ids=[pack["key"] for pack in POLICY_PACKS])
def test_seeded_packs_pass_the_vendor_rule_checks(pack):
    rules = [{**rule, "layer": "vendor", "source": "policy_pack"} for rule in pack["rules"]]
    assert validate_rules(rules, layers=frozenset({"vendor"}))
    keys = {rule["key"] for rule in pack["rules"]}
    # Zero trust: a pack without allow rules denies everything its agent does.
    assert any(rule["effect"] == "allow" for rule in pack["rules"])
    assert {"deny_deletes", "deny_unscoped_updates", "deny_prompt_injection", "stop_runaway_loops"} <= keys
    assert (
        "approve_external_calls" in keys
        and {
            "deny_email_outside_domains",
            "approve_email_outside_domains",
        }
        & keys
    )


# --- The engine on the seeded agents -----------------------------------------------------------


class Agent:
    """A seeded variant's published 1.0.0: its spec and its pinned pack, compiled like the runtime does."""

    def __init__(self, key: str):
        version = AgentVersion.objects.select_related("policy_pack_version__pack").get(
            variant__key=key, version="1.0.0"
        )
        assert version.policy_pack_version is not None, f"{key} 1.0.0 pins no policy pack"
        self.key = key
        self.spec = version.spec
        self.allowlist = frozenset(tool["name"] for tool in self.spec["tools"])
        self.compiled = compile_ruleset(
            vendor_rules(version.policy_pack_version.rules), allowlist=self.allowlist
        )

    def decide(
        self,
        tool: str,
        entity: str | None = None,
        *,
        operation: str | None = None,
        target_ids: list | None = None,
        rates: int = 0,
        **overrides,
    ):
        """The decision on one action; `overrides` replace parts of the context (input, trace, time…)."""
        params = overrides.pop("params", {})
        action = {
            "tool": tool,
            "operation": operation or OPERATIONS.get(tool, ""),
            "entity": entity,
            "params": params,
            "target_ids": target_ids
            if target_ids is not None
            else ([params["id"]] if "id" in params else []),
        }
        context = {
            "agent": {"variant": self.key, "version": "1.0.0", "deployment": 1, "deployment_name": "Agent"},
            "principal": {"kind": "user", "id": "ana@acme.com", "role": "operator", "channel": ""},
            "tenant": TENANT,
            "input": input_context(params),
            "data": data_context(self.spec, action),
            "trace": {"steps": 3, "cost": 0.01, "depth": 0},
            "time": BUSINESS_HOURS,
            **overrides,
        }
        return evaluate(self.compiled, action, context, rate_counter=lambda key, window: rates)


def _resolve(value, values: dict):
    if isinstance(value, dict):
        return {key: _resolve(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, values) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        expression = match.group(1)
        assert expression in values, f"no plausible value for the template {{{{ {expression} }}}}: add one"
        return values[expression]

    return _TEMPLATE.sub(one, value)


def test_every_seeded_workflow_step_is_allowed_or_held_in_a_normal_context(world):
    decided = 0
    for key in VARIANTS:
        agent = Agent(key)
        values = {**VALUES, **(VENDOR_INPUTS if key == "vendor" else {})}
        for workflow in agent.spec["workflows"]:
            for trace_steps, step in enumerate(workflow["steps"], start=1):
                params = _resolve(step["params"], values)
                decision = agent.decide(
                    step["tool"],
                    step["entity"],
                    params=params,
                    trace={"steps": trace_steps, "cost": 0.0, "depth": 0},
                )
                where = (key, workflow["name"], step["id"])
                assert decision.effect != "deny", (where, decision.reason, decision.errors)
                assert decision.errors == (), (where, decision.errors)
                if where in HELD:
                    assert (decision.effect, decision.deciding_rule, decision.approver_role) == (
                        "require_approval",
                        *HELD[where],
                    )
                else:
                    assert decision.effect == "allow", (where, decision.effect, decision.reason)
                decided += 1
    assert decided == sum(len(w["steps"]) for k in VARIANTS for w in Agent(k).spec["workflows"]) > 30


def test_the_base_agent_reads_and_mails_inside_the_client(world):
    base = Agent("base")
    assert base.decide("db.query", params={"filter": {}, "limit": 10}).effect == "allow"
    mail = {"to": "ops@acme.com", "subject": "Summary", "body": "Three open tickets."}
    assert base.decide("notify.email", params=mail).effect == "allow"


# Each row: variant, tool, entity, params, context overrides / extra action fields, expected
# (effect, deciding rule, approver role).
SAFE_MAIL = {"to": "ana@acme.com", "subject": "Hello", "body": "Your ticket is resolved."}
DANGEROUS = [
    # Shared baseline, on every pack
    *[
        (key, "notify.email", None, SAFE_MAIL, {"input": {"injection": 0.9, "flags": ["x"]}},
         ("deny", "deny_prompt_injection", None))
        for key in VARIANTS
    ],
    *[
        (key, "db.get", entity, {"id": "1"}, {"input": {"injection": 0.6, "flags": ["x"]}},
         ("require_approval", "approve_suspicious_input", "operator"))
        for key, entity in [("base", None), ("itsm", "ticket"), ("finance", "invoice"), ("hr", "employee"),
                            ("vendor", "vendor")]
    ],
    *[
        (key, "notify.email", None, SAFE_MAIL, {"trace": {"steps": 51, "cost": 0.0, "depth": 0}},
         ("deny", "stop_runaway_loops", None))
        for key in VARIANTS
    ],
    *[
        (key, "notify.email", None, {**SAFE_MAIL, "to": to}, {}, ("deny", "deny_email_outside_domains", None))
        for key in ["base", "itsm", "finance", "hr"]
        for to in [
            "someone@evil.example",
            "ana@acme.com.evil.example",
            "someone@evil.example, ana@acme.com",
            "Ana <ana@acme.com>",
            "ana@notacme.com",
            ["ana@acme.com"],
        ]
    ],
    ("hr", "notify.email", None, {"subject": "No recipient"}, {},
     ("deny", "deny_email_outside_domains", None)),
    ("vendor", "notify.email", None, {**SAFE_MAIL, "to": "x@evil.example"}, {},
     ("require_approval", "approve_email_outside_domains", "operator")),
    *[
        (key, "notify.email", None, {**SAFE_MAIL, "bcc": "spy@evil.example"}, {},
         ("deny", "deny_email_copies", None))
        for key in VARIANTS
    ],
    ("itsm", "notify.email", None, SAFE_MAIL, {"rates": 150},
     ("require_approval", "approve_email_bursts", "operator")),
    ("finance", "notify.email", None, {**SAFE_MAIL, "body": "Pay to GB82WEST12345698765432 today."}, {},
     ("require_approval", "approve_payment_and_id_data_out", "client_admin")),
    *[
        (key, "db.update", entity, {"id": "1", "status": "x"}, {"operation": "delete"},
         ("deny", "deny_deletes", None))
        for key, entity in [("itsm", "ticket"), ("finance", "invoice"), ("hr", "leave_request"),
                            ("vendor", "contract")]
    ],
    *[
        (key, "db.update", entity, params, extra, ("deny", "deny_unscoped_updates", None))
        for key, entity in [("itsm", "ticket"), ("finance", "invoice"), ("hr", "leave_request"),
                            ("vendor", "contract")]
        for params, extra in [
            ({"status": "closed"}, {}),
            ({"id": "", "status": "closed"}, {}),
            ({"id": "1", "status": "closed"}, {"target_ids": ["1", "2"]}),
        ]
    ],
    # Outbound calls
    *[
        ("itsm", "notify.webhook", None, {"url": url, "payload": {}}, {},
         ("require_approval", "approve_external_calls", "client_admin"))
        for url in [
            "https://evil.example/hook",
            "http://hooks.acme.com/oncall",
            "https://hooks.acme.com@evil.example/",
            "https://hooks.acme.com.evil.example/",
            "https://hooks-acme.com/",
        ]
    ],
    ("vendor", "http.request", None, {"method": "GET", "url": "https://screening.evil.example/"}, {},
     ("require_approval", "approve_external_calls", "client_admin")),
    ("vendor", "http.request", None, {"method": "POST", "url": "https://screening.acme.com/v1/check"}, {},
     ("require_approval", "approve_non_get_requests", "client_admin")),
    # Zero trust: tools outside the allowlist, records outside the agent's entities
    ("base", "db.insert", "ticket", {"subject": "x"}, {}, ("deny", None, None)),
    ("finance", "notify.webhook", None, {"url": "https://hooks.acme.com/x", "payload": {}}, {},
     ("deny", None, None)),
    ("finance", "db.get", "employee", {"id": "E-1"}, {}, ("deny", None, None)),
    ("itsm", "db.insert", "ticket", {"subject": "x"}, {}, ("deny", None, None)),
    ("hr", "db.insert", "leave_request", {"employee_id": "E-1"}, {}, ("deny", None, None)),
    # Base agent: confidential reads are held
    ("base", "db.query", None, {"filter": {}},
     {"data": {"classification": "confidential", "fields": [], "pii": []}},
     ("require_approval", "approve_sensitive_reads", "client_admin")),
    # ITSM
    ("itsm", "db.update", "ticket", {"id": "INC-1", "priority": "critical"}, {},
     ("require_approval", "approve_critical_priority", "operator")),
    ("itsm", "db.update", "ticket", {"id": "INC-1", "requester_id": "P-666"}, {},
     ("deny", "deny_other_ticket_fields", None)),
    ("itsm", "notify.email", "ticket_comment", {**SAFE_MAIL, "is_internal": True}, {},
     ("redact", "redact_internal_comments", None)),
    # Finance
    ("finance", "db.insert", "payment", {"invoice_id": "INV-1", "amount": 20000, "method": "transfer"}, {},
     ("require_approval", "approve_large_payments", "client_admin")),
    ("finance", "db.insert", "payment", {"invoice_id": "INV-1", "amount": "10000.01"}, {},
     ("require_approval", "approve_large_payments", "client_admin")),
    ("finance", "db.insert", "payment", {"invoice_id": "INV-1", "amount": "900.00"}, {"time": NIGHT},
     ("require_approval", "approve_payments_out_of_hours", "operator")),
    ("finance", "db.insert", "payment", {"invoice_id": "INV-1", "amount": "-5"}, {},
     ("deny", "deny_non_positive_payments", None)),
    ("finance", "db.insert", "payment", {"invoice_id": "INV-1"}, {},
     ("deny", "deny_non_positive_payments", None)),
    ("finance", "db.insert", "payment", {"amount": "90.00"}, {},
     ("deny", "deny_payments_without_invoice", None)),
    ("finance", "db.update", "invoice", {"id": "INV-1", "amount_total": "1.00"}, {},
     ("deny", "deny_amount_changes", None)),
    ("finance", "db.update", "invoice", {"id": "INV-1", "vendor_id": "V-666"}, {},
     ("deny", "deny_other_invoice_fields", None)),
    # HR
    ("hr", "db.query", "employee", {"filter": {"department": "Sales"}, "limit": 500}, {},
     ("deny", "deny_bulk_employee_reads", None)),
    ("hr", "db.query", "employee", {"filter": {}, "limit": 5}, {},
     ("deny", "deny_bulk_employee_reads", None)),
    ("hr", "db.query", "employee", {"filter": {"department": "Sales"}}, {},
     ("deny", "deny_bulk_employee_reads", None)),
    ("hr", "db.update", "employee", {"id": "E-1", "status": "terminated"}, {},
     ("require_approval", "approve_employee_status_changes", "client_admin")),
    ("hr", "db.update", "employee", {"id": "E-1", "email": "x@evil.example"}, {},
     ("deny", "deny_other_employee_fields", None)),
    ("hr", "db.update", "leave_request", {"id": "LR-1", "end_date": "2026-01-01"}, {},
     ("deny", "deny_other_leave_fields", None)),
    ("hr", "notify.email", "employee", {**SAFE_MAIL, "hire_date": "2025-01-01"}, {},
     ("redact", "redact_personal_fields", None)),
    # Vendor management
    ("vendor", "db.update", "vendor", {"id": "V-1", "tax_id": "GB000"}, {},
     ("deny", "deny_tax_id_changes", None)),
    ("vendor", "db.update", "vendor", {"id": "V-1", "status": "active"}, {},
     ("require_approval", "approve_vendor_activation", "client_admin")),
    ("vendor", "db.update", "vendor", {"id": "V-1", "email": "new@evil.example"}, {},
     ("require_approval", "approve_vendor_contact_changes", "client_admin")),
    ("vendor", "db.update", "vendor", {"id": "V-1", "name": "Renamed"}, {},
     ("deny", "deny_other_vendor_fields", None)),
    ("vendor", "db.update", "contract", {"id": "C-1", "value": "250000"}, {},
     ("require_approval", "approve_large_contracts", "client_admin")),
    ("vendor", "db.update", "contract", {"id": "C-1", "vendor_id": "V-666"}, {},
     ("deny", "deny_other_contract_fields", None)),
    ("vendor", "db.insert", "vendor", {"name": "X", "tax_id": "1", "country": "GB", "status": "active"}, {},
     ("deny", "deny_vendors_not_pending_review", None)),
    ("vendor", "db.insert", "purchase_order", {"number": "PO-1"}, {}, ("deny", None, None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "tool", "entity", "params", "extra", "expected"),
    DANGEROUS,
    ids=[f"{row[0]}-{row[1]}-{i}" for i, row in enumerate(DANGEROUS)],
)
def test_dangerous_actions_are_denied_or_held(world, variant, tool, entity, params, extra, expected):
    extra = dict(extra)
    options = {name: extra.pop(name) for name in ("operation", "target_ids", "rates") if name in extra}
    decision = Agent(variant).decide(tool, entity, params=params, **options, **extra)
    effect, rule, approver = expected
    assert (decision.effect, decision.deciding_rule, decision.approver_role) == (effect, rule, approver), (
        decision.reason,
        decision.matched,
        decision.errors,
    )
    if effect == "deny" and rule is None:
        assert decision.layer == "zero_trust"


def test_the_same_actions_within_bounds_are_allowed(world):
    finance, vendor, itsm = Agent("finance"), Agent("vendor"), Agent("itsm")
    payment = {"invoice_id": "INV-1", "amount": "9999.99", "method": "transfer"}
    assert finance.decide("db.insert", "payment", params=payment).effect == "allow"
    assert vendor.decide("db.update", "contract", params={"id": "C-1", "value": "100000"}).effect == "allow"
    assert itsm.decide("db.update", "ticket", params={"id": "INC-1", "priority": "high"}).effect == "allow"
    assert itsm.decide("notify.email", params=SAFE_MAIL, rates=99).effect == "allow"
    hook = {"url": "https://hooks.acme.com:8443/oncall?x=1", "payload": {}}
    assert itsm.decide("notify.webhook", params=hook).effect == "allow"
