"""Rulesets in a real client schema: drafts, publish checks, immutability, rollback, the decision log."""

import pytest
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import tenant_context

from apps.core.exceptions import ApplicationError
from apps.governance import services
from apps.governance.engine import compile_ruleset, evaluate
from apps.governance.models import DecisionLog, RulesetVersion
from apps.governance.rules import RulesetError

ALLOW = {
    "key": "partner_allow_updates",
    "name": "Allow updates",
    "effect": "allow",
    "message": "ok",
    "selector": {"tools": ["db.update"]},
}
DENY_BIG = {
    "key": "deny_big",
    "name": "No big amounts",
    "effect": "deny",
    "message": "too big",
    "condition": "action.params.amount > 100",
    "layer": "client",
}
ACTION = {"tool": "db.update", "params": {"amount": 500}}


def test_publish_blocked_by_failing_test_case_then_passes(world):
    client, actor = world.client_a, world.users["partner_a_admin"]
    services.rule_test_case_save(
        client=client, name="big is denied", action=ACTION, expected_effect="deny", actor=actor
    )
    draft = services.ruleset_save_draft(client=client, rules=[ALLOW], actor=actor)
    with pytest.raises(RulesetError) as exc:
        services.ruleset_publish(client=client, version=draft, actor=actor)
    assert (
        exc.value.errors[0]["path"] == "test:big is denied"
        and "expected deny, got allow" in exc.value.message
    )
    with tenant_context(client):
        assert not RulesetVersion.objects.filter(status="published").exists()

    draft = services.ruleset_save_draft(client=client, rules=[ALLOW, DENY_BIG], actor=actor)
    published = services.ruleset_publish(client=client, version=draft, actor=actor)
    assert published.is_published and published.is_active
    assert services.active_version(client=client).pk == published.pk


def test_client_rules_cannot_allow_and_vendor_layer_is_not_stored(world):
    actor = world.users["client_a_admin"]
    with pytest.raises(RulesetError, match="stricter"):
        services.ruleset_save_draft(client=world.client_a, rules=[{**ALLOW, "layer": "client"}], actor=actor)
    with pytest.raises(RulesetError, match="cannot be stored"):
        services.ruleset_save_draft(client=world.client_a, rules=[{**ALLOW, "layer": "vendor"}], actor=actor)


def test_published_version_is_immutable_by_service_and_trigger(world):
    client, actor = world.client_a, world.users["partner_a_admin"]
    version = services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW], actor=actor),
        actor=actor,
    )
    with pytest.raises(ApplicationError):
        services.ruleset_publish(client=client, version=version, actor=actor)
    with tenant_context(client):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
            RulesetVersion.objects.filter(pk=version.pk).update(rules=[])
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
            RulesetVersion.objects.filter(pk=version.pk).delete()
        # Moving the active flag is the one change allowed.
        RulesetVersion.objects.filter(pk=version.pk).update(is_active=False)


def test_triggers_exist_in_provisioned_client_schemas(world):
    for client in (world.client_a, world.client_b):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.tgname, pn.nspname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
                "JOIN pg_namespace pn ON pn.oid = p.pronamespace "
                "WHERE n.nspname = %s AND t.tgname LIKE 'governance%%'",
                [client.schema_name],
            )
            rows = sorted(cursor.fetchall())
        assert [name for name, _ in rows] == [
            "governance_decisionlog_append_only",
            "governance_rulesetversion_immutable_when_published",
        ]


def test_rollback_reactivates_as_a_new_version(world):
    client, actor = world.client_a, world.users["partner_a_admin"]
    v1 = services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW], actor=actor),
        actor=actor,
    )
    services.ruleset_publish(
        client=client,
        version=services.ruleset_save_draft(client=client, rules=[ALLOW, DENY_BIG], actor=actor),
        actor=actor,
    )
    v3 = services.ruleset_rollback(client=client, to_version=v1, actor=actor)
    assert v3.number == 3 and v3.is_active and v3.rolled_back_from_id == v1.pk
    # The partner rules come back; the client's rule (deny_big) stays: a partner never removes it.
    assert [r["key"] for r in v3.rules] == ["partner_allow_updates", "deny_big"]
    with tenant_context(client):
        assert RulesetVersion.objects.filter(is_active=True).count() == 1


def test_decision_log_is_append_only(world):
    client = world.client_a
    decision = evaluate(compile_ruleset([ALLOW]), ACTION, {})
    row = services.decision_record(client=client, decision=decision, action=ACTION)
    assert row.effect == "allow" and row.matched == ["partner_allow_updates"]
    with pytest.raises(ApplicationError):
        services.decision_record(client=client, decision=decision, action={**ACTION, "tool": "x"})
    with tenant_context(client):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            DecisionLog.objects.filter(pk=row.pk).update(effect="deny")
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            DecisionLog.objects.filter(pk=row.pk).delete()
