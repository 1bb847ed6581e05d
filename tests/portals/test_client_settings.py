"""The client's own settings: only its client admins change them, and each change is audited."""

from auditlog.models import LogEntry
from django_tenants.utils import schema_context

from apps.tenancy.models import Client


def test_client_admin_requires_approval_for_version_changes(world, client_host):
    browser = client_host("client_a_admin")
    page = browser.get("/settings/")
    assert page.status_code == 200 and "need a client admin" in page.content.decode()
    response = browser.post("/settings/", {"require_version_change_approval": "on"})
    assert response.status_code == 302
    world.client_a.refresh_from_db()
    assert world.client_a.require_version_change_approval
    # The change is in the client's own log (its schema), with who made it.
    with schema_context(world.client_a.schema_name):
        entry = LogEntry.objects.filter(object_pk=str(world.client_a.pk)).latest("timestamp")
        assert entry.actor == world.users["client_a_admin"]
        assert "require_version_change_approval" in entry.changes_dict
    browser.post("/settings/", {})
    world.client_a.refresh_from_db()
    assert not world.client_a.require_version_change_approval


def test_operators_viewers_and_other_clients_cannot_change_settings(world, client_host):
    for persona in ("client_a_operator", "client_a_viewer", "client_b_admin"):
        response = client_host(persona).post("/settings/", {"require_version_change_approval": "on"})
        assert response.status_code == 403
    assert not Client.objects.get(pk=world.client_a.pk).require_version_change_approval


def test_the_setting_is_read_only_in_the_django_admin(world, platform):
    page = platform("vendor_admin").get(f"/admin/tenancy/client/{world.client_a.pk}/change/").content.decode()
    assert 'name="require_version_change_approval"' not in page
