"""Super-admin portal: partners, invitations, clients overview."""

import re

from django.core import mail

from apps.accounts.models import PartnerMembership, PartnerRole, User
from apps.tenancy.models import Partner


def test_home_and_lists_render_for_platform_admin(world, platform):
    browser = platform("vendor_admin")
    for url in [
        "/vendor/",
        "/vendor/partners/",
        "/vendor/clients/",
        f"/vendor/partners/{world.partner_a.pk}/",
        f"/vendor/clients/{world.client_a.pk}/",
        "/vendor/partners/new/",
    ]:
        response = browser.get(url)
        assert response.status_code == 200, url
    page = browser.get("/vendor/clients/").content.decode()
    assert "Client tw-alpha" in page and "Client tw-bravo" in page


def test_create_partner_validates_and_creates(world, platform):
    browser = platform("vendor_admin")
    response = browser.post("/vendor/partners/new/", {"name": "", "slug": "Bad Slug"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Partner.objects.filter(slug="bad-slug").exists()
    response = browser.post(
        "/vendor/partners/new/", {"name": "Contoso", "slug": "contoso", "contact_email": ""}
    )
    partner = Partner.objects.get(slug="contoso")
    assert response.status_code == 302 and response["Location"] == f"/vendor/partners/{partner.pk}/invite/"


def test_invite_partner_admin_sends_one_time_link(world, platform, django_capture_on_commit_callbacks):
    browser = platform("vendor_admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            f"/vendor/partners/{world.partner_b.pk}/invite/",
            {"full_name": "Pat Lee", "email": "Pat@Contoso.test"},
        )
    assert response.status_code == 302
    user = User.objects.get(email="pat@contoso.test")
    assert not user.has_usable_password()
    assert PartnerMembership.objects.get(user=user).role == PartnerRole.PARTNER_ADMIN
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@contoso.test"]
    link = re.search(r"http://localhost/accounts/set-password/\S+", mail.outbox[0].body).group(0)
    path = link.removeprefix("http://localhost")
    anonymous = platform()
    form_page = anonymous.get(path, follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = anonymous.post(set_url, {"new_password1": "a-long-secret-42", "new_password2": "a-long-secret-42"})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-long-secret-42")
    # The link is single use.
    again = anonymous.get(path, follow=True)
    assert "invalid or has already been used" in again.content.decode()


def test_invite_refuses_member_of_another_partner(world, platform):
    browser = platform("vendor_admin")
    engineer = world.users["partner_a_engineer"]
    response = browser.post(
        f"/vendor/partners/{world.partner_b.pk}/invite/", {"full_name": "X", "email": engineer.email}
    )
    assert response.status_code == 200
    assert "cannot be invited here" in response.content.decode()
    assert PartnerMembership.objects.get(user=engineer).partner == world.partner_a
    assert mail.outbox == []


def test_deactivate_requires_post_and_blocks_partner_portal(world, platform):
    browser = platform("vendor_admin")
    confirm = browser.get(f"/vendor/partners/{world.partner_a.pk}/deactivate/")
    assert confirm.status_code == 200 and "Deactivate partner" in confirm.content.decode()
    world.partner_a.refresh_from_db()
    assert world.partner_a.is_active
    browser.post(f"/vendor/partners/{world.partner_a.pk}/deactivate/")
    world.partner_a.refresh_from_db()
    assert not world.partner_a.is_active
    from apps.accounts.access import partner_membership_of

    assert partner_membership_of(world.users["partner_a_admin"]) is None
    history = browser.get(f"/vendor/partners/{world.partner_a.pk}/").content.decode()
    assert "is_active" in history


def test_client_list_filters(world, platform):
    browser = platform("vendor_admin")
    page = browser.get("/vendor/clients/", {"partner": world.partner_b.pk}).content.decode()
    assert "Client tw-bravo" in page and "Client tw-alpha" not in page
    page = browser.get("/vendor/clients/", {"status": "failed"}).content.decode()
    assert "No client projects" in page
