"""Permission matrix: the management portal's governance pages of client A (partner A's admin and
assigned engineer; partner B's admin gets 404, everyone else 403, anonymous the login page).

Each kwargs helper makes, inside the test's transaction, what a refused POST could change: a partner
rule to edit or delete, a draft to discard or publish, a test case to delete, an older version to
roll back to, a decision to show.
"""

from apps.governance import engine, services
from tests.matrix.base import NOT_FOUND, Case, client_a_in_portal, only

RULE = {
    "key": "matrix_rule",
    "name": "Matrix rule",
    "effect": "allow",
    "message": "ok",
    "selector": {"tools": ["db.update"]},
}
RULE_POST = {
    "key": "evil_rule",
    "name": "Evil",
    "effect": "allow",
    "message": "Everything goes.",
    "severity": "low",
    "mode": "enforce",
    "fail_mode": "open",
}
TEST_CASE_POST = {"name": "evil case", "tool": "db.update", "params": "{}", "expected_effect": "allow"}


def a_page(w) -> dict:
    return {"pk": w.client_a.pk}


def a_partner_rule(w) -> dict:
    """Client A with a draft holding the partner rule `matrix_rule` (to edit or delete)."""
    services.rule_save(client=w.client_a, rule=RULE, layer="partner", actor=w.users["partner_a_engineer"])
    return {"pk": w.client_a.pk, "key": RULE["key"]}


def a_draft(w) -> dict:
    """Client A with a draft that passes every check: discarding or publishing it would change data."""
    services.ruleset_save_draft(client=w.client_a, rules=[RULE], actor=w.users["partner_a_engineer"])
    return {"pk": w.client_a.pk}


def a_test_case(w) -> dict:
    case = services.rule_test_case_save(
        client=w.client_a,
        name="matrix case",
        action={"tool": "db.update"},
        expected_effect="allow",
        actor=w.users["partner_a_engineer"],
    )
    return {"pk": w.client_a.pk, "case_id": case.pk}


def _publish(w, rules: list[dict]):
    actor = w.users["partner_a_engineer"]
    draft = services.ruleset_save_draft(client=w.client_a, rules=rules, actor=actor)
    return services.ruleset_publish(client=w.client_a, version=draft, actor=actor)


def a_published_version(w) -> dict:
    version = _publish(w, [RULE])
    return {"pk": w.client_a.pk, "number": version.number}


def an_older_version(w) -> dict:
    """v1 and v2 published: rolling back to v1 would publish v3."""
    first = _publish(w, [RULE])
    _publish(w, [RULE, {**RULE, "key": "matrix_rule_two", "name": "Two"}])
    return {"pk": w.client_a.pk, "number": first.number}


def a_decision(w) -> dict:
    action = {"tool": "db.update", "params": {}}
    decision = engine.evaluate(engine.compile_ruleset([RULE]), action, {})
    entry = services.decision_record(client=w.client_a, decision=decision, action=action)
    return {"pk": w.client_a.pk, "decision_id": entry.pk}


ROUTE = "public:management:governance_"

CASES = [
    Case(f"{ROUTE}rules", a_page, get=client_a_in_portal),
    Case(  # client A2: partner A's, no engineer assigned
        f"{ROUTE}rules",
        lambda w: {"pk": w.client_a2.pk},
        get=only({"partner_a_admin"}, partner_a_engineer=NOT_FOUND, partner_b_admin=NOT_FOUND),
    ),
    Case(f"{ROUTE}rule_create", a_page, get=client_a_in_portal, post=client_a_in_portal, data=RULE_POST),
    Case(
        f"{ROUTE}condition_check",
        a_page,
        post=client_a_in_portal,
        data={"condition": "action.params.amount > 1"},
    ),
    Case(
        f"{ROUTE}rule_edit",
        a_partner_rule,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data={**RULE_POST, "key": "matrix_rule"},
    ),
    Case(f"{ROUTE}rule_delete", a_partner_rule, get=client_a_in_portal, post=client_a_in_portal),
    Case(f"{ROUTE}draft_discard", a_draft, get=client_a_in_portal, post=client_a_in_portal),
    Case(f"{ROUTE}tests", a_page, get=client_a_in_portal),
    Case(f"{ROUTE}test_create", a_page, get=client_a_in_portal, post=client_a_in_portal, data=TEST_CASE_POST),
    Case(f"{ROUTE}test_run", a_draft, post=client_a_in_portal),
    Case(f"{ROUTE}test_delete", a_test_case, get=client_a_in_portal, post=client_a_in_portal),
    Case(f"{ROUTE}publish", a_draft, get=client_a_in_portal, post=client_a_in_portal),
    Case(f"{ROUTE}versions", a_page, get=client_a_in_portal),
    Case(f"{ROUTE}version_detail", a_published_version, get=client_a_in_portal),
    Case(f"{ROUTE}rollback", an_older_version, get=client_a_in_portal, post=client_a_in_portal),
    Case(f"{ROUTE}shadow", a_page, get=client_a_in_portal),
    Case(f"{ROUTE}replay", a_page, get=client_a_in_portal),
    Case(f"{ROUTE}decisions", a_page, get=client_a_in_portal),
    Case(f"{ROUTE}decision_detail", a_decision, get=client_a_in_portal),
]
