"""Client dashboard: the audit log (filters, pages, empty states), its exports and the "Verify" button.

Every client role reads, exports and verifies; the vendor, partner staff and other clients' people
never see a client's events through the dashboard (the permission matrix covers each persona).
"""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from tests.audit.helpers import append_many, triggers_disabled, write_chain
from tests.matrix.base import a_deployment

CLIENT_ROLES = ["client_a_admin", "client_a_operator", "client_a_viewer"]


def url(name, *args, **query) -> str:
    path = reverse(f"dashboard:{name}", urlconf="config.urls_tenant", args=args)
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _seqs(response) -> list[int]:
    return [event.seq for event, _agent in response.context["rows"]]


def test_empty_trail_shows_the_empty_state(world, client_host):
    response = client_host("client_a_viewer").get(url("audit_list"))
    assert response.status_code == 200
    assert "No events yet" in response.content.decode()


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_every_client_role_reads_the_log_with_agent_names(world, client_host, persona):
    deployment = a_deployment(world)
    append_many(world.client_a, 2, deployment_id=deployment.pk, trace_id="tr-1", effect="deny")
    response = client_host(persona).get(url("audit_list"))
    page = response.content.decode()
    assert response.status_code == 200
    assert _seqs(response) == [2, 1]
    assert [agent for _event, agent in response.context["rows"]] == [deployment.name, deployment.name]
    assert "event.2" in page and "Matrix agent" in page and "Deny" in page
    # The agent picker offers the client's agents.
    assert (str(deployment.pk), deployment.name) in response.context["form"].fields["deployment_id"].choices


def test_filters_and_their_empty_state(world, client_host):
    deployment = a_deployment(world)
    write_chain(
        world.client_a,
        [
            {"created_at": datetime(2026, 3, 1, 9, tzinfo=UTC), "kind": "task.created", "trace_id": "tr-a"},
            {
                "created_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
                "kind": "decision",
                "trace_id": "tr-b",
                "effect": "require_approval",
                "deployment_id": deployment.pk,
            },
            {
                "created_at": datetime(2026, 3, 3, 9, tzinfo=UTC),
                "kind": "approval.approved",
                "trace_id": "tr-b",
            },
        ],
    )
    browser = client_host("client_a_viewer")
    assert _seqs(browser.get(url("audit_list", trace_id="tr-b"))) == [3, 2]
    assert _seqs(browser.get(url("audit_list", date_from="2026-03-02", date_to="2026-03-02"))) == [2]
    assert _seqs(browser.get(url("audit_list", effect="require_approval"))) == [2]
    assert _seqs(browser.get(url("audit_list", deployment_id=deployment.pk))) == [2]
    assert _seqs(browser.get(url("audit_list", kind="approval.*"))) == [3]
    response = browser.get(url("audit_list", trace_id="nothing-here"))
    assert _seqs(response) == [] and "No events match" in response.content.decode()
    # A bad range is shown on the form, and filters nothing it could not read.
    response = browser.get(url("audit_list", date_from="2026-03-03", date_to="2026-03-01"))
    assert response.context["form"].errors["date_to"] and _seqs(response) == [3]
    # An agent of no one (not in the picker) is refused by the form.
    response = browser.get(url("audit_list", deployment_id=999999))
    assert "deployment_id" in response.context["form"].errors


def test_pages_of_fifty(world, client_host):
    append_many(world.client_a, 55)
    browser = client_host("client_a_viewer")
    first = browser.get(url("audit_list"))
    assert _seqs(first)[:2] == [55, 54] and len(_seqs(first)) == 50
    assert "Showing" in first.content.decode()
    assert _seqs(browser.get(url("audit_list", page=2))) == [5, 4, 3, 2, 1]


def test_exports_honour_the_filters(world, client_host):
    append_many(world.client_a, 3, trace_id="tr-x")
    append_many(world.client_a, 2, trace_id="tr-y")
    browser = client_host("client_a_viewer")
    list_page = browser.get(url("audit_list", trace_id="tr-y", page=2)).content.decode()
    assert url("audit_export", "jsonl") + "?trace_id=tr-y" in list_page  # the buttons carry the filters
    response = browser.get(url("audit_export", "jsonl", trace_id="tr-y"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    assert response["Content-Disposition"].startswith(f'attachment; filename="audit-{world.client_a.slug}-')
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(line["seq"], line["trace_id"]) for line in lines] == [(4, "tr-y"), (5, "tr-y")]
    response = browser.get(url("audit_export", "csv", kind="event.1"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert [(row["seq"], row["kind"]) for row in rows] == [("1", "event.1"), ("4", "event.1")]


def test_export_with_bad_filters_or_format_is_refused(world, client_host):
    append_many(world.client_a, 1)
    browser = client_host("client_a_admin")
    response = browser.get(url("audit_export", "jsonl", date_from="2026-03-03", date_to="2026-03-01"))
    assert response.status_code == 302 and response["Location"].startswith(url("audit_list"))
    assert browser.get(url("audit_export", "xml")).status_code == 404


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_verify_with_htmx_swaps_in_the_result(world, client_host, persona):
    append_many(world.client_a, 3)
    response = client_host(persona).post(url("audit_verify"), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="audit-verify-result"' in page and "<html" not in page
    assert "Chain intact — 3 events" in page


def test_verify_shows_the_first_broken_link(world, client_host):
    append_many(world.client_a, 4)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).update(subject="rewritten")
    response = client_host("client_a_viewer").post(url("audit_verify"), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert 'data-ok="false"' in page
    assert "Broken at event #2: event #2 was changed after it was written" in page


def test_verify_without_htmx_comes_back_as_a_message(world, client_host):
    append_many(world.client_a, 2)
    browser = client_host("client_a_operator")
    response = browser.post(url("audit_verify"), follow=True)
    assert response.redirect_chain[-1][0] == url("audit_list")
    assert "Chain intact — 2 events" in response.content.decode()


def test_nav_links_to_the_audit_log(world, client_host):
    page = client_host("client_a_viewer").get(url("home")).content.decode()
    assert f'href="{url("audit_list")}"' in page


@pytest.mark.parametrize(
    "persona", ["vendor_admin", "partner_a_admin", "partner_a_engineer", "client_b_admin"]
)
def test_outsiders_never_see_the_clients_events(world, client_host, persona):
    append_many(world.client_a, 1, subject="Secret subject")
    browser = client_host(persona)
    for response in (
        browser.get(url("audit_list")),
        browser.get(url("audit_export", "jsonl")),
        browser.post(url("audit_verify")),
    ):
        assert response.status_code == 403
        assert b"Secret subject" not in response.content
