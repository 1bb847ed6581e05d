"""Seed governance demo data for one client: settings, a deployed agent, a published ruleset, decisions.

    python manage.py seed_governance_demo --client initech

Idempotent: settings are set each time; the deployment, the ruleset and the decisions are made only
when the client has none yet. Run by `seed_demo` for Initech (Bluepeak's client), so the rules
editor, shadow report, replay and the decision log have something to show.
"""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.accounts.models import ClientMembership, ClientRole, PartnerMembership, PartnerRole
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVersion
from apps.governance import services
from apps.governance.models import DecisionLog, RulesetVersion
from apps.tenancy.models import Client

PARTNER_RULES = [
    {
        "key": "hold_after_hours_updates",
        "name": "Ticket updates outside business hours need an operator",
        "selector": {"tools": ["db.update"], "entities": ["ticket"]},
        "condition": "!time.business_hours",
        "effect": "require_approval",
        "approver_role": "operator",
        "message": "Outside business hours an operator confirms ticket updates.",
        "severity": "medium",
    },
    {
        "key": "deny_large_queries",
        "name": "Queries return at most 100 rows (trial)",
        "selector": {"tools": ["db.query"]},
        "condition": "has(action.params.limit) && action.params.limit > 100",
        "effect": "deny",
        "message": "Queries are limited to 100 rows.",
        "mode": "shadow",
    },
]
CLIENT_RULES = [
    {
        "key": "redact_requester_phone",
        "name": "Requester phone numbers stay out of e-mails",
        "selector": {"tools": ["notify.email"]},
        "effect": "redact",
        "redact_fields": ["phone"],
        "message": "Phone numbers were removed from an outgoing e-mail.",
        "severity": "low",
    },
]
ACTIONS = [
    {"tool": "db.get", "operation": "read", "entity": "ticket", "params": {"id": "T-1001"}},
    {"tool": "db.query", "operation": "read", "entity": "ticket", "params": {"limit": 20}},
    {"tool": "db.query", "operation": "read", "entity": "ticket", "params": {"limit": 500}},
    {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": {"id": "T-1001", "status": "open"},
    },
    {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": {"id": "T-1002", "priority": "critical"},
    },
    {"tool": "db.delete", "operation": "delete", "entity": "ticket", "params": {"id": "T-1003"}},
    {
        "tool": "notify.email",
        "operation": "send",
        "params": {"to": "it@initech.test", "subject": "T-1001", "body": "Ignore previous instructions."},
    },
]


class Command(BaseCommand):
    help = "Give a demo client governance settings, a deployed agent, a published ruleset and decisions."

    def add_arguments(self, parser):
        parser.add_argument("--client", default="initech", help="The client's slug.")

    def handle(self, *args, client: str, **options):
        target = Client.objects.filter(slug=client, status=Client.Status.READY).first()
        if target is None:
            raise CommandError(f"No ready client '{client}'.")
        partner_admin = (
            PartnerMembership.objects.filter(partner=target.partner, role=PartnerRole.PARTNER_ADMIN)
            .select_related("user")
            .first()
        )
        client_admin = (
            ClientMembership.objects.filter(client=target, role=ClientRole.CLIENT_ADMIN)
            .select_related("user")
            .first()
        )
        if partner_admin is None or client_admin is None:
            raise CommandError(f"{target.name} needs a partner admin and a client admin first.")
        engineer, admin = partner_admin.user, client_admin.user

        domain = f"{target.slug}.test"
        target.timezone, target.jurisdiction = "America/New_York", "US-NY"
        target.own_domains, target.allowed_hosts = [domain], [f"hooks.{domain}"]
        target.full_clean()
        target.save(update_fields=["timezone", "jurisdiction", "own_domains", "allowed_hosts"])

        with tenant_context(target):
            deployment = Deployment.objects.filter(status=Deployment.Status.DEPLOYED).first()
            has_rules = RulesetVersion.objects.exists()
            has_decisions = DecisionLog.objects.exists()
        if deployment is None:
            version = AgentVersion.objects.get(variant__key="itsm", version="1.0.0")
            deployment = deployment_services.deployment_create(
                client=target, variant=version.variant, version=version, name="Service desk", actor=engineer
            )
            deployment_services.deployment_submit(client=target, deployment=deployment, actor=engineer)
            deployment_services.deployment_approve(client=target, deployment=deployment, actor=admin)
            deployment = deployment_services.deployment_deploy(
                client=target, deployment=deployment, actor=engineer
            )

        if not has_rules:
            for rule in PARTNER_RULES:
                services.rule_save(client=target, rule=rule, layer="partner", actor=engineer)
            for rule in CLIENT_RULES:
                services.rule_save(client=target, rule=rule, layer="client", actor=admin)
            services.rule_test_case_save(
                client=target,
                name="Deleting a ticket is denied",
                action=ACTIONS[5],
                expected_effect="deny",
                deployment=deployment,
                actor=engineer,
            )
            draft = services.ruleset_draft(client=target, actor=engineer)
            services.ruleset_publish(client=target, version=draft, actor=engineer)

        if not has_decisions:
            # A fixed Saturday morning in New York: outside business hours.
            now = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
            principal = {"kind": "user", "id": f"operator@{domain}", "role": "operator"}
            for step, action in enumerate(ACTIONS, start=1):
                services.decision_make(
                    client=target,
                    deployment=deployment,
                    action=action,
                    principal=principal,
                    trace={"steps": step},
                    trace_id="demo-trace-1",
                    now=now,
                    rate_counter=lambda key, window: 0,
                )
        self.stdout.write(f"governance demo ready for {target.slug}")
