"""seed_factory: the built-in policy packs, base agent and four variants, published once."""

from io import StringIO

from django.core.management import call_command

from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion, PolicyPack, PolicyPackVersion
from apps.factory.policy import validate_rules
from apps.factory.spec import validate_spec

MODELS = [AgentTemplate, AgentVariant, AgentVersion, PolicyPack, PolicyPackVersion]


def counts() -> dict:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seed_factory_is_idempotent(world):
    before = counts()  # the world already ran it once
    specs = {v.pk: v.spec for v in AgentVersion.objects.all()}
    out = StringIO()
    call_command("seed_factory", stdout=out)
    call_command("seed_factory", verbosity=0)
    assert counts() == before
    assert {v.pk: v.spec for v in AgentVersion.objects.all()} == specs
    assert "already in place" in out.getvalue() and "itsm" in out.getvalue()


def test_seeded_agents(world):
    base = AgentVariant.objects.get(key="base")
    assert base.parent is None and base.template.key == "enterprise-agent"
    base_version = base.versions.get()
    assert base_version.version == "1.0.0" and base_version.is_published
    expected = {
        "itsm": (
            {"ticket", "person", "ticket_comment"},
            {"triage_ticket", "resolve_ticket", "escalate_ticket"},
        ),
        "finance": ({"invoice", "payment"}, {"review_invoice", "schedule_payment"}),
        "hr": ({"employee", "leave_request"}, {"approve_leave", "onboard_employee"}),
        "vendor": ({"vendor", "contract", "purchase_order"}, {"onboard_vendor", "renew_contract"}),
    }
    for key, (entities, workflows) in expected.items():
        variant = AgentVariant.objects.get(key=key)
        version = variant.versions.get()
        assert variant.parent == base and variant.domain
        assert version.version == "1.0.0" and version.is_published and version.base_version == base_version
        assert validate_spec(version.spec) == version.spec
        assert {entity["name"] for entity in version.spec["data"]} == entities
        assert {workflow["name"] for workflow in version.spec["workflows"]} == workflows
        assert version.spec["policy_pack"] == f"{key}-baseline"
        update = next(tool for tool in version.spec["tools"] if tool["name"] == "db.update")
        assert update["entities"] and set(update["entities"]) <= entities


def test_seeded_canonical_fields(world):
    itsm = AgentVariant.objects.get(key="itsm").versions.get().spec
    ticket = next(entity for entity in itsm["data"] if entity["name"] == "ticket")
    fields = {field["name"]: field for field in ticket["fields"]}
    assert list(fields) == [
        "id", "reference", "subject", "description", "status", "priority", "category",
        "requester_id", "assignee_id", "team_id", "created_at", "updated_at", "resolved_at", "due_at",
    ]  # fmt: skip
    assert fields["subject"]["required"] and not fields["resolved_at"]["required"]
    assert {field["classification"] for field in fields.values()} == {"internal"}
    person = next(entity for entity in itsm["data"] if entity["name"] == "person")
    assert {f["name"]: f["classification"] for f in person["fields"]} == {
        "id": "internal",
        "name": "internal",
        "email": "confidential",
        "phone": "confidential",
    }
    vendor = AgentVariant.objects.get(key="vendor").versions.get().spec["data"][0]
    assert next(f for f in vendor["fields"] if f["name"] == "tax_id")["classification"] == "restricted"


def test_seeded_policy_packs(world):
    packs = {pack.key: pack for pack in PolicyPack.objects.all()}
    assert set(packs) == {"baseline", "itsm-baseline", "finance-baseline", "hr-baseline", "vendor-baseline"}
    for pack in packs.values():
        version = pack.versions.get()
        assert version.version == "1.0.0" and version.status == "published"
        assert validate_rules(version.rules) == version.rules
    finance = packs["finance-baseline"].versions.get().rules
    assert any(
        rule["effect"] == "require_approval"
        and rule["approver_role"] == "client_admin"
        and rule["condition"] == "double(action.params.amount) > 10000.0"
        for rule in finance
    )
    # Zero trust: every pack allows what its agent does, and carries the shared baseline guards.
    for pack in packs.values():
        rules = pack.versions.get().rules
        assert any(rule["effect"] == "allow" for rule in rules), pack.key
        assert {"deny_deletes", "stop_runaway_loops"} <= {rule["key"] for rule in rules}, pack.key
    hr = packs["hr-baseline"].versions.get().rules
    assert any(rule["effect"] == "redact" and "email" in rule["redact_fields"] for rule in hr)
