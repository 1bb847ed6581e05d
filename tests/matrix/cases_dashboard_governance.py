"""Permission matrix: client dashboard governance (rules, publishing, decisions) and, in the management
portal, a client's governance settings and a deployment's evaluation keys.

Dashboard pages are on client A's host: its members read, only its client admins write; client B's
admin (the foreign tenant), partner and vendor staff get 403 there. Management pages: partner A's admin
and assigned engineer; partner B's admin (the foreign partner) gets 404.
"""

from apps.deployments.models import Deployment
from apps.governance import selectors as governance_selectors
from apps.governance import services as governance_services
from apps.governance.engine import compile_ruleset, evaluate
from apps.governance.services import rules_digest
from tests.matrix.base import (
    NOT_FOUND,
    Case,
    a_deployment,
    a_deployment_page,
    client_a_admin,
    client_a_all,
    client_a_in_portal,
    only,
)

CLIENT_RULE = {
    "key": "deny_matrix_updates",
    "name": "No updates",
    "effect": "deny",
    "message": "No updates.",
    "selector": {"operations": ["update"]},
    "layer": "client",
}
RULE_POST = {
    "key": "deny_matrix_updates",
    "name": "Changed by a refused persona",
    "condition": "action.params.amount > 1",
    "effect": "deny",
    "message": "Refused personas must not write rules.",
    "severity": "high",
    "mode": "enforce",
}


def a_published_client_rule(w) -> dict:
    """Client A's active ruleset holds one client rule; its key names the edit and delete pages."""
    actor = w.users["client_a_admin"]
    draft = governance_services.ruleset_save_draft(client=w.client_a, rules=[CLIENT_RULE], actor=actor)
    governance_services.ruleset_publish(client=w.client_a, version=draft, actor=actor)
    return {"key": CLIENT_RULE["key"]}


def a_draft(w) -> dict:
    """A publishable draft in client A (a refused publish must leave it a draft)."""
    governance_services.ruleset_save_draft(
        client=w.client_a, rules=[CLIENT_RULE], actor=w.users["client_a_admin"]
    )
    return {}


def reviewed_draft(w) -> dict:
    draft = governance_selectors.ruleset_draft_get(client=w.client_a)
    return {"reviewed": rules_digest(draft.rules)}


def a_decision(w) -> dict:
    action = {"tool": "db.update", "params": {"id": "1"}}
    decision = evaluate(compile_ruleset([CLIENT_RULE]), action, {})
    entry = governance_services.decision_record(client=w.client_a, decision=decision, action=action)
    return {"pk": entry.pk}


def a_key_page(w) -> dict:
    """client A, a deployed deployment and an active evaluation key of it."""
    deployment = a_deployment(w, Deployment.Status.DEPLOYED)
    key, _secret = governance_services.evaluation_key_create(
        client=w.client_a, deployment=deployment, name="Matrix key", actor=None
    )
    return {"pk": w.client_a.pk, "deployment_id": deployment.pk, "key_id": key.pk}


SETTINGS_POST = {
    "timezone": "Europe/Paris",
    "jurisdiction": "EU",
    "own_domains": "evil.example",
    "allowed_hosts": "evil.example",
    "attributes": "owned = true",
}

CASES = [
    # Client dashboard: rules, the client's own rules, publishing, decisions (client A's host)
    Case("tenant:dashboard:rule_list", host="client_a", get=client_a_all),
    Case(
        "tenant:dashboard:rule_create",
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data=RULE_POST,
    ),
    Case(
        "tenant:dashboard:rule_edit",
        a_published_client_rule,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data=RULE_POST,
    ),
    Case(
        "tenant:dashboard:rule_delete",
        a_published_client_rule,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
    ),
    Case(
        "tenant:dashboard:ruleset_publish",
        a_draft,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data=reviewed_draft,
    ),
    Case("tenant:dashboard:decision_list", host="client_a", get=client_a_all),
    Case("tenant:dashboard:decision_detail", a_decision, host="client_a", get=client_a_all),
    # Management portal: client A's governance settings and evaluation keys (partner B gets 404)
    Case(
        "public:management:client_governance_settings",
        lambda w: {"pk": w.client_a.pk},
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=SETTINGS_POST,
    ),
    Case(
        "public:management:client_governance_settings",
        lambda w: {"pk": w.client_a2.pk},
        get=only({"partner_a_admin"}, partner_a_engineer=NOT_FOUND, partner_b_admin=NOT_FOUND),
        post=only({"partner_a_admin"}, partner_a_engineer=NOT_FOUND, partner_b_admin=NOT_FOUND),
        data=SETTINGS_POST,
    ),
    Case(
        "public:management:evaluation_key_list",
        a_deployment_page(Deployment.Status.DEPLOYED),
        get=client_a_in_portal,
    ),
    Case(
        "public:management:evaluation_key_create",
        a_deployment_page(Deployment.Status.DEPLOYED),
        get=client_a_in_portal,
        post=client_a_in_portal,
        data={"name": "Evil key"},
    ),
    Case(
        "public:management:evaluation_key_revoke",
        a_key_page,
        get=client_a_in_portal,
        post=client_a_in_portal,
    ),
]
