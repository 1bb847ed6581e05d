"""Permission matrix: the governance API on both hosts, and evaluation keys.

Platform host (`clients/<client_id>/governance/…`): the vendor reads, partner A's admin and its
assigned engineer read and write, partner B gets 404 (so does the engineer on client A2, which is
not assigned to it). Client A's host (`governance/…`): its members read, its admin writes; client
B's admin (the foreign tenant) gets 403. `governance/evaluate` takes an evaluation key only: every
signed-in persona is refused (403) and anonymous gets 401 (it is asked for the key).

Each kwargs helper makes, inside the test's transaction, what a refused POST could change.
"""

from apps.deployments.models import Deployment
from apps.governance import engine, services
from apps.governance.models import RulesetVersion
from tests.matrix.base import (
    CLIENT_A,
    FORBIDDEN,
    NOT_FOUND,
    PARTNER_A,
    VENDOR,
    Case,
    a_deployment,
    only,
)

ALLOW_READS = {
    "key": "matrix_allow_reads",
    "name": "Ticket reads are fine",
    "effect": "allow",
    "message": "Reading tickets is allowed.",
    "selector": {"tools": ["db.query"], "entities": ["ticket"]},
}
HOLD_UPDATES = {
    "key": "matrix_hold_updates",
    "name": "Ticket updates need an operator",
    "effect": "require_approval",
    "approver_role": "operator",
    "message": "An operator approves ticket updates.",
    "selector": {"tools": ["db.update"]},
    "layer": "client",
}
ACTION = {"tool": "db.query", "operation": "read", "entity": "ticket", "params": {}, "target_ids": []}

# Platform host: the vendor and partner A read; partner A writes; partner B (and anyone outside) 404.
readers = only(VENDOR | PARTNER_A, partner_b_admin=NOT_FOUND, anonymous=FORBIDDEN)
writers = only(PARTNER_A, partner_b_admin=NOT_FOUND, anonymous=FORBIDDEN)
decision_readers = writers  # the vendor sees only counts of a client's decisions
# Client A's host: every member reads, its admin writes.
host_readers = only(CLIENT_A, anonymous=FORBIDDEN)
host_writers = only({"client_a_admin"}, anonymous=FORBIDDEN)
# Nobody signed in may evaluate; anonymous is asked for a key.
key_only = only(set(), anonymous=401)


def _engineer(w):
    return w.users["partner_a_engineer"]


def a_draft(w) -> RulesetVersion:
    """A draft holding a partner allow rule and a client hold rule (publishable: no test cases)."""
    return services.ruleset_save_draft(
        client=w.client_a, rules=[ALLOW_READS, HOLD_UPDATES], actor=_engineer(w)
    )


def a_published(w) -> RulesetVersion:
    return services.ruleset_publish(client=w.client_a, version=a_draft(w), actor=_engineer(w))


def two_published(w) -> RulesetVersion:
    """Versions 1 and 2 published (2 active): rolling back to 1 would publish version 3."""
    first = a_published(w)
    draft = services.ruleset_save_draft(client=w.client_a, rules=[ALLOW_READS], actor=_engineer(w))
    services.ruleset_publish(client=w.client_a, version=draft, actor=_engineer(w))
    return first


def a_test_case(w):
    return services.rule_test_case_save(
        client=w.client_a,
        name="reads are allowed",
        action=ACTION,
        expected_effect="allow",
        actor=_engineer(w),
    )


def a_decision(w):
    decision = engine.evaluate(engine.compile_ruleset([ALLOW_READS]), ACTION, {})
    return services.decision_record(client=w.client_a, decision=decision, action=ACTION)


def a_key(w) -> dict:
    deployment = a_deployment(w, Deployment.Status.DEPLOYED)
    key, _ = services.evaluation_key_create(
        client=w.client_a, deployment=deployment, name="Matrix plane", actor=_engineer(w)
    )
    return {"client_id": w.client_a.pk, "deployment_id": deployment.pk, "pk": key.pk}


def platform(make=None, **extra):
    """kwargs for a platform-host governance URL of client A, with those `make(w)` returns (if any)."""

    def kwargs(w):
        made = make(w) if make else None
        return {"client_id": w.client_a.pk, **extra, **(made or {})}

    return kwargs


def on_host(make=None, **extra):
    def kwargs(w):
        made = make(w) if make else None
        return {**extra, **(made or {})}

    return kwargs


def _number(w):
    return {"number": a_published(w).number}


def _rule_key(w):
    a_draft(w)
    return {"key": ALLOW_READS["key"]}


def _case_pk(w):
    return {"pk": a_test_case(w).pk}


def _decision_pk(w):
    return {"pk": a_decision(w).pk}


def _with_draft(w):
    a_draft(w)


def _with_versions(w):
    two_published(w)


def _with_case(w):
    a_test_case(w)


def _with_decision(w):
    a_decision(w)


def _a_deployment(w):
    return {"deployment_id": a_deployment(w, Deployment.Status.DEPLOYED).pk}


NEW_RULE = {
    "key": "matrix_deny_person_updates",
    "name": "No updates to people",
    "effect": "deny",
    "message": "People are updated in the HR system.",
}
NEW_CASE = {"name": "evil", "action": '{"tool": "db.query"}', "expected_effect": "deny"}

CASES = [
    # --- Platform host
    Case("public:api:client_governance_ruleset", platform(), get=readers),
    Case(  # client A2: partner A's admin only (its engineer is not assigned there)
        "public:api:client_governance_ruleset",
        lambda w: {"client_id": w.client_a2.pk},
        get=only(
            VENDOR | {"partner_a_admin"},
            partner_a_engineer=NOT_FOUND,
            partner_b_admin=NOT_FOUND,
            anonymous=FORBIDDEN,
        ),
    ),
    Case("public:api:client_governance_version_list", platform(_with_versions), get=readers),
    Case("public:api:client_governance_version_detail", platform(_number), get=readers),
    Case(
        "public:api:client_governance_rule_list",
        platform(_with_draft),
        get=readers,
        post=writers,
        data=NEW_RULE,
    ),
    Case("public:api:client_governance_rule_detail", platform(_rule_key), get=readers),
    Case("public:api:client_governance_publish", platform(_with_draft), post=writers),
    Case(
        "public:api:client_governance_rollback",
        platform(_with_versions),
        post=writers,
        data={"to_version": 1},
    ),
    Case(
        "public:api:client_governance_test_case_list",
        platform(_with_case),
        get=readers,
        post=writers,
        data=NEW_CASE,
    ),
    Case("public:api:client_governance_test_case_detail", platform(_case_pk), get=readers),
    Case("public:api:client_governance_replay", platform(_with_draft), post=writers, data={"last": 10}),
    Case("public:api:client_governance_shadow_report", platform(), get=readers),
    # Decisions' contents: the partner team; the vendor sees only counts.
    Case("public:api:client_governance_decision_list", platform(_with_decision), get=decision_readers),
    Case("public:api:client_governance_decision_detail", platform(_decision_pk), get=decision_readers),
    # Evaluation keys: the client's partner team only (the vendor too is refused).
    Case(
        "public:api:client_deployment_evaluation_keys",
        platform(_a_deployment),
        get=writers,
        post=writers,
        data={"name": "Evil plane"},
    ),
    Case("public:api:client_deployment_evaluation_key_revoke", a_key, post=writers),
    # --- Client A's host
    Case("tenant:api:governance_evaluate", on_host(), host="client_a", post=key_only, data={"action": "x"}),
    Case("tenant:api:governance_ruleset", on_host(), host="client_a", get=host_readers),
    Case("tenant:api:governance_version_list", on_host(_with_versions), host="client_a", get=host_readers),
    Case("tenant:api:governance_version_detail", on_host(_number), host="client_a", get=host_readers),
    Case(
        "tenant:api:governance_rule_list",
        on_host(_with_draft),
        host="client_a",
        get=host_readers,
        post=host_writers,
        data=NEW_RULE,
    ),
    Case("tenant:api:governance_rule_detail", on_host(_rule_key), host="client_a", get=host_readers),
    Case("tenant:api:governance_publish", on_host(_with_draft), host="client_a", post=host_writers),
    Case(
        "tenant:api:governance_test_case_list",
        on_host(_with_case),
        host="client_a",
        get=host_readers,
        post=host_writers,
        data=NEW_CASE,
    ),
    Case("tenant:api:governance_test_case_detail", on_host(_case_pk), host="client_a", get=host_readers),
    Case(
        "tenant:api:governance_replay",
        on_host(_with_draft),
        host="client_a",
        post=host_writers,
        data={"last": 10},
    ),
    Case("tenant:api:governance_shadow_report", on_host(), host="client_a", get=host_readers),
    Case(
        "tenant:api:governance_decision_list",
        on_host(_with_decision),
        host="client_a",
        get=host_readers,
    ),
    Case("tenant:api:governance_decision_detail", on_host(_decision_pk), host="client_a", get=host_readers),
]
