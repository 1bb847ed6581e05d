"""Management portal (partner teams): client projects, provisioning status, engineers, the team."""

import re

import pytest
from django.core import mail

from apps.accounts.access import client_engineers, client_list
from apps.accounts.models import PartnerMembership, PartnerRole, User
from apps.accounts.services import client_engineer_unassign
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client, Domain
from tests.conftest import http_client


def page_of(response) -> str:
    return response.content.decode()


def checkboxes(page: str) -> dict[int, bool]:
    """The engineer checkboxes of an assignment form: user id → checked."""
    inputs = re.findall(r'<input type="checkbox" name="engineers"[^>]*>', page)
    return {int(re.search(r'value="(\d+)"', tag).group(1)): " checked" in tag for tag in inputs}


def engineer_sees(world) -> set[str]:
    return set(client_list(actor=world.users["partner_a_engineer"]).values_list("slug", flat=True))


# --- Client projects list -----------------------------------------------------


def test_admin_sees_partner_clients_with_status_and_create_button(world, platform):
    page = page_of(platform("partner_a_admin").get("/partner/"))
    assert "Client tw-alpha" in page and "Client tw-amber" in page
    assert "Client tw-bravo" not in page
    assert "Partner A" in page
    assert "New client project" in page
    assert 'class="badge bg-green-lt">Ready' in page


def test_engineer_sees_only_assigned_clients(world, platform):
    browser = platform("partner_a_engineer")
    page = page_of(browser.get("/partner/"))
    assert "Client tw-alpha" in page and "Client tw-amber" not in page
    assert "New client project" not in page
    assert browser.get(f"/partner/clients/{world.client_a.pk}/").status_code == 200
    assert browser.get(f"/partner/clients/{world.client_a2.pk}/").status_code == 404
    assert browser.get(f"/partner/clients/{world.client_a2.pk}/status/").status_code == 404


def test_engineer_without_assignments_gets_empty_state(world, platform):
    client_engineer_unassign(client=world.client_a, user=world.users["partner_a_engineer"], actor=None)
    page = page_of(platform("partner_a_engineer").get("/partner/"))
    assert "No client projects assigned to you" in page


def test_client_list_is_paginated(world, platform):
    for n in range(30):
        tenancy_services.client_create(
            partner=world.partner_a, name=f"Bulk {n:02d}", slug=f"bulk-{n:02d}", actor=None, schedule=False
        )
    browser = platform("partner_a_admin")
    first = page_of(browser.get("/partner/"))
    assert "of <span>32</span>" in first and 'rel="next"' in first
    second = page_of(browser.get("/partner/", {"page": 2}))
    assert "Client tw-amber" in second and "Bulk 00" not in second


@pytest.mark.parametrize("persona", ["vendor_admin", "support", "client_a_admin"])
def test_people_outside_partner_teams_are_refused(world, platform, persona):
    assert platform(persona).get("/partner/").status_code == 403


def test_anonymous_is_sent_to_login(world, platform):
    response = platform().get(f"/partner/clients/{world.client_a.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_other_partner_gets_404_on_clients(world, platform):
    browser = platform("partner_b_admin")
    pk = world.client_a.pk
    for url in [
        f"/partner/clients/{pk}/",
        f"/partner/clients/{pk}/status/",
        f"/partner/clients/{pk}/engineers/",
    ]:
        assert browser.get(url).status_code == 404, url
    assert browser.post(f"/partner/clients/{pk}/retry/").status_code == 404
    engineer = world.users["partner_a_engineer"]
    assert (
        browser.post(
            f"/partner/clients/{world.client_a2.pk}/engineers/", {"engineers": [engineer.pk]}
        ).status_code
        == 404
    )
    assert "tw-amber" not in engineer_sees(world)
    assert "Client tw-alpha" not in page_of(browser.get("/partner/"))


# --- Creating a client project ----------------------------------------------------


def test_create_client_starts_provisioning(world, platform):
    browser = platform("partner_a_admin")
    form = browser.get("/partner/clients/new/")
    assert form.status_code == 200 and "&lt;slug&gt;.localhost" in page_of(form)
    response = browser.post("/partner/clients/new/", {"name": "Umbrella Corp", "slug": "umbrella"})
    client = Client.objects.get(slug="umbrella")
    assert response.status_code == 302 and response["Location"] == f"/partner/clients/{client.pk}/"
    assert client.partner == world.partner_a and client.status == Client.Status.PROVISIONING
    assert client.schema_name == "client_umbrella" and client.created_by == world.users["partner_a_admin"]
    assert Domain.objects.get(tenant=client).domain == "umbrella.localhost"
    detail = page_of(browser.get(response["Location"]))
    assert "is being provisioned" in detail
    assert 'data-status="provisioning"' in detail and 'hx-trigger="every 2s"' in detail


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "slug": "fine-slug"}, "This field is required."),
        (
            {"name": "Bad", "slug": "Bad Slug"},
            "lowercase letters, digits and hyphens, starting with a letter",
        ),
        ({"name": "Short", "slug": "ab"}, "lowercase letters, digits and hyphens, starting with a letter"),
        ({"name": "Reserved", "slug": "www"}, "This name is reserved"),
        # Slugs are global: another partner's client already has this one.
        ({"name": "Dup slug", "slug": "tw-bravo"}, "Client with this Slug already exists."),
        ({"name": "Client tw-alpha", "slug": "another-alpha"}, "already has a client project with this name"),
    ],
)
def test_create_client_shows_validation_errors_and_writes_nothing(world, platform, data, message):
    clients_before, domains_before = Client.objects.count(), Domain.objects.count()
    response = platform("partner_a_admin").post("/partner/clients/new/", data)
    assert response.status_code == 200
    page = page_of(response)
    assert message in page
    assert "is-invalid" in page
    assert (Client.objects.count(), Domain.objects.count()) == (clients_before, domains_before)


def test_slug_errors_are_reported_once(world, platform):
    browser = platform("partner_a_admin")
    page = page_of(browser.post("/partner/clients/new/", {"name": "X", "slug": "tw-amber"}))
    assert page.count("already exists") == 1  # not again for the schema name derived from it
    page = page_of(browser.post("/partner/clients/new/", {"name": "X", "slug": "Bad Slug"}))
    assert "underscores" not in page  # SlugField's looser message would contradict ours


# --- Client detail and status ------------------------------------------------------


def test_client_detail_shows_host_engineers_users_and_history(world, platform):
    browser = platform("partner_a_admin")
    page = page_of(browser.get(f"/partner/clients/{world.client_a.pk}/", SERVER_PORT="8000"))
    assert 'href="http://tw-alpha.localhost:8000/"' in page
    assert 'id="client-status"' in page and 'data-status="ready"' in page
    assert "hx-trigger" not in page  # a ready client is not polled
    assert world.users["partner_a_engineer"].email in page
    assert world.users["client_a_operator"].email in page
    assert "History" in page and "Assign engineers" in page
    default_port = page_of(browser.get(f"/partner/clients/{world.client_a.pk}/"))
    assert 'href="http://tw-alpha.localhost/"' in default_port


def test_engineer_detail_is_read_only(world, platform):
    page = page_of(platform("partner_a_engineer").get(f"/partner/clients/{world.client_a.pk}/"))
    assert "Assign engineers" not in page


def test_status_fragment_is_only_the_fragment(world, platform):
    browser = platform("partner_a_admin")
    fragment = page_of(browser.get(f"/partner/clients/{world.client_a.pk}/status/", HTTP_HX_REQUEST="true"))
    assert fragment.lstrip().startswith('<div class="card" id="client-status"')
    assert 'data-status="ready"' in fragment and "hx-get" not in fragment
    assert "<html" not in fragment and "<nav" not in fragment and "History" not in fragment

    client = tenancy_services.client_create(
        partner=world.partner_a, name="Pending", slug="pending", actor=None, schedule=False
    )
    fragment = page_of(browser.get(f"/partner/clients/{client.pk}/status/"))
    assert 'data-status="provisioning"' in fragment
    assert f'hx-get="/partner/clients/{client.pk}/status/"' in fragment
    assert 'hx-trigger="every 2s"' in fragment and 'hx-swap="outerHTML"' in fragment


# --- Retrying a failed provisioning ------------------------------------------------


def failed_client(world) -> Client:
    client = tenancy_services.client_create(
        partner=world.partner_a, name="Broken", slug="broken", actor=None, schedule=False
    )
    Client.objects.filter(pk=client.pk).update(
        status=Client.Status.FAILED, provisioning_error="RuntimeError: disk full"
    )
    client.refresh_from_db()
    return client


def test_retry_failed_client(world, platform):
    client = failed_client(world)
    browser = platform("partner_a_admin")
    detail = page_of(browser.get(f"/partner/clients/{client.pk}/"))
    assert "RuntimeError: disk full" in detail and "Retry provisioning" in detail
    assert browser.get(f"/partner/clients/{client.pk}/retry/").status_code == 405
    response = browser.post(f"/partner/clients/{client.pk}/retry/", follow=True)
    assert response.redirect_chain[-1][0] == f"/partner/clients/{client.pk}/"
    assert "started again" in page_of(response)
    client.refresh_from_db()
    assert client.status == Client.Status.PROVISIONING and client.provisioning_error == ""


def test_retry_of_ready_client_is_refused_with_message(world, platform):
    response = platform("partner_a_admin").post(f"/partner/clients/{world.client_a.pk}/retry/", follow=True)
    assert "Only a client whose provisioning failed or stalled can be retried." in page_of(response)
    world.client_a.refresh_from_db()
    assert world.client_a.status == Client.Status.READY


# --- Engineer assignments --------------------------------------------------------


def test_assign_and_unassign_engineers(world, platform):
    browser = platform("partner_a_admin")
    engineer = world.users["partner_a_engineer"]
    form = page_of(browser.get(f"/partner/clients/{world.client_a.pk}/engineers/"))
    assert checkboxes(form) == {engineer.pk: True}
    form = page_of(browser.get(f"/partner/clients/{world.client_a2.pk}/engineers/"))
    # Only the partner's engineers are offered (not its admins), none assigned here yet.
    assert checkboxes(form) == {engineer.pk: False}
    assert engineer.email in form

    response = browser.post(f"/partner/clients/{world.client_a2.pk}/engineers/", {"engineers": [engineer.pk]})
    assert response.status_code == 302
    assert engineer_sees(world) == {"tw-alpha", "tw-amber"}
    assert platform("partner_a_engineer").get(f"/partner/clients/{world.client_a2.pk}/").status_code == 200

    response = browser.post(f"/partner/clients/{world.client_a.pk}/engineers/", {})
    assert response.status_code == 302
    assert engineer_sees(world) == {"tw-amber"}
    assert client_engineers(client=world.client_a) == []
    assert platform("partner_a_engineer").get(f"/partner/clients/{world.client_a.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["partner_b_admin", "partner_a_admin", "client_a_admin"])
def test_assign_refuses_people_who_are_not_the_partners_engineers(world, platform, persona):
    engineer = world.users["partner_a_engineer"]
    outsider = world.users[persona]
    response = platform("partner_a_admin").post(
        f"/partner/clients/{world.client_a2.pk}/engineers/", {"engineers": [engineer.pk, outsider.pk]}
    )
    assert response.status_code == 200
    assert "is not one of your team&#x27;s engineers" in page_of(response)
    assert "tw-amber" not in engineer_sees(world)
    assert client_engineers(client=world.client_a2) == []


# --- Team ------------------------------------------------------------------------


def test_team_list_for_admin_and_engineer(world, platform):
    admin_page = page_of(platform("partner_a_admin").get("/partner/team/"))
    engineer_membership = PartnerMembership.objects.get(user=world.users["partner_a_engineer"])
    own_membership = PartnerMembership.objects.get(user=world.users["partner_a_admin"])
    assert world.users["partner_a_engineer"].email in admin_page and "Partner engineer" in admin_page
    assert world.users["partner_b_admin"].email not in admin_page
    assert "Add engineer" in admin_page
    assert f"/partner/team/{engineer_membership.pk}/remove/" in admin_page
    assert f"/partner/team/{own_membership.pk}/remove/" not in admin_page  # no button to remove oneself

    engineer_page = page_of(platform("partner_a_engineer").get("/partner/team/"))
    assert world.users["partner_a_admin"].email in engineer_page
    assert "Add engineer" not in engineer_page and "/remove/" not in engineer_page


def test_team_invite_adds_member_and_sends_email(world, platform, django_capture_on_commit_callbacks):
    browser = platform("partner_a_admin")
    form = page_of(browser.get("/partner/team/invite/"))
    assert '<option value="partner_engineer" selected>' in form
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/partner/team/invite/",
            {"full_name": "Eve Engineer", "email": "Eve@Example.test", "role": "partner_engineer"},
        )
    assert response.status_code == 302 and response["Location"] == "/partner/team/"
    user = User.objects.get(email="eve@example.test")
    membership = PartnerMembership.objects.get(user=user)
    assert membership.partner == world.partner_a and membership.role == PartnerRole.PARTNER_ENGINEER
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["eve@example.test"]
    assert "http://localhost/accounts/set-password/" in mail.outbox[0].body


def test_team_invite_refuses_member_of_another_partner(world, platform, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = platform("partner_a_admin").post(
            "/partner/team/invite/",
            {"full_name": "B", "email": world.users["partner_b_admin"].email, "role": "partner_engineer"},
        )
    assert response.status_code == 200
    assert "cannot be invited here" in page_of(response)
    assert PartnerMembership.objects.get(user=world.users["partner_b_admin"]).partner == world.partner_b
    assert mail.outbox == []


def test_team_invite_validates_input(world, platform):
    members_before = PartnerMembership.objects.count()
    response = platform("partner_a_admin").post(
        "/partner/team/invite/", {"full_name": "", "email": "not-an-email", "role": "platform_admin"}
    )
    page = page_of(response)
    assert response.status_code == 200
    assert "This field is required." in page and "Enter a valid email address." in page
    assert "Select a valid choice." in page
    assert PartnerMembership.objects.count() == members_before


def test_remove_member_confirms_then_removes(world, platform):
    browser = platform("partner_a_admin")
    engineer = world.users["partner_a_engineer"]
    membership = PartnerMembership.objects.get(user=engineer)
    confirm = browser.get(f"/partner/team/{membership.pk}/remove/")
    assert confirm.status_code == 200
    assert "Remove from team" in page_of(confirm) and 'method="post"' in page_of(confirm)
    assert PartnerMembership.objects.filter(pk=membership.pk).exists()

    response = browser.post(f"/partner/team/{membership.pk}/remove/", follow=True)
    assert response.redirect_chain[-1][0] == "/partner/team/"
    assert "was removed from the team" in page_of(response)
    assert not PartnerMembership.objects.filter(pk=membership.pk).exists()
    # Their client assignments went with them.
    assert client_engineers(client=world.client_a) == []
    assert platform("partner_a_engineer").get("/partner/").status_code == 403


def test_cannot_remove_self_nor_the_last_admin(world, platform):
    # Only partner admins remove members, so the last admin could only remove itself: the
    # self-removal refusal is what keeps a partner from losing its last admin here.
    admin = world.users["partner_a_admin"]
    own = PartnerMembership.objects.get(user=admin)
    response = platform("partner_a_admin").post(f"/partner/team/{own.pk}/remove/", follow=True)
    assert "You cannot remove yourself from the team." in page_of(response)
    assert PartnerMembership.objects.filter(pk=own.pk).exists()

    # With a second admin, one admin can remove the other, and the remaining one stays.
    second = User.objects.create_user(email="second.admin@example.com", password="x-long-password")
    second_membership = PartnerMembership.objects.create(
        user=second, partner=world.partner_a, role=PartnerRole.PARTNER_ADMIN
    )
    second_browser = http_client(second)
    second_browser.post(f"/partner/team/{own.pk}/remove/")
    assert not PartnerMembership.objects.filter(pk=own.pk).exists()
    response = second_browser.post(f"/partner/team/{second_membership.pk}/remove/", follow=True)
    assert "You cannot remove yourself" in page_of(response)
    assert (
        PartnerMembership.objects.filter(partner=world.partner_a, role=PartnerRole.PARTNER_ADMIN).count() == 1
    )


def test_other_partners_members_are_404(world, platform):
    engineer_membership = PartnerMembership.objects.get(user=world.users["partner_a_engineer"])
    browser = platform("partner_b_admin")
    assert browser.get(f"/partner/team/{engineer_membership.pk}/remove/").status_code == 404
    assert browser.post(f"/partner/team/{engineer_membership.pk}/remove/").status_code == 404
    assert PartnerMembership.objects.filter(pk=engineer_membership.pk).exists()
    assert world.users["partner_a_engineer"].email not in page_of(browser.get("/partner/team/"))


# --- Engineers are refused admin-only pages -------------------------------------


def test_engineer_is_refused_admin_pages_and_nothing_changes(
    world, platform, django_capture_on_commit_callbacks
):
    browser = platform("partner_a_engineer")
    engineer = world.users["partner_a_engineer"]
    admin_membership = PartnerMembership.objects.get(user=world.users["partner_a_admin"])
    broken = failed_client(world)
    before = (Client.objects.count(), Domain.objects.count(), PartnerMembership.objects.count())

    for url in [
        "/partner/clients/new/",
        f"/partner/clients/{world.client_a.pk}/engineers/",
        "/partner/team/invite/",
        f"/partner/team/{admin_membership.pk}/remove/",
    ]:
        assert browser.get(url).status_code == 403, url
    with django_capture_on_commit_callbacks(execute=True):
        posts = [
            ("/partner/clients/new/", {"name": "Sneaky", "slug": "sneaky"}),
            (f"/partner/clients/{broken.pk}/retry/", {}),
            (f"/partner/clients/{world.client_a2.pk}/engineers/", {"engineers": [engineer.pk]}),
            (f"/partner/clients/{world.client_a.pk}/engineers/", {}),
            ("/partner/team/invite/", {"full_name": "X", "email": "x@example.test", "role": "partner_admin"}),
            (f"/partner/team/{admin_membership.pk}/remove/", {}),
        ]
        for url, data in posts:
            assert browser.post(url, data).status_code == 403, url

    assert (Client.objects.count(), Domain.objects.count(), PartnerMembership.objects.count()) == before
    broken.refresh_from_db()
    assert broken.status == Client.Status.FAILED
    assert engineer_sees(world) == {"tw-alpha"}
    assert not User.objects.filter(email="x@example.test").exists()
    assert mail.outbox == []
