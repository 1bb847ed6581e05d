"""Client dashboard governance: the rules that govern the client, its stricter rules, publishing, decisions.

Client admins add, edit and delete client-layer rules and publish the draft; operators and viewers
read. Partner and vendor rules are never the client's to change: the UI offers no button for them
and crafted POSTs are refused by the services, with nothing changed.
"""

import re

import pytest
from django_tenants.utils import tenant_context

from apps.deployments.models import Deployment
from apps.governance import services
from apps.governance.engine import compile_ruleset, evaluate
from apps.governance.models import RulesetVersion
from tests.matrix.base import a_deployment

CLIENT_ROLES = ["client_a_admin", "client_a_operator", "client_a_viewer"]
READERS = ["client_a_operator", "client_a_viewer"]

PARTNER_RULE = {
    "key": "hold_big_refunds",
    "name": "Big refunds need a client admin",
    "effect": "require_approval",
    "approver_role": "client_admin",
    "message": "Refunds over 1000 need a client admin.",
    "selector": {"tools": ["db.update"]},
    "condition": "action.params.amount > 1000",
    "layer": "partner",
}
CLIENT_RULE = {
    "key": "deny_weekend_updates",
    "name": "No updates at the weekend",
    "effect": "deny",
    "message": "Agents do not update records at the weekend.",
    "selector": {"operations": ["update"]},
    "condition": "time.weekday > 5",
    "layer": "client",
}
SHADOW_RULE = {
    "key": "redact_phone_numbers",
    "name": "Phone numbers are hidden",
    "effect": "redact",
    "redact_fields": ["phone"],
    "message": "Phone numbers are hidden.",
    "mode": "shadow",
    "layer": "client",
}


def form_data(**overrides) -> dict:
    """A valid POST of the rule form: a client rule that denies big updates."""
    data = {
        "key": "deny_big_updates",
        "name": "No big updates",
        "operations": ["update"],
        "condition": "action.params.amount > 500",
        "effect": "deny",
        "approver_role": "",
        "approval_ttl_minutes": "1440",
        "redact_fields": "",
        "message": "Updates over 500 are not for agents.",
        "severity": "high",
        "mode": "enforce",
        "source_ref": "Finance SOP 4.2",
    }
    data.update(overrides)
    return data


def publish_rules(world, rules: list[dict]) -> RulesetVersion:
    actor = world.users["partner_a_admin"]
    draft = services.ruleset_save_draft(client=world.client_a, rules=rules, actor=actor)
    return services.ruleset_publish(client=world.client_a, version=draft, actor=actor)


def versions(world) -> list[tuple]:
    with tenant_context(world.client_a):
        return list(RulesetVersion.objects.order_by("pk").values_list("pk", "number", "status", "rules"))


def draft_rules(world) -> list[dict] | None:
    with tenant_context(world.client_a):
        version = RulesetVersion.objects.filter(status="draft").first()
    return version.rules if version else None


def text(response) -> str:
    return response.content.decode()


# --- The rules page -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_rules_page_has_an_empty_state_before_anything_is_published(world, client_host, persona):
    response = client_host(persona).get("/rules/")
    assert response.status_code == 200
    page = text(response)
    assert "No rules yet" in page and "nothing published yet" in page
    assert ('href="/rules/new/"' in page) is (persona == "client_a_admin")
    # The navigation links to the rules and the decisions for every role.
    assert 'href="/rules/"' in page and 'href="/decisions/"' in page


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_rules_page_shows_every_layer_with_source_and_badges(world, client_host, persona):
    a_deployment(world, Deployment.Status.DEPLOYED)  # ITSM: its policy pack's rules are the vendor layer
    publish_rules(world, [PARTNER_RULE, CLIENT_RULE, SHADOW_RULE])
    page = text(client_host(persona).get("/rules/"))
    # Vendor rules: locked, with the policy pack they come from.
    vendor_row = re.search(r'<tr data-testid="rule-deny_deletes" data-section="active".*?</tr>', page, re.S)
    assert vendor_row and "Vendor · locked" in vendor_row.group(0)
    assert "itsm-baseline 1.0.0" in vendor_row.group(0)
    partner_row = re.search(r'<tr data-testid="rule-hold_big_refunds".*?</tr>', page, re.S).group(0)
    assert 'data-layer="partner"' in partner_row and ">Partner<" in partner_row
    assert (
        "action.params.amount &gt; 1000" in partner_row and "Require approval · client admin" in partner_row
    )
    assert "Tools: <code>db.update</code>" in partner_row
    client_row = re.search(r'<tr data-testid="rule-deny_weekend_updates".*?</tr>', page, re.S).group(0)
    assert ">Client<" in client_row and "Operations: update" in client_row and "Written by hand" in client_row
    shadow_row = re.search(r'<tr data-testid="rule-redact_phone_numbers".*?</tr>', page, re.S).group(0)
    assert 'data-testid="shadow-badge"' in shadow_row and "Redact: phone" in shadow_row
    assert 'data-testid="shadow-badge"' not in client_row
    assert "version 1, published" in page
    # Only a client admin gets edit buttons, and only on client rules.
    is_admin = persona == "client_a_admin"
    assert ("/rules/deny_weekend_updates/edit/" in page) is is_admin
    assert ("/rules/deny_weekend_updates/delete/" in page) is is_admin
    assert "/rules/hold_big_refunds/edit/" not in page and "/rules/deny_deletes/edit/" not in page
    assert "/rules/hold_big_refunds/delete/" not in page and "/rules/deny_deletes/delete/" not in page
    assert ('href="/rules/new/"' in page) is is_admin


@pytest.mark.parametrize("persona", READERS)
def test_operators_and_viewers_cannot_write(world, client_host, persona):
    publish_rules(world, [PARTNER_RULE, CLIENT_RULE])
    before = versions(world)
    browser = client_host(persona)
    for url in [
        "/rules/new/",
        "/rules/deny_weekend_updates/edit/",
        "/rules/deny_weekend_updates/delete/",
        "/rules/publish/",
    ]:
        assert browser.get(url).status_code == 403, url
        assert browser.post(url, form_data()).status_code == 403, url
    assert versions(world) == before


def test_other_clients_and_partner_staff_get_no_rules(world, client_host):
    publish_rules(world, [CLIENT_RULE])
    for persona in ["client_b_admin", "partner_a_admin", "vendor_admin"]:
        assert client_host(persona).get("/rules/").status_code == 403, persona
        assert client_host(persona).get("/decisions/").status_code == 403, persona
    # Client B's admin on its own host sees its own (empty) rules, none of client A's.
    page = text(client_host("client_b_admin", client=world.client_b).get("/rules/"))
    assert "No rules yet" in page and "deny_weekend_updates" not in page


# --- Adding, editing and deleting client rules ----------------------------------------------------


def test_admin_adds_a_rule_after_fixing_a_condition_syntax_error(world, client_host):
    browser = client_host("client_a_admin")
    page = text(browser.get("/rules/new/"))
    assert 'data-testid="context-doc"' in page and "tenant.allowed_hosts" in page
    response = browser.post("/rules/new/", form_data(condition="action.params.amount >"))
    assert response.status_code == 200
    page = text(response)
    assert 'data-testid="condition-errors"' in page
    assert "Line 1, column 23" in page and "Syntax error" in page
    assert versions(world) == []  # nothing saved, not even a draft

    response = browser.post("/rules/new/", form_data())
    assert response.status_code == 302 and response["Location"] == "/rules/"
    rules = draft_rules(world)
    assert rules is not None and len(rules) == 1
    rule = rules[0]
    assert rule["layer"] == "client" and rule["effect"] == "deny" and rule["source_ref"] == "Finance SOP 4.2"
    assert rule["selector"]["operations"] == ["update"] and rule["condition"] == "action.params.amount > 500"
    # The rules page shows the draft with its change; the rule is not active yet.
    page = text(browser.get("/rules/"))
    assert 'data-testid="draft"' in page and "<code>deny_big_updates</code> added" in page
    assert '<tr data-testid="rule-deny_big_updates" data-section="draft"' in page
    assert '<tr data-testid="rule-deny_big_updates" data-section="active"' not in page


def test_a_condition_with_an_unknown_variable_is_refused(world, client_host):
    response = client_host("client_a_admin").post("/rules/new/", form_data(condition="order.amount > 5"))
    assert response.status_code == 200 and "unknown variable order" in text(response)
    assert versions(world) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"effect": "require_approval"}, "Choose who approves the held action."),
        ({"effect": "redact"}, "Name the fields to redact."),
        ({"key": "Bad Key"}, "Use lowercase letters"),
        ({"operations": ["explode"]}, "Select a valid choice"),
    ],
)
def test_rule_form_checks_its_fields(world, client_host, overrides, message):
    response = client_host("client_a_admin").post("/rules/new/", form_data(**overrides))
    assert response.status_code == 200 and message in text(response)
    assert versions(world) == []


def test_require_approval_and_redact_rules_keep_their_details(world, client_host):
    browser = client_host("client_a_admin")
    browser.post(
        "/rules/new/",
        form_data(key="hold_updates", effect="require_approval", approver_role="operator", redact_fields="x"),
    )
    browser.post(
        "/rules/new/", form_data(key="hide_mail", effect="redact", redact_fields="email, phone\nemail")
    )
    hold, hide = draft_rules(world)
    assert hold["approver_role"] == "operator" and hold["redact_fields"] == []
    assert hide["redact_fields"] == ["email", "phone"] and hide["approver_role"] is None


def test_a_client_admin_cannot_create_an_allow_rule(world, client_host):
    response = client_host("client_a_admin").post("/rules/new/", form_data(effect="allow"))
    assert response.status_code == 200
    assert "can only make decisions stricter" in text(response)
    assert versions(world) == []


def test_a_crafted_layer_field_is_ignored(world, client_host):
    client_host("client_a_admin").post("/rules/new/", form_data(layer="partner"))
    assert [r["layer"] for r in draft_rules(world)] == ["client"]


def test_admin_edits_and_deletes_own_rule(world, client_host):
    publish_rules(world, [PARTNER_RULE, CLIENT_RULE])
    browser = client_host("client_a_admin")
    page = text(browser.get("/rules/deny_weekend_updates/edit/"))
    assert 'value="deny_weekend_updates"' in page and "time.weekday &gt; 5" in page
    response = browser.post(
        "/rules/deny_weekend_updates/edit/",
        form_data(key="deny_weekend_updates", condition="time.weekday >= 6", mode="shadow"),
    )
    assert response.status_code == 302
    rule = next(r for r in draft_rules(world) if r["key"] == "deny_weekend_updates")
    assert rule["condition"] == "time.weekday >= 6" and rule["mode"] == "shadow" and rule["layer"] == "client"
    # The active version is unchanged until the draft is published.
    active = services.active_version(client=world.client_a)
    assert next(r for r in active.rules if r["key"] == "deny_weekend_updates")["mode"] == "enforce"

    page = text(browser.get("/rules/deny_weekend_updates/delete/"))
    assert "Delete rule “No big updates”?" in page  # the name the edit gave it
    response = browser.post("/rules/deny_weekend_updates/delete/")
    assert response.status_code == 302
    assert [r["key"] for r in draft_rules(world)] == ["hold_big_refunds"]


def test_partner_rules_cannot_be_changed_or_deleted_by_ui_or_crafted_post(world, client_host):
    publish_rules(world, [PARTNER_RULE, CLIENT_RULE])
    before = versions(world)
    browser = client_host("client_a_admin")
    # No form for it: back to the rules with the reason.
    response = browser.get("/rules/hold_big_refunds/edit/", follow=True)
    assert "hold_big_refunds is a partner rule; only its partner team can change it." in text(response)
    response = browser.get("/rules/hold_big_refunds/delete/", follow=True)
    assert "only its partner team can change it" in text(response)
    # Crafted POSTs: the service refuses, the page says why, nothing changes (not even a draft appears).
    response = browser.post("/rules/hold_big_refunds/edit/", form_data(key="hold_big_refunds"))
    assert response.status_code == 200
    assert "is a partner rule; only its partner team can change it." in text(response)
    response = browser.post("/rules/hold_big_refunds/delete/", follow=True)
    assert "is a partner rule; only its partner team can change it." in text(response)
    # A client rule under the partner rule's key is refused too (the key is taken).
    response = browser.post("/rules/new/", form_data(key="hold_big_refunds"))
    assert response.status_code == 200 and "is used twice" in text(response)
    assert versions(world) == before


def test_vendor_rules_cannot_be_replaced_edited_or_deleted(world, client_host):
    a_deployment(world, Deployment.Status.DEPLOYED)
    browser = client_host("client_a_admin")
    response = browser.post("/rules/new/", form_data(key="deny_deletes"))
    assert response.status_code == 200
    assert "&#x27;deny_deletes&#x27; is a locked vendor rule; it cannot be changed" in text(response)
    # Vendor rules are never stored: no edit page, and a delete is refused with the reason.
    assert browser.get("/rules/deny_deletes/edit/").status_code == 404
    assert browser.post("/rules/deny_deletes/edit/", form_data(key="deny_deletes")).status_code == 404
    response = browser.post("/rules/deny_deletes/delete/", follow=True)
    assert "There is no rule &#x27;deny_deletes&#x27; in the draft." in text(response)
    assert versions(world) == []


def test_pickers_list_the_deployed_agents_tools_and_entities(world, client_host):
    a_deployment(world, Deployment.Status.DEPLOYED)
    page = text(client_host("client_a_admin").get("/rules/new/"))
    assert 'name="tools" value="db.update"' in page and 'name="entities" value="ticket"' in page
    assert 'name="variants" value="itsm"' in page
    response = client_host("client_a_admin").post(
        "/rules/new/", form_data(tools=["db.update"], entities=["ticket"], variants=["itsm"])
    )
    assert response.status_code == 302
    assert draft_rules(world)[0]["selector"] == {
        "variants": ["itsm"],
        "tools": ["db.update"],
        "operations": ["update"],
        "entities": ["ticket"],
    }


# --- Publishing -----------------------------------------------------------------------------------


def reviewed(page: str) -> str:
    return re.search(r'name="reviewed" value="([0-9a-f]+)"', page).group(1)


def test_publish_shows_the_changes_and_publishes(world, client_host):
    publish_rules(world, [PARTNER_RULE, CLIENT_RULE])
    browser = client_host("client_a_admin")
    assert "Nothing to publish" in text(browser.get("/rules/publish/"))
    browser.post("/rules/new/", form_data())
    browser.post(
        "/rules/deny_weekend_updates/edit/",
        form_data(key="deny_weekend_updates", condition="time.weekday == 7"),
    )
    page = text(browser.get("/rules/publish/"))
    assert 'data-testid="publish-ok"' in page
    assert 'data-key="deny_big_updates" data-kind="added"' in page
    changed = re.findall(r'<tr class="table-warning" data-key="deny_weekend_updates".*?</tr>', page, re.S)
    assert any("<code>condition</code>" in row and "time.weekday == 7" in row for row in changed)
    response = browser.post("/rules/publish/", {"reviewed": reviewed(page)})
    assert response.status_code == 302 and response["Location"] == "/rules/"
    active = services.active_version(client=world.client_a)
    assert active.number == 2 and {r["key"] for r in active.rules} == {
        "hold_big_refunds",
        "deny_weekend_updates",
        "deny_big_updates",
    }
    page = text(browser.get("/rules/"))
    row = re.search(r'<tr data-testid="rule-deny_big_updates" data-section="active".*?</tr>', page, re.S)
    assert row and ">Client<" in row.group(0)
    assert 'data-testid="draft"' not in page


def test_publish_is_refused_when_the_draft_changed_after_review(world, client_host):
    browser = client_host("client_a_admin")
    browser.post("/rules/new/", form_data())
    digest = reviewed(text(browser.get("/rules/publish/")))
    # Meanwhile the partner's team adds a rule to the same draft.
    services.rule_save(
        client=world.client_a, rule=PARTNER_RULE, layer="partner", actor=world.users["partner_a_admin"]
    )
    response = browser.post("/rules/publish/", {"reviewed": digest})
    assert response.status_code == 200 and "The draft changed after you opened this page" in text(response)
    assert 'data-key="hold_big_refunds" data-kind="added"' in text(response)
    assert services.active_version(client=world.client_a) is None


def test_a_blocked_publish_lists_every_reason_and_publishes_nothing(world, client_host):
    actor = world.users["partner_a_admin"]
    for name in ("weekend updates pass", "sunday updates pass"):
        services.rule_test_case_save(
            client=world.client_a,
            name=name,
            action={"tool": "db.update", "operation": "update", "params": {"amount": 900}},
            context={},
            expected_effect="allow",
            actor=actor,
        )
    browser = client_host("client_a_admin")
    browser.post("/rules/new/", form_data())  # denies updates over 500: both tests now fail
    page = text(browser.get("/rules/publish/"))
    assert 'data-testid="publish-errors"' in page and "disabled" in page
    response = browser.post("/rules/publish/", {"reviewed": reviewed(page)})
    assert response.status_code == 200
    page = text(response)
    assert "Not published: 2 problems block" in page
    assert "Test case “weekend updates pass”" in page and "Test case “sunday updates pass”" in page
    assert "expected allow, got deny" in page
    assert services.active_version(client=world.client_a) is None
    assert draft_rules(world) is not None


# --- Decisions ------------------------------------------------------------------------------------

DECIDING_RULES = [
    {**CLIENT_RULE, "condition": None, "selector": {"tools": ["db.update"]}},
    {
        "key": "deny_broken",
        "name": "Broken condition",
        "effect": "deny",
        "message": "never",
        "selector": {"tools": ["db.delete"]},
        "condition": "action.params.missing.deep > 1",
        "layer": "partner",
    },
    {**SHADOW_RULE, "selector": {"tools": ["db.get"]}, "effect": "deny", "redact_fields": []},
    {"key": "allow_reads", "name": "Reads", "effect": "allow", "message": "ok", "layer": "partner"},
]


def log_decision(world, action: dict):
    decision = evaluate(compile_ruleset(DECIDING_RULES), action, {})
    return services.decision_record(client=world.client_a, decision=decision, action=action, trace_id="tr-1")


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_decision_log_lists_filters_and_shows_a_decision(world, client_host, persona):
    browser = client_host(persona)
    assert "No decisions yet" in text(browser.get("/decisions/"))
    denied = log_decision(world, {"tool": "db.update", "params": {"id": "1"}})
    errored = log_decision(world, {"tool": "db.delete", "params": {}})
    shadowed = log_decision(world, {"tool": "db.get", "params": {"id": "7"}})
    assert denied.effect == "deny" and errored.errors and shadowed.shadow_results["changed"]

    page = text(browser.get("/decisions/"))
    assert page.count('data-effect="deny"') == 2 and page.count('data-effect="allow"') == 1
    page = text(browser.get("/decisions/?effect=allow"))
    assert page.count("<tr data-effect=") == 1 and f"/decisions/{shadowed.pk}/" in page
    assert "No decisions match" in text(browser.get("/decisions/?effect=redact"))
    page = text(browser.get("/decisions/?layer=partner"))
    assert f"/decisions/{errored.pk}/" in page and f"/decisions/{denied.pk}/" not in page

    page = text(browser.get(f"/decisions/{denied.pk}/"))
    assert "<code>deny_weekend_updates</code>" in page and "Client layer" in page
    assert "Agents do not update records at the weekend." in page
    assert "tool: db.update" in page  # the action
    page = text(browser.get(f"/decisions/{errored.pk}/"))
    assert 'data-testid="decision-errors"' in page and "deny_broken" in page
    page = text(browser.get(f"/decisions/{shadowed.pk}/"))
    assert 'data-testid="shadow-results"' in page and "Would change the decision" in page
    assert "<code>allow_reads</code>" in page and "Partner layer" in page


def test_decision_log_is_paginated(world, client_host):
    for i in range(30):
        log_decision(world, {"tool": "db.update", "params": {"id": str(i)}})
    browser = client_host("client_a_viewer")
    page = text(browser.get("/decisions/"))
    assert page.count("<tr data-effect=") == 25 and "Showing <span>1</span>–<span>25</span>" in page
    page = text(browser.get("/decisions/?page=2&effect=deny"))
    assert page.count("<tr data-effect=") == 5 and "effect=deny" in page


def test_decisions_of_another_client_are_not_found(world, client_host):
    entry = log_decision(world, {"tool": "db.update", "params": {}})
    assert (
        client_host("client_b_admin", client=world.client_b).get(f"/decisions/{entry.pk}/").status_code == 404
    )
    assert client_host("client_a_viewer").get("/decisions/999999/").status_code == 404
