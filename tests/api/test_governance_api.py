"""API v1, governance: evaluating with a key, rulesets and rules by layer, test cases, publish, rollback,
replay, the shadow report, the decision log and evaluation keys, on both hosts.

Client A gets a deployed ITSM deployment (through the deployment services) inside each test. The
rules here are the test's own (keys `api_…`): the seeded policy packs' vendor rules sit in front of
them, so assertions do not depend on what those packs contain beyond their being locked.
"""

import json

import pytest
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import tenant_context
from rest_framework.pagination import PageNumberPagination

from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVersion
from apps.governance import services
from apps.governance.context import MAX_ACTION_BYTES
from apps.governance.models import DecisionLog, EvaluationKey, RulesetVersion, RuleTestCase
from apps.tenancy.models import Client
from tests.conftest import PERSONAS, host_of, http_client
from tests.world import PASSWORD

ALLOW_READS = {
    "key": "api_allow_reads",
    "name": "Ticket reads are fine",
    "effect": "allow",
    "message": "Reading tickets is allowed.",
    "selector": {"tools": ["db.query", "db.get"], "entities": ["ticket"]},
}
ALLOW_UPDATES = {
    "key": "api_allow_updates",
    "name": "Ticket updates are fine",
    "effect": "allow",
    "message": "Updating one ticket is allowed.",
    "selector": {"tools": ["db.update"], "entities": ["ticket"]},
}
HOLD_CLOSING = {
    "key": "api_hold_closing",
    "name": "Closing a ticket needs the client admin",
    "effect": "require_approval",
    "approver_role": "client_admin",
    "message": "A client admin approves closing tickets.",
    "selector": {"tools": ["db.update"]},
    "condition": "has(action.params.status) && action.params.status == 'closed'",
}
DENY_SECURITY = {
    "key": "api_deny_security",
    "name": "Security tickets are for people",
    "effect": "deny",
    "message": "Agents do not touch security tickets.",
    "selector": {"tools": ["db.update"]},
    "condition": "has(action.params.category) && action.params.category == 'security'",
}
READ = {"tool": "db.query", "operation": "read", "entity": "ticket", "params": {"limit": 5}, "target_ids": []}
UPDATE = {
    "tool": "db.update",
    "operation": "update",
    "entity": "ticket",
    "params": {"id": "T-1", "team_id": "7"},
}
CLOSE = {**UPDATE, "params": {"id": "T-1", "status": "closed"}}
SECURITY = {**UPDATE, "params": {"id": "T-1", "category": "security"}}


# --- Helpers ---------------------------------------------------------------------------------


def post(browser, url: str, data, **extra):
    return browser.post(url, json.dumps(data), content_type="application/json", **extra)


def put(browser, url: str, data):
    return browser.put(url, json.dumps(data), content_type="application/json")


def on_platform(client: Client, path: str) -> str:
    return f"/api/v1/clients/{client.pk}/governance/{path}"


def on_host(path: str) -> str:
    return f"/api/v1/governance/{path}"


def make_deployment(
    world, status: str = Deployment.Status.DEPLOYED, *, client=None, name: str = "Helpdesk"
) -> Deployment:
    """An ITSM 1.0.0 deployment of `client` (client A by default) brought to `status` by the services."""
    client = client or world.client_a
    maker = world.users[
        "partner_a_engineer" if client.partner_id == world.partner_a.pk else "partner_b_admin"
    ]
    version = AgentVersion.objects.get(variant__key="itsm", version="1.0.0")
    deployment = deployment_services.deployment_create(
        client=client, variant=version.variant, version=version, name=name, actor=maker
    )
    steps = {
        Deployment.Status.DRAFT: [],
        Deployment.Status.DEPLOYED: ["submit", "approve", "deploy"],
        Deployment.Status.PAUSED: ["submit", "approve", "deploy", "pause"],
    }[status]
    for step in steps:
        actor = world.users["vendor_admin"] if step == "approve" else maker
        service = getattr(deployment_services, f"deployment_{step}")
        if step == "pause":
            service(client=client, deployment=deployment, actor=actor, reason="Maintenance")
        else:
            service(client=client, deployment=deployment, actor=actor)
    return deployment


def publish(world, rules: list, client=None) -> RulesetVersion:
    client, actor = client or world.client_a, world.users["partner_a_engineer"]
    draft = services.ruleset_save_draft(client=client, rules=rules, actor=actor)
    return services.ruleset_publish(client=client, version=draft, actor=actor)


def new_key(world, deployment: Deployment, client=None) -> str:
    client = client or world.client_a
    _, secret = services.evaluation_key_create(client=client, deployment=deployment, name="Plane", actor=None)
    return secret


def evaluate(world, key: str | None, body, *, client=None, browser=None, **extra):
    browser = browser or http_client(host=host_of(client or world.client_a))
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return post(browser, on_host("evaluate"), body, **extra)


def logged(client: Client) -> list[DecisionLog]:
    with tenant_context(client):
        return list(DecisionLog.objects.select_related("ruleset_version").order_by("pk"))


def versions(client: Client) -> list[tuple]:
    with tenant_context(client):
        return list(
            RulesetVersion.objects.order_by("number").values_list("number", "status", "is_active", "rules")
        )


def draft_rules(client: Client) -> list[dict] | None:
    with tenant_context(client):
        draft = RulesetVersion.objects.filter(status="draft").first()
    return draft.rules if draft else None


@pytest.fixture
def deployed(world) -> Deployment:
    return make_deployment(world)


@pytest.fixture
def key(world, deployed) -> str:
    publish(world, [ALLOW_READS, ALLOW_UPDATES, {**HOLD_CLOSING, "layer": "client"}, DENY_SECURITY])
    return new_key(world, deployed)


# --- Evaluate ----------------------------------------------------------------------------------


def test_evaluate_decides_as_the_rules_say_and_logs_each_decision(world, deployed, key):
    active = versions(world.client_a)[-1]
    principal = {"kind": "user", "id": "ana@example.com", "role": "operator", "channel": "slack"}
    allowed = evaluate(
        world, key, {"action": READ, "principal": principal, "trace": {"steps": 3}, "trace_id": "tr-1"}
    )
    assert allowed.status_code == 200, allowed.json()
    body = allowed.json()
    # A vendor allow rule may decide first (vendor rules lead); ours matched either way.
    assert body["effect"] == "allow" and "api_allow_reads" in body["matched"]
    assert body["layer"] in {"vendor", "partner"} and body["deployment"] == deployed.pk
    assert body["ruleset_version"] == active[0]
    assert {"decision_id", "reason", "matched", "errors", "action_hash", "shadow", "elapsed_us"} <= set(body)

    held = evaluate(world, key, {"action": CLOSE, "trace_id": "tr-1"}).json()
    assert held["effect"] == "require_approval" and held["deciding_rule"] == "api_hold_closing"
    assert held["layer"] == "client" and held["approver_role"] == "client_admin"
    denied = evaluate(world, key, {"action": SECURITY}).json()
    assert denied["effect"] == "deny" and denied["deciding_rule"] == "api_deny_security"
    assert denied["reason"] == DENY_SECURITY["message"]
    # Zero trust: a tool outside the deployed version's allowlist is denied whatever the rules say.
    outside = evaluate(world, key, {"action": {"tool": "shell.exec", "operation": "update"}}).json()
    assert (
        outside["effect"] == "deny" and outside["layer"] == "zero_trust" and "allowlist" in outside["reason"]
    )

    rows = logged(world.client_a)
    assert [r.pk for r in rows] == [
        body["decision_id"],
        held["decision_id"],
        denied["decision_id"],
        outside["decision_id"],
    ]
    first = rows[0]
    assert (
        first.effect == "allow"
        and first.deciding_rule == body["deciding_rule"]
        and first.layer == body["layer"]
    )
    assert "api_allow_reads" in first.matched
    assert first.deployment_id == deployed.pk and first.trace_id == "tr-1"
    assert first.ruleset_version.number == active[0] and first.action == READ
    assert first.action_hash == body["action_hash"] and first.ruleset_key == body["ruleset_key"]
    assert first.context["principal"] == principal and first.context["trace"]["steps"] == 3
    assert first.context["agent"]["deployment"] == deployed.pk
    assert rows[1].approver_role == "client_admin" and rows[1].trace_id == "tr-1"
    assert rows[2].effect == "deny" and rows[2].reason == DENY_SECURITY["message"]
    with tenant_context(world.client_a):
        assert EvaluationKey.objects.get().last_used_at is not None


def test_the_key_decides_the_deployment_not_the_body(world, deployed, key):
    other = make_deployment(world, name="Second desk")
    response = evaluate(world, key, {"action": READ, "deployment": other.pk})
    assert (
        response.status_code == 400
        and "the evaluation key decides the deployment" in response.json()["deployment"][0]
    )
    assert logged(world.client_a) == []
    assert evaluate(world, key, {"action": READ}).json()["deployment"] == deployed.pk
    assert evaluate(world, new_key(world, other), {"action": READ}).json()["deployment"] == other.pk
    assert [row.deployment_id for row in logged(world.client_a)] == [deployed.pk, other.pk]


def test_a_paused_deployment_gets_denials(world):
    deployment = make_deployment(world, Deployment.Status.PAUSED)
    publish(world, [ALLOW_READS])
    response = evaluate(world, new_key(world, deployment), {"action": READ})
    assert response.status_code == 200
    assert response.json()["effect"] == "deny" and "paused" in response.json()["reason"]
    assert logged(world.client_a)[0].deployment_id == deployment.pk


def test_revoked_or_foreign_or_made_up_keys_are_refused_and_nothing_is_logged(world, deployed, key):
    with tenant_context(world.client_a):
        stored = EvaluationKey.objects.get()
    services.evaluation_key_revoke(client=world.client_a, key=stored, actor=None)
    revoked = evaluate(world, key, {"action": READ})
    assert revoked.status_code == 401 and revoked["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in revoked.json()["detail"]

    # Client B's key: good on client B's own host, worthless on client A's.
    foreign_deployment = make_deployment(world, Deployment.Status.DRAFT, client=world.client_b)
    foreign = new_key(world, foreign_deployment, client=world.client_b)
    assert evaluate(world, foreign, {"action": READ}).status_code == 401
    # Client A's key on client A2's host (same partner) is no better.
    active = new_key(world, deployed)
    assert evaluate(world, active, {"action": READ}, client=world.client_a2).status_code == 401
    # An active key's prefix with a wrong secret, a truncated key, anything else.
    prefix = active.split("_")[1]
    for bad in [f"tpk_{prefix}_{'x' * 43}", f"{active}x", active[:-1], "tpk_nope", "not-a-key", "tpk__"]:
        assert evaluate(world, bad, {"action": READ}).status_code == 401, bad
    assert logged(world.client_a) == [] and logged(world.client_a2) == []
    # Client B's key does work where it belongs (a draft deployment: denied, but decided and logged).
    on_its_host = evaluate(world, foreign, {"action": READ}, client=world.client_b)
    assert on_its_host.status_code == 200 and on_its_host.json()["effect"] == "deny"
    assert len(logged(world.client_b)) == 1


def test_people_may_not_evaluate_only_keys(world, deployed, key, client_host):
    for persona in ["client_a_admin", "client_a_operator", "client_b_admin", "vendor_admin"]:
        response = post(client_host(persona), on_host("evaluate"), {"action": READ})
        assert response.status_code == 403, persona
        assert "evaluation key" in response.json()["detail"]
    token = http_client().post(
        "/api/v1/auth/token", {"username": "client.a.admin@example.com", "password": PASSWORD}
    )
    with_token = evaluate(world, None, {"action": READ}, HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert with_token.status_code == 403
    anonymous = evaluate(world, None, {"action": READ})
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert logged(world.client_a) == []
    # Evaluating is a client host's endpoint: the platform host has none.
    assert (
        post(
            http_client(), on_host("evaluate"), {"action": READ}, HTTP_AUTHORIZATION=f"Bearer {key}"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"action": {"operation": "read"}}, "tool", "needs a tool"),
        ({"action": {"tool": "db.query", "operation": "drop"}}, "operation", "one of"),
        ({"action": {"tool": "db.query", "params": [1, 2]}}, "params", "object"),
        ({"action": {"tool": "db.query", "target_ids": [True]}}, "target_ids", "list of ids"),
        ({"action": {"tool": "db.query", "sql": "DROP TABLE x"}}, "action", "Unknown action field: sql"),
        ({"action": ["db.query"]}, None, "An action is an object"),
        (
            {"action": {"tool": "db.query", "params": {"blob": "x" * (MAX_ACTION_BYTES + 10)}}},
            "params",
            "64 KB",
        ),
    ],
)
def test_a_malformed_action_is_a_400_with_its_message_and_nothing_is_logged(world, key, body, field, text):
    response = evaluate(world, key, body)
    assert response.status_code == 400, response.content
    assert text in response.json()["detail"]
    assert response.json().get("field") == field
    assert logged(world.client_a) == []


def test_malformed_requests_around_the_action_are_refused(world, key):
    browser = http_client(host=host_of(world.client_a))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    missing = evaluate(world, key, {"principal": {"kind": "user"}})
    assert missing.status_code == 400 and "action" in missing.json()
    assert evaluate(world, key, {"action": READ, "principal": {"kind": "robot"}}).status_code == 400
    assert evaluate(world, key, {"action": READ, "principal": "ana"}).status_code == 400
    assert evaluate(world, key, {"action": READ, "trace": {"steps": -1}}).status_code == 400
    assert evaluate(world, key, {"action": READ, "trace_id": "t" * 65}).status_code == 400
    assert evaluate(world, key, [READ]).status_code == 400
    broken = browser.post(on_host("evaluate"), "{not json", content_type="application/json", **auth)
    assert broken.status_code == 400
    form = browser.post(on_host("evaluate"), {"action": "x"}, **auth)
    assert form.status_code == 415
    assert logged(world.client_a) == []


def test_a_huge_body_is_refused_before_it_is_parsed(world, key):
    huge = {"action": {**READ, "params": {"blob": "x" * (3 * MAX_ACTION_BYTES)}}}
    response = evaluate(world, key, huge)
    assert response.status_code == 413 and "KB" in response.json()["detail"]
    assert logged(world.client_a) == []


def test_each_key_is_throttled_on_its_own(world, deployed, key):
    other = new_key(world, deployed)
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"governance_evaluate": "2/min"}}
    with override_settings(REST_FRAMEWORK=rates):
        assert [evaluate(world, key, {"action": READ}).status_code for _ in range(3)] == [200, 200, 429]
        assert evaluate(world, other, {"action": READ}).status_code == 200
    assert len(logged(world.client_a)) == 3


# --- Rules by layer ------------------------------------------------------------------------------


def test_partner_edits_publishes_and_everyone_entitled_reads(world, deployed, platform, client_host):
    engineer = platform("partner_a_engineer")
    created = post(engineer, on_platform(world.client_a, "rules"), ALLOW_READS)
    assert created.status_code == 201, created.json()
    assert created.json()["draft_version"] == 1
    assert created.json()["rule"]["layer"] == "partner" and created.json()["rule"]["locked"] is False
    assert created.json()["rule"]["selector"]["tools"] == ["db.query", "db.get"]

    ruleset = platform("vendor_admin").get(on_platform(world.client_a, "ruleset")).json()
    assert ruleset["active_version"] is None and ruleset["draft_version"] == 1
    locked = [r for r in ruleset["draft_rules"] if r["locked"]]
    assert locked and {r["layer"] for r in locked} == {"vendor"}
    pack = deployed.version.policy_pack_version
    assert all(r["packs"] == [f"{pack.pack.key} {pack.version}"] for r in locked)
    assert [r["key"] for r in ruleset["draft_rules"] if not r["locked"]] == ["api_allow_reads"]
    assert ruleset["rules"] == locked  # nothing published yet: only the vendor rules govern
    assert "db.update" in ruleset["pickers"]["tools"]
    assert "action" in {v["name"] for v in ruleset["context_variables"]}

    # A bad condition is refused with its path relative to the rule; nothing changes.
    bad = post(
        engineer, on_platform(world.client_a, "rules"), {**ALLOW_UPDATES, "condition": "action.params.("}
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["path"] == "condition" and "CEL" in bad.json()["errors"][0]["message"]
    assert [r["key"] for r in draft_rules(world.client_a)] == ["api_allow_reads"]

    replaced = put(
        engineer, on_platform(world.client_a, "rules/api_allow_reads"), {**ALLOW_READS, "name": "Reads"}
    )
    assert replaced.status_code == 200 and replaced.json()["rule"]["name"] == "Reads"
    post(engineer, on_platform(world.client_a, "rules"), ALLOW_UPDATES)
    assert engineer.delete(on_platform(world.client_a, "rules/api_allow_updates")).status_code == 204
    assert engineer.delete(on_platform(world.client_a, "rules/api_allow_updates")).status_code == 404

    published = post(engineer, on_platform(world.client_a, "publish"), {})
    assert published.status_code == 200, published.json()
    version = published.json()
    assert version["number"] == 1 and version["status"] == "published" and version["is_active"]
    assert version["published_by"] == "partner.a.engineer@example.com"
    assert [r["key"] for r in version["rules"] if not r["locked"]] == ["api_allow_reads"]
    assert post(engineer, on_platform(world.client_a, "publish"), {}).status_code == 400  # no draft left

    for persona in ["client_a_admin", "client_a_operator", "client_a_viewer"]:
        browser = client_host(persona)
        assert browser.get(on_host("ruleset")).json()["active_version"] == 1, persona
        assert [v["number"] for v in browser.get(on_host("versions")).json()] == [1]
        assert browser.get(on_host("versions/1")).json()["rule_count"] == 1
        assert browser.get(on_host("rules/api_allow_reads")).json()["name"] == "Reads"
    assert client_host("client_a_viewer").get(on_host("versions/9")).status_code == 404
    assert client_host("client_a_viewer").get(on_host("rules/nope")).status_code == 404


def test_client_admin_writes_client_rules_only(world, deployed, client_host):
    publish(world, [ALLOW_READS, ALLOW_UPDATES])
    admin = client_host("client_a_admin")
    vendor_key = services.deployment_vendor_rules(deployed)[0]["key"]
    before = versions(world.client_a)

    created = post(admin, on_host("rules"), HOLD_CLOSING)
    assert created.status_code == 201 and created.json()["rule"]["layer"] == "client"
    # Client rules only make decisions stricter.
    loose = post(admin, on_host("rules"), {**ALLOW_READS, "key": "allow_everything", "selector": {}})
    assert loose.status_code == 400 and "stricter" in loose.json()["errors"][0]["message"]
    # A crafted rule claiming the partner (or vendor) layer is refused, not silently re-labelled.
    for layer in ["partner", "vendor", "nonsense"]:
        crafted = post(admin, on_host("rules"), {**DENY_SECURITY, "layer": layer})
        assert crafted.status_code == 400, layer
        assert (
            crafted.json()["errors"][0]["path"] == "layer"
            and "you write client rules" in crafted.json()["detail"]
        )
    # A vendor rule's key cannot be reused, replaced or removed.
    reuse = post(admin, on_host("rules"), {**DENY_SECURITY, "key": vendor_key})
    assert reuse.status_code == 400 and "locked vendor rule" in reuse.json()["detail"]
    for response in [
        put(admin, on_host(f"rules/{vendor_key}"), DENY_SECURITY),
        admin.delete(on_host(f"rules/{vendor_key}")),
    ]:
        assert response.status_code == 400 and "locked vendor rule" in response.json()["detail"]
    # A partner rule cannot be replaced or removed by the client, nor overwritten under the client layer.
    for response in [
        put(admin, on_host("rules/api_allow_reads"), {**DENY_SECURITY, "key": "api_allow_reads"}),
        put(admin, on_host("rules/api_allow_reads"), {**ALLOW_READS, "layer": "partner"}),
        admin.delete(on_host("rules/api_allow_reads")),
    ]:
        assert response.status_code == 400
        assert "partner" in response.json()["detail"]
    same_key = post(admin, on_host("rules"), {**DENY_SECURITY, "key": "api_allow_reads"})
    assert same_key.status_code == 400 and "used twice" in same_key.json()["detail"]

    rules = draft_rules(world.client_a)
    assert [(r["key"], r["layer"]) for r in rules] == [
        ("api_allow_reads", "partner"),
        ("api_allow_updates", "partner"),
        ("api_hold_closing", "client"),
    ]
    assert rules[0] == {**rules[0], **{k: v for k, v in ALLOW_READS.items() if k != "selector"}}
    assert versions(world.client_a)[0] == before[0]
    # And the partner may not change the client's rule either.
    partner = http_client(world.users["partner_a_engineer"])
    refused = put(
        partner, on_platform(world.client_a, "rules/api_hold_closing"), {**HOLD_CLOSING, "layer": "partner"}
    )
    assert refused.status_code == 400 and "client rule" in refused.json()["detail"]
    assert draft_rules(world.client_a) == rules

    # The client admin publishes; operators and viewers read only.
    for persona in ["client_a_operator", "client_a_viewer"]:
        reader = client_host(persona)
        assert post(reader, on_host("rules"), DENY_SECURITY).status_code == 403
        assert reader.delete(on_host("rules/api_hold_closing")).status_code == 403
        assert post(reader, on_host("publish"), {}).status_code == 403
    assert draft_rules(world.client_a) == rules
    published = post(admin, on_host("publish"), {})
    assert published.status_code == 200 and published.json()["number"] == 2


def test_publish_is_blocked_by_a_failing_test_case_then_passes(world, deployed, platform):
    engineer = platform("partner_a_engineer")
    # Against the deployment (its vendor rules and allowlist): a tool outside the allowlist is denied.
    outside = post(
        engineer,
        on_platform(world.client_a, "test-cases"),
        {
            "name": "no shell",
            "action": {"tool": "shell.exec"},
            "expected_effect": "deny",
            "deployment": deployed.pk,
        },
    )
    assert outside.status_code == 201, outside.json()
    assert outside.json()["deployment"] == deployed.pk
    assert outside.json()["created_by"] == "partner.a.engineer@example.com"
    # Against the ruleset's own rules alone.
    case = post(
        engineer,
        on_platform(world.client_a, "test-cases"),
        {"name": "security tickets stay with people", "action": SECURITY, "expected_effect": "deny"},
    )
    assert case.status_code == 201 and case.json()["deployment"] is None
    post(engineer, on_platform(world.client_a, "rules"), ALLOW_UPDATES)

    blocked = post(engineer, on_platform(world.client_a, "publish"), {})
    assert blocked.status_code == 400
    assert blocked.json()["errors"] == [
        {
            "path": "test:security tickets stay with people",
            "message": blocked.json()["errors"][0]["message"],
        }
    ]
    assert "expected deny, got allow" in blocked.json()["errors"][0]["message"]
    assert [v[1] for v in versions(world.client_a)] == ["draft"]

    post(engineer, on_platform(world.client_a, "rules"), DENY_SECURITY)
    published = post(engineer, on_platform(world.client_a, "publish"), {})
    assert published.status_code == 200 and published.json()["is_active"]

    # Test cases: listed, read, replaced by name, removed — by writers only.
    cases = engineer.get(on_platform(world.client_a, "test-cases")).json()
    assert [c["name"] for c in cases] == ["no shell", "security tickets stay with people"]
    pk = cases[1]["id"]
    assert (
        platform("vendor_admin")
        .get(on_platform(world.client_a, f"test-cases/{pk}"))
        .json()["expected_effect"]
        == "deny"
    )
    assert platform("vendor_admin").delete(on_platform(world.client_a, f"test-cases/{pk}")).status_code == 403
    bad_deployment = post(
        engineer,
        on_platform(world.client_a, "test-cases"),
        {"name": "x", "action": READ, "expected_effect": "allow", "deployment": 999999},
    )
    assert bad_deployment.status_code == 400 and "deployment" in bad_deployment.json()
    bad_action = post(
        engineer,
        on_platform(world.client_a, "test-cases"),
        {"name": "x", "action": {"tool": ""}, "expected_effect": "allow"},
    )
    assert bad_action.status_code == 400 and bad_action.json()["field"] == "tool"
    assert engineer.delete(on_platform(world.client_a, f"test-cases/{pk}")).status_code == 204
    with tenant_context(world.client_a):
        assert list(RuleTestCase.objects.values_list("name", flat=True)) == ["no shell"]


def test_client_admin_manages_test_cases_on_its_host(world, client_host):
    admin = client_host("client_a_admin")
    made = post(admin, on_host("test-cases"), {"name": "reads", "action": READ, "expected_effect": "allow"})
    assert made.status_code == 201 and made.json()["deployment"] is None
    replaced = post(
        admin, on_host("test-cases"), {"name": "reads", "action": READ, "expected_effect": "deny"}
    )
    assert replaced.json()["id"] == made.json()["id"] and replaced.json()["expected_effect"] == "deny"
    viewer = client_host("client_a_viewer")
    assert [c["name"] for c in viewer.get(on_host("test-cases")).json()] == ["reads"]
    assert (
        post(
            viewer, on_host("test-cases"), {"name": "x", "action": READ, "expected_effect": "allow"}
        ).status_code
        == 403
    )
    assert viewer.delete(on_host(f"test-cases/{made.json()['id']}")).status_code == 403
    assert admin.delete(on_host(f"test-cases/{made.json()['id']}")).status_code == 204


def test_rollback_makes_an_earlier_version_active_as_a_new_one(world, deployed, platform, client_host):
    publish(world, [ALLOW_READS])
    publish(world, [ALLOW_READS, DENY_SECURITY])
    engineer = platform("partner_a_engineer")
    assert (
        post(engineer, on_platform(world.client_a, "rollback"), {"to_version": 2}).status_code == 400
    )  # active
    missing = post(engineer, on_platform(world.client_a, "rollback"), {"to_version": 7})
    assert missing.status_code == 400 and "to_version" in missing.json()
    assert (
        post(platform("vendor_admin"), on_platform(world.client_a, "rollback"), {"to_version": 1}).status_code
        == 403
    )
    assert (
        post(
            platform("partner_b_admin"), on_platform(world.client_a, "rollback"), {"to_version": 1}
        ).status_code
        == 404
    )

    rolled = post(engineer, on_platform(world.client_a, "rollback"), {"to_version": 1})
    assert rolled.status_code == 201, rolled.json()
    assert (
        rolled.json()["number"] == 3 and rolled.json()["rolled_back_from"] == 1 and rolled.json()["is_active"]
    )
    listed = client_host("client_a_viewer").get(on_host("versions")).json()
    assert [(v["number"], v["is_active"], v["rolled_back_from"]) for v in listed] == [
        (3, True, 1),
        (2, False, None),
        (1, False, None),
    ]
    assert versions(world.client_a)[2][3] == versions(world.client_a)[0][3]
    # Rollback is the partner team's: the client's host has no such route.
    assert post(client_host("client_a_admin"), on_host("rollback"), {"to_version": 2}).status_code == 404


def test_replay_shows_a_decision_the_draft_would_change(world, deployed, key, platform, client_host):
    allowed = evaluate(world, key, {"action": UPDATE, "trace_id": "tr-9"}).json()
    evaluate(world, key, {"action": READ})
    assert allowed["effect"] == "allow"
    engineer = platform("partner_a_engineer")
    assert post(engineer, on_platform(world.client_a, "replay"), {}).status_code == 400  # no draft yet
    stricter = {**DENY_SECURITY, "key": "api_deny_team_moves", "condition": "has(action.params.team_id)"}
    assert post(engineer, on_platform(world.client_a, "rules"), stricter).status_code == 201

    replay = post(engineer, on_platform(world.client_a, "replay"), {"last": 50})
    assert replay.status_code == 200, replay.json()
    result = replay.json()
    assert result["version"] == versions(world.client_a)[-1][0] and result["replayed"] == 2
    assert len(result["changes"]) == 1
    change = result["changes"][0]
    assert change["decision"] == allowed["decision_id"] and change["trace_id"] == "tr-9"
    assert (
        change["before"]["effect"] == "allow"
        and change["before"]["deciding_rule"] == allowed["deciding_rule"]
    )
    assert change["after"] == {
        "effect": "deny",
        "reason": DENY_SECURITY["message"],
        "deciding_rule": "api_deny_team_moves",
        "layer": "partner",
    }
    # The active version replayed changes nothing; a client admin may replay on its host; readers may not.
    active = versions(world.client_a)[0][0]
    same = post(client_host("client_a_admin"), on_host("replay"), {"version": active})
    assert same.status_code == 200 and same.json()["changes"] == []
    assert post(client_host("client_a_operator"), on_host("replay"), {}).status_code == 403
    assert post(engineer, on_platform(world.client_a, "replay"), {"last": 0}).status_code == 400
    assert len(logged(world.client_a)) == 2  # replaying writes nothing


def test_shadow_report_counts_what_shadow_rules_would_change(world, deployed, client_host):
    shadow = {
        **DENY_SECURITY,
        "key": "api_shadow_deny_reads",
        "selector": {"tools": ["db.query"]},
        "condition": None,
        "mode": "shadow",
    }
    publish(world, [ALLOW_READS, shadow])
    key = new_key(world, deployed)
    for _ in range(2):
        assert evaluate(world, key, {"action": READ}).json()["effect"] == "allow"
    report = client_host("client_a_viewer").get(on_host("shadow-report"), {"last": 10})
    assert report.status_code == 200
    body = report.json()
    assert body["decisions"] == 2 and body["with_shadow"] == 2 and body["changed"] == 2
    assert body["rules"] == [{"key": "api_shadow_deny_reads", "matched": 2, "changed": 2, "errors": 0}]
    assert client_host("client_a_viewer").get(on_host("shadow-report"), {"last": "many"}).status_code == 400


# --- The decision log ---------------------------------------------------------------------------


def test_decision_log_is_paginated_and_filtered_on_both_hosts(
    world, deployed, key, platform, client_host, monkeypatch
):
    for trace in ["a", "b", "c"]:
        evaluate(world, key, {"action": READ, "trace_id": trace})
    denied = evaluate(world, key, {"action": SECURITY, "trace_id": "d"}).json()
    other = make_deployment(world, name="Second desk")
    evaluate(world, new_key(world, other), {"action": CLOSE})

    listed = client_host("client_a_viewer").get(on_host("decisions"))
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 5 and page["next"] is None and page["previous"] is None
    assert [r["trace_id"] for r in page["results"]] == ["", "d", "c", "b", "a"]  # newest first
    row = page["results"][1]
    assert row["id"] == denied["decision_id"] and row["effect"] == "deny" and row["layer"] == "partner"
    assert row["deployment"] == deployed.pk and row["deployment_name"] == "Helpdesk"
    assert row["ruleset_version"] == 1 and row["action"]["tool"] == "db.update"
    assert "context" not in row

    # The vendor sees only counts, never a client's decisions.
    assert platform("vendor_admin").get(on_platform(world.client_a, "decisions")).status_code == 403
    partner = platform("partner_a_engineer")
    url = on_platform(world.client_a, "decisions")
    assert [r["trace_id"] for r in partner.get(url, {"effect": "deny"}).json()["results"]] == ["d"]
    assert partner.get(url, {"effect": "require_approval"}).json()["count"] == 1
    assert partner.get(url, {"deployment": other.pk}).json()["count"] == 1
    assert partner.get(url, {"trace_id": "b"}).json()["count"] == 1
    assert partner.get(url, {"layer": "client"}).json()["count"] == 1
    assert partner.get(url, {"effect": "deny", "deployment": deployed.pk}).json()["count"] == 1
    for junk in [{"effect": "maybe"}, {"deployment": "x"}, {"layer": "boss"}]:
        assert partner.get(url, junk).status_code == 400, junk
    # Pages of 50 (REST_FRAMEWORK's PAGE_SIZE, read by DRF at import): made small to see several.
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    first = partner.get(url).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and "page=2" in first["next"]
    last = partner.get(url, {"page": 3}).json()
    assert [r["trace_id"] for r in last["results"]] == ["a"] and last["next"] is None
    assert partner.get(url, {"page": 9}).status_code == 404

    detail = platform("partner_a_engineer").get(
        on_platform(world.client_a, f"decisions/{denied['decision_id']}")
    )
    assert detail.status_code == 200
    entry = detail.json()
    assert (
        entry["deciding_rule"] == "api_deny_security"
        and entry["context"]["agent"]["deployment"] == deployed.pk
    )
    assert entry["matched"] and entry["ruleset_key"] == denied["ruleset_key"]
    assert (
        client_host("client_a_operator").get(on_host(f"decisions/{denied['decision_id']}")).status_code == 200
    )
    assert client_host("client_a_operator").get(on_host("decisions/999999")).status_code == 404
    # Another partner, another tenant: nothing to see.
    assert platform("partner_b_admin").get(url).status_code == 404
    assert client_host("client_b_admin").get(on_host("decisions")).status_code == 403
    assert client_host("client_b_admin", world.client_b).get(on_host("decisions")).json()["count"] == 0


# --- Evaluation keys ----------------------------------------------------------------------------


def keys_url(client: Client, deployment: Deployment, *rest) -> str:
    return "/".join(
        [f"/api/v1/clients/{client.pk}/deployments/{deployment.pk}/evaluation-keys", *map(str, rest)]
    )


def stored_keys(client: Client) -> list[tuple]:
    with tenant_context(client):
        return list(EvaluationKey.objects.order_by("pk").values_list("pk", "name", "revoked_at"))


def test_partner_team_makes_lists_and_revokes_keys(world, deployed, platform):
    publish(world, [ALLOW_READS])
    engineer = platform("partner_a_engineer")
    made = post(engineer, keys_url(world.client_a, deployed), {"name": "Acme worker"})
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (
        body["key"].startswith(f"tpk_{body['prefix']}_") and body["is_active"] and body["revoked_at"] is None
    )
    assert body["deployment"] == deployed.pk and body["created_by"] == "partner.a.engineer@example.com"
    assert evaluate(world, body["key"], {"action": READ}).json()["effect"] == "allow"

    listed = platform("partner_a_admin").get(keys_url(world.client_a, deployed)).json()
    assert [k["prefix"] for k in listed] == [body["prefix"]] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    revoked = post(engineer, keys_url(world.client_a, deployed, body["id"], "revoke"), {})
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False
    assert evaluate(world, body["key"], {"action": READ}).status_code == 401
    assert post(engineer, keys_url(world.client_a, deployed), {"name": " "}).status_code == 400
    assert engineer.get(keys_url(world.client_a, deployed, 999, "revoke")).status_code == 405
    assert post(engineer, keys_url(world.client_a, deployed, 999, "revoke"), {}).status_code == 404
    assert len(stored_keys(world.client_a)) == 1


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("vendor_admin", 403),
        ("support", 403),
        ("partner_b_admin", 404),
        ("client_a_admin", 403),
        ("anonymous", 403),
    ],
)
def test_keys_are_for_the_partner_team_only(world, deployed, platform, persona, expected):
    made, _ = services.evaluation_key_create(
        client=world.client_a, deployment=deployed, name="Worker", actor=None
    )
    before = stored_keys(world.client_a)
    browser = platform(persona)
    assert browser.get(keys_url(world.client_a, deployed)).status_code == expected
    assert post(browser, keys_url(world.client_a, deployed), {"name": "Evil"}).status_code == expected
    assert post(browser, keys_url(world.client_a, deployed, made.pk, "revoke"), {}).status_code == expected
    assert stored_keys(world.client_a) == before


def test_keys_of_a_client_the_engineer_is_not_assigned_to_are_404(world, platform):
    deployment = make_deployment(world, Deployment.Status.DRAFT, client=world.client_a2)
    url = keys_url(world.client_a2, deployment)
    assert platform("partner_a_engineer").get(url).status_code == 404
    assert post(platform("partner_a_engineer"), url, {"name": "x"}).status_code == 404
    assert post(platform("partner_a_admin"), url, {"name": "x"}).status_code == 201


# --- Refused rule edits change nothing (PUT and DELETE are outside the permission matrix) ----------


PLATFORM_WRITERS = {"partner_a_admin", "partner_a_engineer"}
HOST_WRITERS = {"client_a_admin"}


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p not in PLATFORM_WRITERS])
def test_refused_rule_changes_on_the_platform_host_change_nothing(world, persona, platform):
    services.ruleset_save_draft(client=world.client_a, rules=[ALLOW_READS], actor=None)
    before = versions(world.client_a)
    browser = platform(persona)
    url = on_platform(world.client_a, "rules/api_allow_reads")
    expected = {"partner_b_admin": 404}.get(persona, 403)
    assert put(browser, url, {**ALLOW_READS, "name": "Evil"}).status_code == expected
    assert browser.delete(url).status_code == expected
    assert post(browser, on_platform(world.client_a, "publish"), {}).status_code == expected
    assert versions(world.client_a) == before


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p not in HOST_WRITERS])
def test_refused_rule_changes_on_the_client_host_change_nothing(world, persona, client_host):
    services.ruleset_save_draft(
        client=world.client_a, rules=[ALLOW_READS, {**HOLD_CLOSING, "layer": "client"}], actor=None
    )
    before = versions(world.client_a)
    browser = client_host(persona)
    url = on_host("rules/api_hold_closing")
    assert put(browser, url, {**HOLD_CLOSING, "name": "Evil"}).status_code == 403
    assert browser.delete(url).status_code == 403
    assert versions(world.client_a) == before


def test_a_client_workspace_that_is_not_ready_is_404(world, platform):
    Client.objects.filter(pk=world.client_a.pk).update(status=Client.Status.PROVISIONING)
    assert platform("partner_a_admin").get(on_platform(world.client_a, "ruleset")).status_code == 404


def test_each_host_documents_its_governance_endpoints(world):
    platform_paths = set(http_client().get("/api/schema/", {"format": "json"}).json()["paths"])
    client_schema = http_client(host=host_of(world.client_a)).get("/api/schema/", {"format": "json"}).json()
    client_paths = set(client_schema["paths"])
    shared = {
        "ruleset",
        "versions",
        "versions/{number}",
        "rules",
        "rules/{key}",
        "publish",
        "test-cases",
        "test-cases/{id}",
        "replay",
        "shadow-report",
        "decisions",
        "decisions/{id}",
    }
    assert {f"/api/v1/clients/{{client_id}}/governance/{p}" for p in shared} <= platform_paths
    assert {
        "/api/v1/clients/{client_id}/governance/rollback",
        "/api/v1/clients/{client_id}/deployments/{deployment_id}/evaluation-keys",
        "/api/v1/clients/{client_id}/deployments/{deployment_id}/evaluation-keys/{id}/revoke",
    } <= platform_paths
    assert {f"/api/v1/governance/{p}" for p in shared | {"evaluate"}} <= client_paths
    assert "/api/v1/governance/evaluate" not in platform_paths
    evaluate_op = client_schema["paths"]["/api/v1/governance/evaluate"]["post"]
    assert evaluate_op["security"] == [{"evaluationKey": []}]
    assert client_schema["components"]["securitySchemes"]["evaluationKey"]["scheme"] == "bearer"
