"""Super-admin portal: per-client audit activity, from the public counts only — never an event's contents."""

from datetime import UTC, timedelta

from django.urls import reverse
from django.utils import timezone

from apps.audit.services import audit_counts_aggregate
from apps.tenancy.models import ClientAuditCount
from tests.audit.helpers import append_many

URL = reverse("superadmin:audit_counts", urlconf="config.urls_public")


def test_counts_per_client_and_day_without_contents(world, platform):
    append_many(world.client_a, 2, subject="Confidential ticket text", trace_id="tr-secret")
    append_many(world.client_b, 1)
    audit_counts_aggregate()
    response = platform("vendor_admin").get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    rows = {(row.client, row.total, tuple(row.kinds)) for row in response.context["page_obj"]}
    assert rows == {
        (world.client_a, 2, (("event.1", 1), ("event.2", 1))),
        (world.client_b, 1, (("event.1", 1),)),
    }
    assert world.client_a.name in page and "event.2" in page
    assert "Confidential" not in page and "tr-secret" not in page
    assert response.context["totals"] == [("event.1", 2), ("event.2", 1)]


def test_filter_by_client_and_period(world, platform):
    today = timezone.now().astimezone(UTC).date()
    ClientAuditCount.objects.create(
        client=world.client_a, day=today - timedelta(days=20), kind="decision", count=5
    )
    ClientAuditCount.objects.create(client=world.client_b, day=today, kind="decision", count=1)
    browser = platform("vendor_admin")
    week = browser.get(URL).context["page_obj"]
    assert [(row.client, row.total) for row in week] == [(world.client_b, 1)]
    month = browser.get(URL, {"days": 30}).context["page_obj"]
    assert [(row.client, row.day) for row in month] == [
        (world.client_b, today),
        (world.client_a, today - timedelta(days=20)),
    ]
    only_a = browser.get(URL, {"days": 30, "client": world.client_a.pk}).context["page_obj"]
    assert [row.client for row in only_a] == [world.client_a]


def test_empty_state(world, platform):
    page = platform("vendor_admin").get(URL).content.decode()
    assert "No audit activity" in page
