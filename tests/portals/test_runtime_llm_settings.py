"""Management portal: a deployment's LLM endpoint settings (partner admin and assigned engineers).

The API key is write-only: stored encrypted, never rendered back (not in the form, not in any page or API
answer, not in the change log), kept when the field is left empty, removed only on purpose.
"""

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment
from apps.runtime.models import LlmEndpoint
from apps.runtime.settings_services import llm_endpoint_get
from tests.matrix.cases_runtime import endpoint, mail_agent

SECRET = "sk-live-0123456789abcdef-SECRET"


def url(world, deployment, suffix: str = "") -> str:
    return f"/partner/clients/{world.client_a.pk}/deployments/{deployment.pk}/llm-endpoint/{suffix}"


def form(**overrides) -> dict:
    data = {
        "base_url": "https://llm.acme.internal/v1",
        "model": "llama3.1:8b",
        "api_key": SECRET,
        "temperature": "0.2",
        "max_steps": "15",
        "max_tokens": "40000",
        "max_cost": "2.5",
        "price_per_1k_tokens": "0.002",
        "timeout_seconds": "45",
    }
    data.update(overrides)
    return data


def stored(world, deployment) -> LlmEndpoint | None:
    return llm_endpoint_get(client=world.client_a, deployment=deployment)


def raw_key(world, deployment) -> str:
    with tenant_context(world.client_a), connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM runtime_llmendpoint WHERE deployment_id = %s", [deployment.pk])
        return cursor.fetchone()[0]


def test_an_engineer_sets_an_endpoint_and_the_key_is_stored_encrypted(world, platform):
    deployment = mail_agent(world)
    browser = platform("partner_a_engineer")
    page = browser.get(url(world, deployment)).content.decode()
    assert "No endpoint set" in page and 'type="password"' in page

    response = browser.post(url(world, deployment), form(allow_private_network="on"))
    assert response.status_code == 302
    saved = stored(world, deployment)
    assert saved.base_url == "https://llm.acme.internal/v1" and saved.model == "llama3.1:8b"
    assert saved.api_key == SECRET and saved.allow_private_network and saved.max_steps == 15
    assert str(saved.max_cost) == "2.5000" and saved.timeout_seconds == 45 and saved.temperature == 0.2
    assert saved.updated_by == world.users["partner_a_engineer"]
    assert SECRET not in raw_key(world, deployment) and raw_key(world, deployment)

    page = browser.get(url(world, deployment)).content.decode()
    assert SECRET not in page and "A key is stored" in page and 'value="llama3.1:8b"' in page


def test_an_empty_key_keeps_the_stored_one_and_a_new_one_replaces_it(world, platform):
    deployment = endpoint(world, SECRET)
    browser = platform("partner_a_admin")
    browser.post(url(world, deployment), form(api_key="", model="other-model"))
    saved = stored(world, deployment)
    assert saved.model == "other-model" and saved.api_key == SECRET
    browser.post(url(world, deployment), form(api_key="sk-new"))
    assert stored(world, deployment).api_key == "sk-new"
    browser.post(url(world, deployment), form(api_key="", clear_api_key="on"))
    assert stored(world, deployment).api_key == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "not a url"}, "Enter a valid URL."),
        ({"base_url": "ftp://llm.example.com/v1"}, "starts with http:// or https://"),
        ({"model": " "}, "This field is required."),
        ({"temperature": "3"}, "less than or equal to 2"),
        ({"max_steps": "0"}, "greater than or equal to 1"),
        ({"max_steps": "501"}, "less than or equal to 500"),
        ({"max_cost": "-1"}, "greater than or equal to 0"),
        ({"timeout_seconds": "0"}, "greater than or equal to 1"),
    ],
)
def test_invalid_settings_are_refused_on_the_field(world, platform, overrides, message):
    deployment = mail_agent(world)
    response = platform("partner_a_engineer").post(url(world, deployment), form(**overrides))
    assert response.status_code == 200 and message in response.content.decode()
    assert stored(world, deployment) is None
    assert SECRET not in response.content.decode()  # a refused form does not echo the key either


def test_a_retired_deployment_keeps_its_settings(world, platform):
    deployment = mail_agent(world)
    with tenant_context(world.client_a):
        Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.Status.RETIRED)
    response = platform("partner_a_engineer").post(url(world, deployment), form())
    assert "is retired" in response.content.decode()
    assert stored(world, deployment) is None


def test_changes_are_audited_without_the_key(world, platform):
    deployment = mail_agent(world)
    browser = platform("partner_a_engineer")
    browser.post(url(world, deployment), form())
    browser.post(url(world, deployment), form(api_key="sk-second-SECRET", model="m2"))
    with tenant_context(world.client_a):
        entries = list(LogEntry.objects.filter(content_type__model="llmendpoint").order_by("pk"))
        events = list(AuditEvent.objects.filter(kind__startswith="llm_endpoint.").order_by("seq"))
    assert len(entries) == 2 and entries[1].changes_dict["model"] == ["llama3.1:8b", "m2"]
    assert entries[1].actor == world.users["partner_a_engineer"]
    assert [e.kind for e in events] == ["llm_endpoint.created", "llm_endpoint.changed"]
    assert events[1].data["api_key_changed"] is True and events[1].actor == "partner.a.engineer@example.com"
    assert all("api_key" not in e.changes_dict for e in entries)
    for text in [str(e.changes) for e in entries] + [str(e.data) for e in events]:
        assert SECRET not in text and "sk-second-SECRET" not in text


def test_removing_the_endpoint_asks_first(world, platform):
    deployment = endpoint(world, SECRET)
    browser = platform("partner_a_engineer")
    page = browser.get(url(world, deployment, "delete/")).content.decode()
    assert "Remove the LLM endpoint" in page and SECRET not in page
    assert stored(world, deployment) is not None  # the GET changed nothing
    response = browser.post(url(world, deployment, "delete/"))
    assert response.status_code == 302 and stored(world, deployment) is None
    with tenant_context(world.client_a):
        assert AuditEvent.objects.filter(kind="llm_endpoint.deleted").count() == 1
    # Nothing left to remove: the confirmation page sends you back.
    assert browser.get(url(world, deployment, "delete/")).status_code == 302


def test_an_unassigned_engineer_and_another_partner_get_404(world, platform):
    deployment = endpoint(world, SECRET)
    assert platform("partner_b_admin").get(url(world, deployment)).status_code == 404
    response = platform("partner_b_admin").post(url(world, deployment), form(api_key="sk-evil"))
    assert response.status_code == 404 and stored(world, deployment).api_key == SECRET


def test_the_key_never_appears_in_any_page_or_api_answer(world, platform, client_host):
    deployment = endpoint(world, SECRET)
    management = platform("partner_a_admin")
    pages = [
        management.get(url(world, deployment)),
        management.get(url(world, deployment, "delete/")),
        management.get(f"/partner/clients/{world.client_a.pk}/deployments/{deployment.pk}/"),
        management.get(f"/partner/clients/{world.client_a.pk}/"),
        management.get(f"/api/v1/clients/{world.client_a.pk}/deployments/{deployment.pk}"),
    ]
    dashboard = client_host("client_a_admin")
    pages += [
        dashboard.get(f"/agents/{deployment.pk}/"),
        dashboard.get("/api/v1/deployments"),
        dashboard.get("/api/v1/tasks"),
        dashboard.get("/api/schema/", {"format": "json"}),
    ]
    for response in pages:
        assert response.status_code == 200, response.request["PATH_INFO"]
        assert SECRET not in response.content.decode(), response.request["PATH_INFO"]
