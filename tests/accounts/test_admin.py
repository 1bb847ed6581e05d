"""Django admin: vendor support reads, platform admins edit, nobody else gets in."""

import pytest

from apps.tenancy.models import Partner


def test_support_can_view_but_not_change(world, platform):
    browser = platform("support")
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/tenancy/partner/").status_code == 200
    detail = browser.get(f"/admin/tenancy/partner/{world.partner_a.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert browser.get("/admin/tenancy/partner/add/").status_code == 403
    response = browser.post(f"/admin/tenancy/partner/{world.partner_a.pk}/change/", {"name": "Hijacked"})
    assert response.status_code == 403
    world.partner_a.refresh_from_db()
    assert world.partner_a.name == "Partner A"
    assert (
        browser.post(f"/admin/tenancy/partner/{world.partner_a.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Partner.objects.filter(pk=world.partner_a.pk).exists()


def test_platform_admin_can_change(world, platform):
    browser = platform("vendor_admin")
    detail = browser.get(f"/admin/tenancy/partner/{world.partner_a.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' in detail.content.decode()


@pytest.mark.parametrize("persona", ["partner_a_admin", "client_a_admin", "anonymous"])
def test_non_vendor_users_are_sent_to_admin_login(world, platform, persona):
    response = platform(persona).get("/admin/tenancy/partner/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_is_not_served_on_client_hosts(world, client_host):
    assert client_host("client_a_admin").get("/admin/").status_code == 404


def test_nobody_reads_api_tokens_in_the_admin(world, platform):
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=world.users["vendor_admin"])
    for persona in ("support", "vendor_admin"):
        browser = platform(persona)
        assert browser.get("/admin/authtoken/tokenproxy/").status_code == 404
        assert "authtoken" not in browser.get("/admin/").content.decode()


def test_support_sees_only_the_support_apps(world, platform):
    index = platform("support").get("/admin/").content.decode()
    assert "/admin/tenancy/" in index and "/admin/accounts/" in index
    assert "/admin/axes/" not in index and "/admin/sessions/" not in index
    assert platform("support").get("/admin/axes/accessattempt/").status_code == 403


def test_clients_and_users_cannot_be_deleted_in_the_admin(world, platform):
    from apps.accounts.models import User
    from apps.tenancy.models import Client

    browser = platform("vendor_admin")
    assert (
        browser.post(f"/admin/tenancy/client/{world.client_a.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Client.objects.filter(pk=world.client_a.pk).exists()
    viewer = world.users["client_a_viewer"]
    assert browser.post(f"/admin/accounts/user/{viewer.pk}/delete/", {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=viewer.pk).exists()
