"""Management portal, a client's governance: rules editor, live condition check, tests, publish, history,
rollback, replay, shadow report and the decision log — through the views, on client A's real schema."""

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVersion
from apps.governance import selectors, services
from apps.governance.models import RulesetVersion, RuleTestCase
from tests.matrix.base import a_deployment

ALLOW_UPDATES = {
    "key": "partner_allow_updates",
    "name": "Ticket updates are allowed",
    "effect": "allow",
    "message": "ok",
    "selector": {"tools": ["db.update"]},
}
DENY_BIG = {
    "key": "partner_deny_big",
    "name": "No big amounts",
    "effect": "deny",
    "message": "Too big.",
    "condition": "action.params.amount > 100",
}
BIG = {"tool": "db.update", "params": {"amount": 500}}
PUBLIC = "config.urls_public"


def url(name: str, world, *args) -> str:
    return reverse(f"management:governance_{name}", args=[world.client_a.pk, *args], urlconf=PUBLIC)


def page_of(response) -> str:
    return response.content.decode()


def rule_post(**overrides) -> dict:
    """A RuleForm POST for a partner rule (multi-selects as lists)."""
    data = {
        "key": "partner_deny_big",
        "name": "No big amounts",
        "tools": ["db.update"],
        "condition": "action.params.amount > 100",
        "effect": "deny",
        "approver_role": "",
        "approval_ttl_minutes": "1440",
        "redact_fields": "",
        "message": "Too big.",
        "severity": "high",
        "mode": "enforce",
        "fail_mode": "closed",
        "source_ref": "Payments SOP §4.2",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def draft_rules(world) -> list[dict]:
    draft = selectors.ruleset_draft_get(client=world.client_a)
    return draft.rules if draft else []


@pytest.fixture
def deployed(world) -> Deployment:
    """A deployed ITSM agent in client A: its tools feed the pickers, its pack gives vendor rules."""
    return a_deployment(world, Deployment.Status.DEPLOYED)


@pytest.fixture
def bare(world) -> Deployment:
    """A deployed agent whose version pins no policy pack: no vendor rules, so only our rules decide
    (zero trust: nothing is allowed until a rule allows it), whatever the built-in packs hold."""
    itsm = AgentVersion.objects.get(variant__key="itsm", version="1.0.0")
    version = AgentVersion.objects.create(
        variant=itsm.variant,
        version="1.9.0",
        major=1,
        minor=9,
        patch=0,
        status=AgentVersion.Status.PUBLISHED,
        spec=itsm.spec,
        changelog="No policy pack.",
        derived_from=itsm,
        policy_pack_version=None,
    )
    engineer, admin = world.users["partner_a_engineer"], world.users["client_a_admin"]
    deployment = deployment_services.deployment_create(
        client=world.client_a, variant=itsm.variant, version=version, name="Bare agent", actor=engineer
    )
    for step, actor in (("submit", engineer), ("approve", admin), ("deploy", engineer)):
        getattr(deployment_services, f"deployment_{step}")(
            client=world.client_a, deployment=deployment, actor=actor
        )
    return deployment


def vendor_key(world) -> str:
    """The key of a locked vendor rule of the client's deployments (from the built-in packs)."""
    return selectors.layered_rules(client=world.client_a, version=None)[0]["key"]


@pytest.fixture
def engineer(platform):
    return platform("partner_a_engineer")


# --- The editor -------------------------------------------------------------------------


def test_client_page_links_to_governance_and_empty_state(world, engineer):
    assert url("rules", world) in page_of(engineer.get(f"/partner/clients/{world.client_a.pk}/"))
    page = page_of(engineer.get(url("rules", world)))
    assert "No rules yet" in page and "Nothing published yet" in page
    for name in ("tests", "publish", "versions", "shadow", "replay", "decisions"):
        assert url(name, world) in page


def test_editor_shows_layers_draft_and_active(world, engineer, deployed):
    client, actor = world.client_a, world.users["partner_a_admin"]
    services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW_UPDATES], actor=actor),
        actor=actor,
    )
    services.rule_save(client=client, rule={**DENY_BIG, "mode": "shadow"}, layer="partner", actor=actor)
    services.rule_save(
        client=client,
        rule={**DENY_BIG, "key": "client_no_deletes", "name": "No deletes", "condition": None},
        layer="client",
        actor=world.users["client_a_admin"],
    )
    page = page_of(engineer.get(url("rules", world)))
    assert "Draft v2 — not published" in page and "Active v1" in page
    # Vendor rules of the deployment's pinned policy pack: shown, locked, with their pack.
    locked = vendor_key(world)
    assert f'data-testid="rule-{locked}" data-layer="vendor"' in page
    assert "locked · itsm-baseline" in page
    assert 'data-testid="rule-partner_deny_big" data-layer="partner"' in page
    assert 'data-testid="rule-client_no_deletes" data-layer="client"' in page
    assert "read-only" in page and ">shadow<" in page and "new in draft" in page
    # Edit / delete only for the partner's own rules.
    assert url("rule_edit", world, "partner_deny_big") in page
    assert url("rule_edit", world, "client_no_deletes") not in page
    assert url("rule_edit", world, locked) not in page


def test_add_rule_goes_to_a_new_draft(world, engineer, deployed):
    form_page = page_of(engineer.get(url("rule_create", world)))
    # Pickers come from the live deployments; the context variables are documented beside the form.
    assert '<option value="db.update">' in form_page and '<option value="ticket">' in form_page
    assert "action.params" in form_page and "business_hours" in form_page
    assert url("condition_check", world) in form_page

    response = engineer.post(url("rule_create", world), rule_post(entities=["ticket"]))
    assert response.status_code == 302 and response["Location"] == url("rules", world)
    (rule,) = draft_rules(world)
    assert rule["key"] == "partner_deny_big" and rule["layer"] == "partner" and rule["source"] == "manual"
    assert rule["selector"] == {
        "variants": [],
        "tools": ["db.update"],
        "operations": [],
        "entities": ["ticket"],
    }
    assert rule["source_ref"] == "Payments SOP §4.2" and rule["severity"] == "high"
    assert "approver_role" not in rule or rule["approver_role"] is None
    page = page_of(engineer.get(url("rules", world)))
    assert "added to draft v1" in page and "Draft v1 — not published" in page


def test_rule_errors_shown_per_field_and_nothing_lost(world, engineer, deployed):
    response = engineer.post(
        url("rule_create", world), rule_post(condition="action.params.amount >", name="Kept name")
    )
    page = page_of(response)
    assert response.status_code == 200
    assert 'id="id_condition_error"' in page and "Syntax error" in page
    assert 'value="Kept name"' in page and "action.params.amount &gt;</textarea>" in page
    assert 'data-state="error"' in page  # the live check shows the same verdict on the returned page
    assert draft_rules(world) == []

    page = page_of(engineer.post(url("rule_create", world), rule_post(condition="amount > 5")))
    assert 'id="id_condition_error"' in page and "unknown variable amount" in page

    page = page_of(engineer.post(url("rule_create", world), rule_post(effect="require_approval")))
    assert 'id="id_approver_role_error"' in page and "Choose who approves" in page

    page = page_of(engineer.post(url("rule_create", world), rule_post(effect="redact")))
    assert 'id="id_redact_fields_error"' in page

    page = page_of(engineer.post(url("rule_create", world), rule_post(key="Bad-Key")))
    assert 'id="id_key_error"' in page and "Lowercase letters" in page

    page = page_of(engineer.post(url("rule_create", world), rule_post(tools=["no.such.tool"])))
    assert 'id="id_tools_error"' in page
    assert draft_rules(world) == []


def test_service_errors_map_to_fields():
    from apps.portals.management.governance_forms import RuleForm

    form = RuleForm(rule_post(), pickers={"tools": ["db.update"]})
    assert form.is_valid(), form.errors
    form.add_ruleset_errors(
        [
            {"path": "condition", "message": "CEL syntax error"},
            {"path": "selector.tools[0]", "message": "bad tool"},
            {"path": "rule", "message": "require_approval needs an approver_role"},
            {"path": "approval_ttl_minutes", "message": "too long"},
            {"path": "rule", "message": "client rules fail closed"},
            {"path": "rules[3].key", "message": "used twice"},
        ]
    )
    assert form.errors["condition"] == ["CEL syntax error"]
    assert form.errors["tools"] == ["bad tool"]
    assert form.errors["approver_role"] == ["require_approval needs an approver_role"]
    assert form.errors["approval_ttl_minutes"] == ["too long"]
    assert form.non_field_errors() == ["client rules fail closed", "rules[3].key: used twice"]


def test_key_taken_by_own_or_vendor_rule(world, engineer, deployed):
    services.rule_save(client=world.client_a, rule=DENY_BIG, layer="partner", actor=None)
    page = page_of(engineer.post(url("rule_create", world), rule_post()))
    assert "already has a rule “partner_deny_big”" in page
    page = page_of(engineer.post(url("rule_create", world), rule_post(key=vendor_key(world))))
    assert "locked vendor rule" in page
    assert [r["key"] for r in draft_rules(world)] == ["partner_deny_big"]


def test_edit_rule_prefilled_and_saved(world, engineer):
    services.rule_save(
        client=world.client_a,
        rule={**DENY_BIG, "selector": {"tools": ["db.update"]}},
        layer="partner",
        actor=None,
    )
    page = page_of(engineer.get(url("rule_edit", world, "partner_deny_big")))
    assert 'value="partner_deny_big"' in page and "action.params.amount &gt; 100</textarea>" in page
    # A tool the rule names stays choosable (and chosen) although no deployment has it.
    assert '<option value="db.update" selected>' in page
    assert 'data-state="ok"' in page and "reads: <code>action.params.amount</code>" in page

    response = engineer.post(
        url("rule_edit", world, "partner_deny_big"),
        rule_post(key="partner_deny_huge", condition="action.params.amount > 1000", layer="vendor"),
    )
    assert response.status_code == 302
    (rule,) = draft_rules(world)
    assert rule["key"] == "partner_deny_huge" and rule["condition"] == "action.params.amount > 1000"
    assert rule["layer"] == "partner"  # a crafted layer field is ignored


def test_delete_rule_asks_first(world, engineer):
    services.rule_save(client=world.client_a, rule=DENY_BIG, layer="partner", actor=None)
    page = page_of(engineer.get(url("rule_delete", world, "partner_deny_big")))
    assert "Delete rule “partner_deny_big”?" in page and draft_rules(world) != []
    response = engineer.post(url("rule_delete", world, "partner_deny_big"))
    assert response.status_code == 302 and draft_rules(world) == []
    assert engineer.get(url("rule_edit", world, "partner_deny_big")).status_code == 404


def test_partner_cannot_change_vendor_or_client_rules_even_by_crafted_post(world, engineer, deployed):
    client = world.client_a
    services.rule_save(
        client=client,
        rule={**DENY_BIG, "key": "client_rule"},
        layer="client",
        actor=world.users["client_a_admin"],
    )
    before = draft_rules(world)
    for key in ("client_rule", vendor_key(world)):
        for response in (
            engineer.get(url("rule_edit", world, key)),
            engineer.post(url("rule_edit", world, key), rule_post(key=key, effect="allow")),
            engineer.post(url("rule_delete", world, key)),
        ):
            assert response.status_code == 302 and response["Location"] == url("rules", world)
    assert draft_rules(world) == before
    page = page_of(engineer.get(url("rules", world)))
    assert "is a client rule" in page and "locked vendor rule" in page


def test_discard_draft_asks_first(world, engineer):
    services.rule_save(client=world.client_a, rule=DENY_BIG, layer="partner", actor=None)
    page = page_of(engineer.get(url("draft_discard", world)))
    assert "Discard draft v1?" in page and 'data-rule="partner_deny_big"' in page
    assert engineer.post(url("draft_discard", world)).status_code == 302
    assert selectors.ruleset_draft_get(client=world.client_a) is None
    response = engineer.get(url("draft_discard", world))
    assert response.status_code == 302  # nothing left to discard


# --- The live condition check ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("action.params.amount > 100", ["✓ compiles", "reads: <code>action.params.amount</code>"]),
        (
            "action.params.amount > 100 && time.business_hours",
            ["<code>action.params.amount</code>, <code>time.business_hours</code>"],
        ),
        ("rate('payments', 3600) > 5", ["✓ compiles", "<code>rate()</code>"]),
        ("action.params.amount >", ["Line 1, column 23:", "Syntax error", 'data-state="error"']),
        ("action.params.amount > 1 &&\n (action", ["Line 2, column"]),
        ("amount > 5", ["unknown variable amount"]),
        ("   ", ["No condition", 'data-state="empty"']),
    ],
)
def test_condition_check_answers(world, engineer, condition, expected):
    response = engineer.post(url("condition_check", world), {"condition": condition}, HTTP_HX_REQUEST="true")
    page = page_of(response)
    assert response.status_code == 200 and 'id="condition-check"' in page
    assert "<html" not in page  # the fragment alone
    for text in expected:
        assert text in page


def test_condition_check_is_post_only(world, engineer):
    assert engineer.get(url("condition_check", world)).status_code == 405


# --- Test cases ------------------------------------------------------------------------------


def test_test_cases_add_run_and_delete(world, engineer, bare):
    assert "No test cases yet" in page_of(engineer.get(url("tests", world)))
    response = engineer.post(
        url("test_create", world),
        {
            "name": "big is denied",
            "tool": "db.update",
            "operation": "update",
            "entity": "ticket",
            "params": '{"amount": 500}',
            "context": '{"principal": {"role": "operator"}}',
            "expected_effect": "deny",
        },
    )
    assert response.status_code == 302
    response = engineer.post(
        url("test_create", world),
        {
            "name": "small is allowed",
            "deployment": str(bare.pk),
            "action_json": '{"tool": "db.update", "entity": "ticket", "params": {"amount": 5, "id": "T-1"}}',
            "expected_effect": "allow",
        },
    )
    assert response.status_code == 302
    with tenant_context(world.client_a):
        cases = {case.name: case for case in RuleTestCase.objects.all()}
    assert cases["big is denied"].action == {
        "tool": "db.update",
        "operation": "update",
        "entity": "ticket",
        "params": {"amount": 500},
        "target_ids": [],
    }
    assert cases["big is denied"].context == {"principal": {"role": "operator"}}
    assert cases["small is allowed"].deployment_id == bare.pk

    services.ruleset_save_draft(client=world.client_a, rules=[ALLOW_UPDATES], actor=None)
    response = engineer.post(url("test_run", world), HTTP_HX_REQUEST="true")
    page = page_of(response)
    assert 'id="test-results"' in page and "<html" not in page
    assert "1 of 2 pass" in page and "Results against draft v1" in page
    assert 'data-passed="false"' in page and 'data-passed="true"' in page

    case = cases["big is denied"]
    assert "Delete test case “big is denied”?" in page_of(engineer.get(url("test_delete", world, case.pk)))
    assert engineer.post(url("test_delete", world, case.pk)).status_code == 302
    assert [c.name for c in selectors.rule_test_cases(client=world.client_a)] == ["small is allowed"]


def test_test_case_context_states_only_what_matters(world, engineer, bare):
    """The case keeps the author's context; the rest is built when it runs (services.test_case_context)."""
    response = engineer.post(
        url("test_create", world),
        {
            "name": "operator update",
            "deployment": str(bare.pk),
            "tool": "db.update",
            "entity": "ticket",
            "params": '{"id": "T-1", "status": "closed"}',
            "context": '{"principal": {"kind": "user", "role": "operator"}, "rates": {"x": 2}}',
            "expected_effect": "deny",
        },
    )
    assert response.status_code == 302
    (case,) = selectors.rule_test_cases(client=world.client_a)
    assert case.context == {"principal": {"kind": "user", "role": "operator"}, "rates": {"x": 2}}
    with tenant_context(world.client_a):
        built = services.test_case_context(world.client_a, case)
    assert built["principal"] == {"kind": "user", "id": "", "role": "operator", "channel": ""}
    assert built["agent"]["deployment_name"] == "Bare agent" and built["tenant"]["slug"] == "tw-alpha"
    assert built["input"]["injection"] == 0 and built["trace"]["steps"] == 0
    assert "ticket.status" in built["data"]["fields"] and built["rates"] == {"x": 2}


def test_test_case_form_errors(world, engineer):
    services.rule_test_case_save(
        client=world.client_a, name="taken", action=BIG, expected_effect="deny", actor=None
    )
    page = page_of(
        engineer.post(
            url("test_create", world),
            {"name": "taken", "params": "{not json", "context": "[1]", "expected_effect": "deny"},
        )
    )
    assert "choose another name" in page
    assert 'id="id_params_error"' in page and "not valid JSON" in page
    assert 'id="id_context_error"' in page and "JSON object" in page
    page = page_of(
        engineer.post(
            url("test_create", world),
            {"name": "x", "action_json": '{"tool": "db.update", "nope": 1}', "expected_effect": "deny"},
        )
    )
    assert 'id="id_action_json_error"' in page and "Unknown action field: nope" in page
    page = page_of(engineer.post(url("test_create", world), {"name": "y", "expected_effect": "deny"}))
    assert 'id="id_tool_error"' in page
    assert len(selectors.rule_test_cases(client=world.client_a)) == 1


# --- Publishing, versions, rollback ----------------------------------------------------------------


def test_publish_blocked_by_failing_case_then_succeeds(world, engineer):
    client = world.client_a
    services.rule_test_case_save(
        client=client, name="big is denied", action=BIG, expected_effect="deny", actor=None
    )
    services.rule_save(client=client, rule=ALLOW_UPDATES, layer="partner", actor=None)

    page = page_of(engineer.get(url("publish", world)))
    assert 'data-testid="publish-blocked"' in page and "big is denied" in page
    assert 'data-effect="deny"' in page and 'data-effect="allow"' in page  # expected vs actual
    assert 'data-rule="partner_allow_updates"' in page  # the diff from (no) active version
    assert "disabled" in page

    response = engineer.post(url("publish", world))
    page = page_of(response)
    assert response.status_code == 200 and "was not published" in page and "big is denied" in page
    assert selectors.ruleset_active_get(client=client) is None

    services.rule_save(client=client, rule=DENY_BIG, layer="partner", actor=None)
    page = page_of(engineer.get(url("publish", world)))
    assert 'data-testid="publish-ready"' in page and "all 1 test case pass" in page
    response = engineer.post(url("publish", world))
    assert response.status_code == 302 and response["Location"] == url("rules", world)
    active = selectors.ruleset_active_get(client=client)
    assert active.number == 1 and active.published_by == world.users["partner_a_engineer"]
    page = page_of(engineer.get(url("rules", world)))
    assert "Version 1 is published and active" in page and "Active v1" in page and "Draft v" not in page


def test_publish_without_draft(world, engineer):
    assert "No draft to publish" in page_of(engineer.get(url("publish", world)))
    assert engineer.post(url("publish", world)).status_code == 302


def test_publish_lists_rule_errors_by_key(world, engineer, deployed):
    # A draft saved before the deployment existed can collide with a vendor rule of its pack.
    client = world.client_a
    with tenant_context(client):
        ruleset = services._ruleset()
        RulesetVersion.objects.create(
            ruleset=ruleset,
            number=1,
            rules=[{**ALLOW_UPDATES, "key": vendor_key(world)}],
        )
    page = page_of(engineer.get(url("publish", world)))
    assert 'data-testid="publish-errors"' in page and "locked vendor rule" in page
    assert f"<code>{vendor_key(world)} · key</code>" in page


def test_versions_history_detail_and_rollback(world, engineer):
    client, actor = world.client_a, world.users["partner_a_admin"]
    v1 = services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW_UPDATES], actor=actor),
        actor=actor,
    )
    services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW_UPDATES, DENY_BIG], actor=actor),
        actor=actor,
    )
    page = page_of(engineer.get(url("versions", world)))
    assert 'data-testid="version-2"' in page and ">active<" in page and "partner.a.admin@example.com" in page
    assert url("rollback", world, 1) in page and url("rollback", world, 2) not in page

    page = page_of(engineer.get(url("version_detail", world, 2)))
    assert (
        "Changes from v1" in page
        and 'data-rule="partner_deny_big"' in page
        and "rule-partner_deny_big" in page
    )

    page = page_of(engineer.get(url("rollback", world, 1)))
    assert "Roll back to v1?" in page and 'data-rule="partner_deny_big"' in page and ">removed<" in page
    assert engineer.get(url("rollback", world, 2)).status_code == 302  # the active one: nothing to do

    assert engineer.post(url("rollback", world, 1)).status_code == 302
    active = selectors.ruleset_active_get(client=client)
    assert active.number == 3 and active.rolled_back_from_id == v1.pk and active.rules == v1.rules
    page = page_of(engineer.get(url("versions", world)))
    assert "Rolled back: version 3" in page and ">rollback<" in page
    assert engineer.get(url("version_detail", world, 9)).status_code == 404


# --- Replay, shadow report, decision log --------------------------------------------------------------


def decide(world, deployment, action):
    return services.decision_make(
        client=world.client_a, deployment=deployment, action=action, rate_counter=lambda k, w: 0
    )[1]


def test_replay_lists_changed_decisions(world, engineer, bare):
    assert "Nothing to replay" in page_of(engineer.get(url("replay", world)))
    services.rule_save(client=world.client_a, rule=ALLOW_UPDATES, layer="partner", actor=None)
    assert "No decisions yet" in page_of(engineer.get(url("replay", world)))

    update = {"tool": "db.update", "operation": "update", "entity": "ticket", "params": {"id": "T-1"}}
    changed = decide(world, bare, update)  # nothing published: zero trust denies it
    same = decide(world, bare, {"tool": "db.query", "entity": "ticket"})
    assert changed.effect == "deny" and same.effect == "deny"

    page = page_of(engineer.get(url("replay", world)))
    assert 'value="200"' in page and "Replay v1" in page and 'data-testid="replay-result"' not in page
    page = page_of(engineer.get(url("replay", world), {"last": 200}))
    assert "1 of 2 decisions would change with v1" in page
    assert f'data-testid="change-{changed.pk}"' in page and f'data-testid="change-{same.pk}"' not in page
    assert "<code>partner_allow_updates</code>" in page and "Bare agent" in page

    page = page_of(engineer.get(url("replay", world), {"last": 999999}))
    assert 'id="id_last_error"' in page and 'data-testid="replay-result"' not in page


def test_shadow_report_counts(world, engineer, bare):
    page = page_of(engineer.get(url("shadow", world)))
    assert "No decisions yet" in page
    client = world.client_a
    services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(
            client=client, rules=[ALLOW_UPDATES, {**DENY_BIG, "mode": "shadow"}], actor=None
        ),
        actor=None,
    )
    update = {"tool": "db.update", "operation": "update", "entity": "ticket", "params": {"id": "T-1"}}
    decide(world, bare, {**update, "params": {"id": "T-1", "amount": 500}})
    decide(world, bare, {**update, "params": {"id": "T-2", "amount": 5}})
    decide(world, bare, {"tool": "db.query", "entity": "ticket"})
    page = page_of(engineer.get(url("shadow", world)))
    assert '<div class="h1 mb-0" data-testid="shadow-decisions">3</div>' in page
    assert '<div class="h1 mb-0" data-testid="shadow-changed">1</div>' in page
    assert 'data-testid="shadow-partner_deny_big"' in page
    page = page_of(engineer.get(url("shadow", world), {"last": 1}))
    assert '<div class="h1 mb-0" data-testid="shadow-decisions">1</div>' in page


def test_decision_log_filter_page_and_detail(world, engineer, bare):
    assert "No decisions yet" in page_of(engineer.get(url("decisions", world)))
    services.ruleset_publish(
        client=world.client_a,
        version=services.ruleset_save_draft(client=world.client_a, rules=[ALLOW_UPDATES], actor=None),
        actor=None,
    )
    update = {"tool": "db.update", "operation": "update", "entity": "ticket", "params": {"id": "T-1"}}
    allowed = decide(world, bare, update)
    denied = decide(world, bare, {"tool": "db.query", "entity": "ticket"})
    assert allowed.effect == "allow" and denied.effect == "deny"

    page = page_of(engineer.get(url("decisions", world)))
    assert f'data-testid="decision-{allowed.pk}"' in page and f'data-testid="decision-{denied.pk}"' in page
    page = page_of(engineer.get(url("decisions", world), {"effect": "deny"}))
    assert (
        f'data-testid="decision-{allowed.pk}"' not in page and f'data-testid="decision-{denied.pk}"' in page
    )
    assert "No decision with this effect" in page_of(
        engineer.get(url("decisions", world), {"effect": "redact"})
    )

    page = page_of(engineer.get(url("decision_detail", world, allowed.pk)))
    assert "partner_allow_updates" in page and "T-1" in page and "business_hours" in page
    assert engineer.get(url("decision_detail", world, 999999)).status_code == 404


def test_decision_log_is_paginated(world, engineer, bare):
    for n in range(27):
        decide(world, bare, {"tool": "db.query", "entity": "ticket", "params": {"n": n}})
    page = page_of(engineer.get(url("decisions", world)))
    assert "of <span>27</span>" in page and 'rel="next"' in page
    page = page_of(engineer.get(url("decisions", world), {"page": 2}))
    assert page.count('data-testid="decision-') == 2


# --- Scope ------------------------------------------------------------------------------------------


def test_other_partner_and_unassigned_engineer_get_404(world, platform):
    assert platform("partner_b_admin").get(url("rules", world)).status_code == 404
    assert platform("partner_b_admin").post(url("rule_create", world), rule_post()).status_code == 404
    assert draft_rules(world) == []
    a2 = reverse("management:governance_rules", args=[world.client_a2.pk], urlconf=PUBLIC)
    assert platform("partner_a_engineer").get(a2).status_code == 404
    assert platform("partner_a_admin").get(a2).status_code == 200
