"""Management portal: a client's governance settings (tenant.*) and a deployment's evaluation keys.

Partner A's admin and the engineer assigned to client A use these pages; partner B and unassigned
engineers get 404. Settings are validated field by field and nothing is saved when one is wrong.
An evaluation key's full secret appears once, in the answer to its creation, and nowhere else.
"""

import re

import pytest
from auditlog.models import LogEntry
from django_tenants.utils import tenant_context

from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.governance import services as governance_services
from apps.governance.models import EvaluationKey
from apps.portals.management.client_governance_views import (
    attribute_text,
    attribute_value,
    parse_attributes,
)
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client
from tests.matrix.base import a_deployment, itsm

PARTNER_A = ["partner_a_admin", "partner_a_engineer"]
SETTINGS_FIELDS = ("timezone", "jurisdiction", "own_domains", "allowed_hosts", "attributes")


def settings_url(client) -> str:
    return f"/partner/clients/{client.pk}/governance-settings/"


def valid_post(**overrides) -> dict:
    data = {
        "timezone": "Europe/Paris",
        "jurisdiction": "EU",
        "own_domains": "Acme.com\nacme.fr\n\nacme.com",
        "allowed_hosts": "api.acme.com, hooks.acme.com",
        "attributes": (
            'cost_center = FIN-042\nmax_refund = 2500\nrate = 0.5\nstrict = true\ncode = "42"\n# a comment'
        ),
    }
    data.update(overrides)
    return data


def settings_of(client) -> dict:
    fresh = Client.objects.get(pk=client.pk)
    return {name: getattr(fresh, name) for name in SETTINGS_FIELDS}


# --- Governance settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PARTNER_A)
def test_partner_team_saves_the_settings_rules_read(world, platform, persona):
    browser = platform(persona)
    page = browser.get(settings_url(world.client_a))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<option value="Europe/Paris">Europe/Paris</option>' in html
    assert "tenant.allowed_hosts" in html
    response = browser.post(settings_url(world.client_a), valid_post())
    assert response.status_code == 302 and response["Location"] == f"/partner/clients/{world.client_a.pk}/"
    assert settings_of(world.client_a) == {
        "timezone": "Europe/Paris",
        "jurisdiction": "EU",
        "own_domains": ["acme.com", "acme.fr"],
        "allowed_hosts": ["api.acme.com", "hooks.acme.com"],
        "attributes": {
            "cost_center": "FIN-042",
            "max_refund": 2500,
            "rate": 0.5,
            "strict": True,
            "code": "42",
        },
    }
    # Audited, with who did it and the before/after values.
    entry = LogEntry.objects.filter(object_pk=str(world.client_a.pk)).latest("timestamp")
    assert entry.actor == world.users[persona]
    assert {"timezone", "own_domains", "attributes"} <= set(entry.changes_dict)
    # The page shows the saved values back in the same notation (text that looks like a number quoted).
    html = browser.get(settings_url(world.client_a)).content.decode()
    assert "max_refund = 2500" in html and "strict = true" in html and "code = &quot;42&quot;" in html
    assert "acme.com\nacme.fr" in html


def test_attributes_as_json(world, platform):
    response = platform("partner_a_admin").post(
        settings_url(world.client_a), valid_post(attributes='{"tier": "gold", "seats": 40, "eu_only": false}')
    )
    assert response.status_code == 302
    assert settings_of(world.client_a)["attributes"] == {"tier": "gold", "seats": 40, "eu_only": False}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice"),
        ({"own_domains": "acme.com\nnot a host!"}, "own_domains", "Not a host name: not, a, host!"),
        ({"allowed_hosts": "https://api.acme.com/"}, "allowed_hosts", "Not a host name"),
        ({"attributes": "tier = gold\njust words"}, "attributes", "Line 2: write name = value"),
        (
            {"attributes": "tier = gold\ntier = silver"},
            "attributes",
            "Line 2: &#x27;tier&#x27; is given twice",
        ),
        ({"attributes": "Tier = gold"}, "attributes", "attribute names are lowercase letters"),
        ({"attributes": "{bad json"}, "attributes", "Not valid JSON"),
        ({"attributes": "[1, 2]"}, "attributes", "Line 1: write name = value"),
        ({"attributes": '{"nested": {"a": 1}}'}, "attributes", "a value is text, a number or true/false"),
        ({"jurisdiction": "x" * 41}, "jurisdiction", "at most 40 characters"),
    ],
)
def test_invalid_settings_show_field_errors_and_save_nothing(world, platform, overrides, field, message):
    before = settings_of(world.client_a)
    response = platform("partner_a_admin").post(settings_url(world.client_a), valid_post(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    error = re.search(rf'id="id_{field}_error">(.*?)</div>\s*</div>', html, re.S)
    assert error and message in error.group(1), html[:200]
    assert settings_of(world.client_a) == before


def test_the_service_validates_on_its_own(world):
    from django.core.exceptions import ValidationError

    from apps.core.exceptions import ApplicationError

    actor = world.users["partner_a_admin"]
    before = settings_of(world.client_a)
    with pytest.raises(ValidationError) as exc:
        tenancy_services.client_governance_settings_update(
            client=world.client_a, actor=actor, timezone="Nowhere/City", own_domains=["ok.com"]
        )
    assert "timezone" in exc.value.message_dict
    with pytest.raises(ApplicationError, match="Not a governance setting: name"):
        tenancy_services.client_governance_settings_update(client=world.client_a, actor=actor, name="Evil")
    assert settings_of(world.client_a) == before
    client = tenancy_services.client_governance_settings_update(
        client=world.client_a, actor=actor, jurisdiction=" US-CA "
    )
    assert client.jurisdiction == "US-CA" and settings_of(world.client_a)["jurisdiction"] == "US-CA"


def test_others_cannot_see_or_change_the_settings(world, platform):
    before = settings_of(world.client_a)
    assert platform("partner_b_admin").get(settings_url(world.client_a)).status_code == 404
    assert platform("partner_b_admin").post(settings_url(world.client_a), valid_post()).status_code == 404
    # The engineer is not assigned to client A2.
    assert platform("partner_a_engineer").get(settings_url(world.client_a2)).status_code == 404
    assert platform("partner_a_admin").get(settings_url(world.client_a2)).status_code == 200
    for persona in ("vendor_admin", "client_a_admin"):
        assert platform(persona).post(settings_url(world.client_a), valid_post()).status_code == 403
    assert settings_of(world.client_a) == before


def test_client_page_links_to_the_settings(world, platform):
    html = platform("partner_a_engineer").get(f"/partner/clients/{world.client_a.pk}/").content.decode()
    assert f'href="{settings_url(world.client_a)}"' in html


@pytest.mark.parametrize(
    "value", ["FIN-042", "42", "4.5", "true", "False", " padded ", '"quoted"', "", 7, -3, 2.5, True, False]
)
def test_attribute_values_survive_a_round_trip(value):
    """What the form shows for a stored value reads back as that same value."""
    assert parse_attributes(f"x = {attribute_text(value)}") == {"x": value}


@pytest.mark.parametrize(
    ("written", "value"),
    [("FIN-042", "FIN-042"), ("2500", 2500), ("-1", -1), ("0.5", 0.5), ("TRUE", True), ('"42"', "42")],
)
def test_attribute_values_are_typed(written, value):
    assert attribute_value(written) == value and type(attribute_value(written)) is type(value)


# --- Evaluation keys ------------------------------------------------------------------------------


@pytest.fixture
def deployed(world) -> Deployment:
    return a_deployment(world, Deployment.Status.DEPLOYED)


def another_deployment(world, name: str, *, deploy: bool = False) -> Deployment:
    version, engineer = itsm(), world.users["partner_a_engineer"]
    deployment = deployment_services.deployment_create(
        client=world.client_a, variant=version.variant, version=version, name=name, actor=engineer
    )
    if deploy:
        for step, actor in [
            ("submit", engineer),
            ("approve", world.users["client_a_admin"]),
            ("deploy", engineer),
        ]:
            getattr(deployment_services, f"deployment_{step}")(
                client=world.client_a, deployment=deployment, actor=actor
            )
    return deployment


def keys_url(world, deployment, suffix: str = "") -> str:
    return f"/partner/clients/{world.client_a.pk}/deployments/{deployment.pk}/evaluation-keys/{suffix}"


def stored_keys(world) -> list[tuple]:
    with tenant_context(world.client_a):
        return list(EvaluationKey.objects.order_by("pk").values_list("pk", "name", "revoked_at"))


def test_deployment_page_has_the_keys_card_loaded_from_the_keys_list(world, platform, deployed):
    browser = platform("partner_a_engineer")
    html = browser.get(f"/partner/clients/{world.client_a.pk}/deployments/{deployed.pk}/").content.decode()
    assert 'id="evaluation-keys-card"' in html and f'hx-get="{keys_url(world, deployed)}"' in html
    fragment = browser.get(keys_url(world, deployed), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'data-testid="evaluation-keys"' in fragment
    assert (
        "No evaluation keys yet." in fragment and f'action="{keys_url(world, deployed, "new/")}"' in fragment
    )
    full = browser.get(keys_url(world, deployed)).content.decode()
    assert "<html" in full and "Evaluation keys of Matrix agent" in full


@pytest.mark.parametrize("persona", PARTNER_A)
def test_a_new_key_is_shown_once_then_only_its_prefix(world, platform, deployed, persona):
    browser = platform(persona)
    response = browser.post(keys_url(world, deployed, "new/"), {"name": "Acme on-prem worker"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    secret = re.search(r'data-testid="new-key"', html) and re.search(r'value="(tpk_[^"]+)"', html).group(1)
    key = governance_services.evaluation_key_authenticate(client=world.client_a, raw=secret)
    assert key is not None and key.name == "Acme on-prem worker" and key.deployment_id == deployed.pk
    assert key.created_by == world.users[persona]
    assert secret not in response.get("Location", "") and secret.split("_", 2)[2] not in key.secret_hash
    # Never again: not in the list, not in a later page, not in the session.
    for url in (
        keys_url(world, deployed),
        f"/partner/clients/{world.client_a.pk}/deployments/{deployed.pk}/",
    ):
        later = browser.get(url).content.decode()
        assert secret not in later
    listing = browser.get(keys_url(world, deployed)).content.decode()
    assert f"tpk_{key.prefix}_…" in listing and "Acme on-prem worker" in listing
    assert "never" not in listing  # authenticating above stamped its last use
    assert secret not in str(dict(browser.session))


def test_a_key_needs_a_name_and_a_live_deployment(world, platform, deployed):
    browser = platform("partner_a_admin")
    response = browser.post(keys_url(world, deployed, "new/"), {"name": "  "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert browser.get(keys_url(world, deployed, "new/")).status_code == 200
    retired = another_deployment(world, "Old agent", deploy=True)
    deployment_services.deployment_retire(
        client=world.client_a, deployment=retired, actor=world.users["partner_a_admin"]
    )
    response = browser.post(keys_url(world, retired, "new/"), {"name": "Late"})
    assert (
        response.status_code == 200 and "A retired deployment takes no new keys." in response.content.decode()
    )
    assert "A retired deployment takes no new keys." in browser.get(keys_url(world, retired)).content.decode()
    assert stored_keys(world) == []


def test_revoke_asks_first_then_the_key_stops_working(world, platform, deployed):
    key, secret = governance_services.evaluation_key_create(
        client=world.client_a, deployment=deployed, name="Worker", actor=world.users["partner_a_admin"]
    )
    browser = platform("partner_a_engineer")
    html = browser.get(keys_url(world, deployed)).content.decode()
    assert keys_url(world, deployed, f"{key.pk}/revoke/") in html
    confirm = browser.get(keys_url(world, deployed, f"{key.pk}/revoke/")).content.decode()
    assert "Revoke “Worker”?" in confirm and stored_keys(world)[0][2] is None
    response = browser.post(keys_url(world, deployed, f"{key.pk}/revoke/"), follow=True)
    assert "is revoked; it stopped working at once" in response.content.decode()
    assert stored_keys(world)[0][2] is not None
    assert governance_services.evaluation_key_authenticate(client=world.client_a, raw=secret) is None
    html = browser.get(keys_url(world, deployed)).content.decode()
    assert "Revoked" in html and keys_url(world, deployed, f"{key.pk}/revoke/") not in html
    response = browser.post(keys_url(world, deployed, f"{key.pk}/revoke/"), follow=True)
    assert "was already revoked" in response.content.decode()


def test_keys_are_scoped_to_their_deployment_and_partner(world, platform, deployed):
    key, _secret = governance_services.evaluation_key_create(
        client=world.client_a, deployment=deployed, name="Worker", actor=None
    )
    other = another_deployment(world, "Other agent")
    admin = platform("partner_a_admin")
    # A key of one deployment is not found under another.
    assert admin.get(keys_url(world, other, f"{key.pk}/revoke/")).status_code == 404
    assert admin.post(keys_url(world, other, f"{key.pk}/revoke/")).status_code == 404
    before = stored_keys(world)
    for persona, answer in [("partner_b_admin", 404), ("vendor_admin", 403), ("client_a_admin", 403)]:
        browser = platform(persona)
        assert browser.get(keys_url(world, deployed)).status_code == answer, persona
        assert browser.post(keys_url(world, deployed, "new/"), {"name": "Evil"}).status_code == answer
        assert browser.post(keys_url(world, deployed, f"{key.pk}/revoke/")).status_code == answer
    assert stored_keys(world) == before
