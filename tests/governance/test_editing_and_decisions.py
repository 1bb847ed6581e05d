"""Editing the draft rule by rule (layers), deciding and logging, shadow report, replay, evaluation keys."""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.factory.models import PolicyPackVersion
from apps.governance import services
from apps.governance.models import DecisionLog, EvaluationKey, RulesetVersion
from apps.governance.rules import RulesetError
from tests.matrix.base import a_deployment

ALLOW_TICKETS = {
    "key": "allow_ticket_reads",
    "name": "Read tickets",
    "effect": "allow",
    "message": "Reading tickets is fine.",
    "selector": {"tools": ["db.get", "db.query"], "entities": ["ticket"]},
}
HOLD_BULK = {
    "key": "hold_bulk_reads",
    "name": "Bulk reads need an operator",
    "effect": "require_approval",
    "approver_role": "operator",
    "message": "Reading more than 20 tickets needs an operator.",
    "selector": {"tools": ["db.query"]},
    "condition": "action.params.limit > 20",
}
READ = {"tool": "db.query", "operation": "read", "entity": "ticket", "params": {"limit": 5}}
BULK = {**READ, "params": {"limit": 50}}


def no_rates(key, window):
    return 0


@pytest.fixture
def deployed(world):
    return a_deployment(world, Deployment.Status.DEPLOYED)


def publish(client, actor):
    draft = services.ruleset_draft(client=client, actor=actor)
    return services.ruleset_publish(client=client, version=draft, actor=actor)


def test_rules_are_edited_in_the_draft_by_their_own_layer(world):
    client, partner, admin = world.client_a, world.users["partner_a_engineer"], world.users["client_a_admin"]
    draft = services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    assert [r["key"] for r in draft.rules] == ["allow_ticket_reads"] and draft.rules[0]["layer"] == "partner"
    services.rule_save(client=client, rule=HOLD_BULK, layer="client", actor=admin)
    # The client cannot replace or delete a partner rule, nor add an allow rule.
    with pytest.raises(ApplicationError, match="partner rule"):
        services.rule_save(
            client=client,
            rule={**ALLOW_TICKETS, "name": "x"},
            layer="client",
            actor=admin,
            replace_key="allow_ticket_reads",
        )
    with pytest.raises(ApplicationError, match="partner rule"):
        services.rule_delete(client=client, key="allow_ticket_reads", layer="client", actor=admin)
    with pytest.raises(RulesetError, match="stricter"):
        services.rule_save(
            client=client, rule={**ALLOW_TICKETS, "key": "sneaky"}, layer="client", actor=admin
        )
    # Nor can the partner touch the client's rule.
    with pytest.raises(ApplicationError, match="client rule"):
        services.rule_delete(client=client, key="hold_bulk_reads", layer="partner", actor=partner)
    # Errors name the field of the edited rule.
    with pytest.raises(RulesetError) as exc:
        services.rule_save(
            client=client,
            rule={**ALLOW_TICKETS, "key": "bad", "condition": "action.params.x >"},
            layer="partner",
            actor=partner,
        )
    assert exc.value.errors[0]["path"] == "condition" and "syntax" in exc.value.errors[0]["message"]
    with pytest.raises(RulesetError, match="used twice"):
        services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    with tenant_context(client):
        draft = RulesetVersion.objects.get(status="draft")
    assert [(r["key"], r["layer"]) for r in draft.rules] == [
        ("allow_ticket_reads", "partner"),
        ("hold_bulk_reads", "client"),
    ]
    services.rule_delete(client=client, key="hold_bulk_reads", layer="client", actor=admin)
    services.ruleset_draft_discard(client=client, actor=partner)
    assert services.ruleset_draft(client=client, actor=partner).rules == []


def test_a_vendor_rule_key_is_locked(world, deployed):
    pack_rules = deployed.version.policy_pack_version.rules
    assert pack_rules, "the seeded ITSM pack has rules"
    with pytest.raises(RulesetError, match="vendor rule"):
        services.rule_save(
            client=world.client_a,
            rule={**ALLOW_TICKETS, "key": pack_rules[0]["key"]},
            layer="partner",
            actor=world.users["partner_a_admin"],
        )
    with pytest.raises(ApplicationError, match="policy pack"):
        services.rule_save(client=world.client_a, rule=ALLOW_TICKETS, layer="vendor", actor=None)


def test_draft_starts_from_the_active_rules(world):
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    active = publish(client, partner)
    draft = services.ruleset_draft(client=client, actor=partner)
    assert draft.pk != active.pk and draft.number == active.number + 1 and draft.rules == active.rules


def test_decision_make_decides_logs_and_explains(world, deployed):
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    services.rule_save(client=client, rule=HOLD_BULK, layer="partner", actor=partner)
    version = publish(client, partner)

    decision, log = services.decision_make(
        client=client,
        deployment=deployed,
        action=READ,
        trace_id="t-1",
        rate_counter=no_rates,
        principal={"kind": "user", "id": "ana@alpha.example", "role": "operator"},
    )
    # The vendor pack may allow reads too; the partner rule matched either way.
    assert decision.effect == "allow" and "allow_ticket_reads" in decision.matched
    held, held_log = services.decision_make(
        client=client, deployment=deployed, action=BULK, rate_counter=no_rates
    )
    assert held.effect == "require_approval" and held.approver_role == "operator"
    outside, _ = services.decision_make(
        client=client, deployment=deployed, action={"tool": "shell.exec"}, rate_counter=no_rates
    )
    assert outside.effect == "deny" and outside.layer == "zero_trust"
    with tenant_context(client):
        log = DecisionLog.objects.get(pk=log.pk)
        held_log = DecisionLog.objects.get(pk=held_log.pk)
    assert (log.ruleset_version_id, log.deployment_id, log.trace_id) == (version.pk, deployed.pk, "t-1")
    assert log.context["principal"]["role"] == "operator" and log.context["agent"]["variant"] == "itsm"
    assert log.action == {**READ, "target_ids": []} and log.action_hash == decision.action_hash
    assert (held_log.approver_role, held_log.deciding_rule, held_log.layer) == (
        "operator",
        "hold_bulk_reads",
        "partner",
    )
    with pytest.raises(ApplicationError, match="needs a tool"):
        services.decision_make(client=client, deployment=deployed, action={}, rate_counter=no_rates)


def test_an_undeployed_agent_gets_nothing(world):
    draft = a_deployment(world)
    decision, _ = services.decision_make(client=world.client_a, deployment=draft, action=READ)
    assert decision.effect == "deny" and "draft" in decision.reason and decision.evaluated_count == 0


def test_replay_lists_the_decisions_a_draft_would_change(world, deployed):
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    publish(client, partner)
    for action in (READ, BULK, READ):
        services.decision_make(client=client, deployment=deployed, action=action, rate_counter=no_rates)
    draft = services.rule_save(client=client, rule=HOLD_BULK, layer="partner", actor=partner)

    result = services.ruleset_replay(client=client, version=draft, last=10)
    assert result.replayed == 3
    assert [(c.log.effect, c.effect, c.deciding_rule) for c in result.changes] == [
        ("allow", "require_approval", "hold_bulk_reads")
    ]
    assert result.changes[0].log.action["params"] == {"limit": 50}
    # Only the last N are read.
    assert services.ruleset_replay(client=client, version=draft, last=1).changes == []
    with pytest.raises(ApplicationError, match="between 1 and"):
        services.ruleset_replay(client=client, version=draft, last=0)


def test_shadow_report_counts_what_shadow_rules_would_have_changed(world, deployed):
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    services.rule_save(client=client, rule={**HOLD_BULK, "mode": "shadow"}, layer="partner", actor=partner)
    services.rule_save(
        client=client,
        rule={
            **HOLD_BULK,
            "key": "shadow_never",
            "condition": "action.params.limit > 1000",
            "mode": "shadow",
        },
        layer="partner",
        actor=partner,
    )
    publish(client, partner)
    decisions = [
        services.decision_make(client=client, deployment=deployed, action=a, rate_counter=no_rates)[0]
        for a in (READ, BULK, BULK)
    ]
    assert [d.effect for d in decisions] == ["allow", "allow", "allow"]  # shadow never decides
    report = services.shadow_report(client=client)
    assert (report.decisions, report.with_shadow, report.changed) == (3, 2, 2)
    assert [(s.key, s.matched, s.changed) for s in report.rules] == [("hold_bulk_reads", 2, 2)]


def test_evaluation_keys_authenticate_only_their_client_until_revoked(world, deployed):
    admin = world.users["partner_a_admin"]
    key, secret = services.evaluation_key_create(
        client=world.client_a, deployment=deployed, name="Ops", actor=admin
    )
    assert secret.startswith(f"tpk_{key.prefix}_")
    with tenant_context(world.client_a):
        stored = EvaluationKey.objects.get(pk=key.pk)
    assert secret.split("_", 2)[2] not in stored.secret_hash
    found = services.evaluation_key_authenticate(client=world.client_a, raw=secret)
    assert found is not None and found.deployment_id == deployed.pk
    assert services.evaluation_key_authenticate(client=world.client_b, raw=secret) is None
    assert services.evaluation_key_authenticate(client=world.client_a, raw=secret[:-1] + "x") is None
    assert services.evaluation_key_authenticate(client=world.client_a, raw="Bearer nonsense") is None
    services.evaluation_key_revoke(client=world.client_a, key=key, actor=admin)
    assert services.evaluation_key_authenticate(client=world.client_a, raw=secret) is None
    with pytest.raises(ApplicationError, match="Name the key"):
        services.evaluation_key_create(client=world.client_a, deployment=deployed, name=" ", actor=admin)
    connection.set_schema_to_public()


def test_pack_version_rules_are_what_decides(world, deployed):
    """The vendor layer is the pinned pack version's rules, not the pack's latest."""
    pinned = deployed.version.policy_pack_version
    assert isinstance(pinned, PolicyPackVersion)
    rules = services.deployment_vendor_rules(deployed)
    assert [r["key"] for r in rules] == [r["key"] for r in pinned.rules]
    assert {r["layer"] for r in rules} == {"vendor"}


def test_test_cases_run_with_a_built_context_the_case_overrides(world, deployed):
    """A case bound to a deployment gets its vendor rules and a full context; it states only what matters."""
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    services.rule_test_case_save(
        client=client,
        name="a read is allowed",
        action=READ,
        expected_effect="allow",
        deployment=deployed,
        actor=partner,
    )
    services.rule_test_case_save(
        client=client,
        name="a runaway task is stopped",
        action=READ,
        context={"trace": {"steps": 51}},
        expected_effect="deny",
        deployment=deployed,
        actor=partner,
    )
    draft = services.ruleset_draft(client=client, actor=partner)
    outcomes = {o.name: o for o in services.ruleset_tests_run(client=client, version=draft)}
    assert outcomes["a read is allowed"].passed, outcomes["a read is allowed"].reason
    assert outcomes["a runaway task is stopped"].passed, outcomes["a runaway task is stopped"].reason
    with tenant_context(client):
        case = services.RuleTestCase.objects.get(name="a runaway task is stopped")
        built = services.test_case_context(client, case)
    assert built["trace"] == {"steps": 51, "cost": 0.0, "tokens": 0, "depth": 0}
    assert built["agent"]["deployment"] == deployed.pk and built["time"]["business_hours"] is True
    assert built["tenant"]["slug"] == client.slug and built["input"]["injection"] == 0.0


CLIENT_DENY = {
    "key": "client_no_bulk",
    "name": "No bulk reads",
    "effect": "deny",
    "message": "No.",
    "condition": "action.params.limit > 40",
}


def test_rollback_restores_partner_rules_and_keeps_the_clients(world):
    client, partner, admin = world.client_a, world.users["partner_a_admin"], world.users["client_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    v1 = publish(client, partner)
    services.rule_save(client=client, rule=HOLD_BULK, layer="partner", actor=partner)
    publish(client, partner)
    services.rule_save(client=client, rule=CLIENT_DENY, layer="client", actor=admin)
    draft = services.ruleset_draft(client=client, actor=admin)
    services.ruleset_publish(client=client, version=draft, actor=admin, layer="client")

    rolled = services.ruleset_rollback(client=client, to_version=v1, actor=partner)
    assert [(r["key"], r["layer"]) for r in rolled.rules] == [
        ("allow_ticket_reads", "partner"),
        ("client_no_bulk", "client"),
    ]
    assert rolled.is_active and rolled.rolled_back_from_id == v1.pk


def test_a_client_admin_publishes_only_client_changes_and_what_was_reviewed(world):
    client, partner, admin = world.client_a, world.users["partner_a_admin"], world.users["client_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    draft = services.rule_save(client=client, rule=CLIENT_DENY, layer="client", actor=admin)
    with pytest.raises(ApplicationError, match="partner rule changes"):
        services.ruleset_publish(client=client, version=draft, actor=admin, layer="client")
    publish(client, partner)  # the partner team publishes both

    draft = services.rule_save(
        client=client, rule={**CLIENT_DENY, "key": "client_two"}, layer="client", actor=admin
    )
    reviewed = services.rules_digest(draft.rules)
    services.rule_save(
        client=client, rule={**CLIENT_DENY, "key": "client_three"}, layer="client", actor=admin
    )
    with pytest.raises(ApplicationError, match="changed after you reviewed"):
        services.ruleset_publish(
            client=client, version=draft, actor=admin, layer="client", reviewed_digest=reviewed
        )
    with tenant_context(client):
        draft.refresh_from_db()
    published = services.ruleset_publish(
        client=client,
        version=draft,
        actor=admin,
        layer="client",
        reviewed_digest=services.rules_digest(draft.rules),
    )
    assert published.is_active


def test_test_cases_belong_to_their_side_and_their_context_is_checked(world):
    client, partner, admin = world.client_a, world.users["partner_a_admin"], world.users["client_a_admin"]
    case = services.rule_test_case_save(
        client=client, name="reads", action=READ, expected_effect="allow", actor=partner
    )
    with pytest.raises(ApplicationError, match="partner team's test case"):
        services.rule_test_case_save(
            client=client, name="reads", action=READ, expected_effect="deny", actor=admin, layer="client"
        )
    with pytest.raises(ApplicationError, match="partner team's test case"):
        services.rule_test_case_delete(client=client, case=case, actor=admin, layer="client")
    with tenant_context(client):
        case.refresh_from_db()
    assert case.expected_effect == "allow"
    bad = [
        ({"principal": "bob"}, "object of its fields"),
        ({"trace": {"steps": "many"}}, "numbers ≥ 0"),
        ({"trace": {"loops": 1}}, "not loops"),
        ({"rates": {"x": -1}}, "whole number"),
        ({"weather": {}}, "Unknown context variable weather"),
        ({"tenant": {"attributes": {"blob": "x" * 20_000}}}, "larger than 16 KB"),
    ]
    for context, message in bad:
        with pytest.raises(ApplicationError, match=message):
            services.rule_test_case_save(
                client=client, name="x", action=READ, context=context, expected_effect="deny", actor=partner
            )


def test_vendor_pack_keys_are_refused_even_before_any_deployment(world):
    with pytest.raises(RulesetError, match="key of a locked vendor rule in a policy pack"):
        services.rule_save(
            client=world.client_a,
            rule={**ALLOW_TICKETS, "key": "deny_deletes"},
            layer="partner",
            actor=world.users["partner_a_admin"],
        )


def test_an_unusable_ruleset_fails_closed_and_is_logged(world, deployed):
    client, partner = world.client_a, world.users["partner_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    version = publish(client, partner)
    vendor_key = deployed.version.policy_pack_version.rules[0]["key"]
    with tenant_context(client):
        # As if a pack published later had taken this key (the services refuse such a rule today):
        # an active version holding it, made below the services.
        RulesetVersion.objects.filter(pk=version.pk).update(is_active=False)
        RulesetVersion.objects.create(
            ruleset_id=version.ruleset_id,
            number=version.number + 1,
            status=RulesetVersion.Status.PUBLISHED,
            is_active=True,
            rules=[{**version.rules[0], "key": vendor_key}],
        )
    decision, log = services.decision_make(
        client=client, deployment=deployed, action=READ, rate_counter=no_rates
    )
    assert decision.effect == "deny" and "cannot be used with this agent" in decision.reason
    assert log.pk is not None and log.effect == "deny"


def test_replay_reads_the_rates_a_decision_saw(world, deployed):
    client, partner = world.client_a, world.users["partner_a_admin"]
    burst = {
        **HOLD_BULK,
        "key": "hold_bursts",
        "selector": {"tools": ["db.get", "db.query"]},
        "condition": "rate('reads', 60) > 3",
    }
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    services.rule_save(client=client, rule=burst, layer="partner", actor=partner)
    version = publish(client, partner)
    decision, log = services.decision_make(
        client=client, deployment=deployed, action=READ, rate_counter=lambda key, window: 9
    )
    assert decision.effect == "require_approval" and log.context["rates"] == {"reads|60": 9}
    assert services.ruleset_replay(client=client, version=version, last=1).changes == []


def test_rule_sizes_are_bounded(world):
    partner = world.users["partner_a_admin"]
    for rule, path in [
        ({**ALLOW_TICKETS, "name": "n" * 201}, "name"),
        ({**ALLOW_TICKETS, "message": "m" * 1001}, "message"),
        ({**ALLOW_TICKETS, "key": "k" * 65}, "key"),
        ({**ALLOW_TICKETS, "selector": {"tools": [f"t{i}" for i in range(101)]}}, "selector.tools"),
    ]:
        with pytest.raises(RulesetError) as exc:
            services.rule_save(client=world.client_a, rule=rule, layer="partner", actor=partner)
        assert exc.value.errors[0]["path"] == path


def test_discarding_undoes_only_your_sides_changes(world):
    client, partner, admin = world.client_a, world.users["partner_a_admin"], world.users["client_a_admin"]
    services.rule_save(client=client, rule=ALLOW_TICKETS, layer="partner", actor=partner)
    publish(client, partner)
    services.rule_save(client=client, rule=HOLD_BULK, layer="partner", actor=partner)
    services.rule_save(client=client, rule=CLIENT_DENY, layer="client", actor=admin)
    services.ruleset_draft_discard(client=client, actor=partner)
    with tenant_context(client):
        draft = RulesetVersion.objects.get(status="draft")
    assert [r["key"] for r in draft.rules] == ["allow_ticket_reads", "client_no_bulk"]
    services.ruleset_draft_discard(client=client, actor=admin, layer="client")
    with tenant_context(client):
        assert not RulesetVersion.objects.filter(status="draft").exists()
