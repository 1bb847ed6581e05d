"""Client dashboard (client host): home, users, invitations, role changes, removals."""

import re

import pytest
from django.core import mail

from apps.accounts.models import ClientMembership, ClientRole, User

CLIENT_ROLES = ["client_a_admin", "client_a_operator", "client_a_viewer"]
NON_ADMINS = ["client_a_operator", "client_a_viewer"]


def membership_of(world, persona, client=None) -> ClientMembership:
    return ClientMembership.objects.get(user=world.users[persona], client=client or world.client_a)


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_home_shows_client_partner_users_and_activity(world, client_host, persona):
    response = client_host(persona).get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Client tw-alpha" in page and "Partner A" in page
    assert "bg-green-lt" in page and "Ready" in page  # status badge
    assert 'data-testid="role-count-client_admin">1<' in page
    assert 'data-testid="role-count-operator">1<' in page
    assert 'data-testid="role-count-viewer">1<' in page
    for persona in CLIENT_ROLES:
        assert world.users[persona].email in page
    assert "Recent activity" in page
    # Nothing of another client.
    assert "client.b.admin@example.com" not in page and "tw-bravo" not in page


@pytest.mark.parametrize("persona", CLIENT_ROLES)
def test_user_list_for_every_role_shows_admin_controls_to_admins_only(world, client_host, persona):
    response = client_host(persona).get("/users/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "client.a.operator@example.com" in page and "client.b.admin@example.com" not in page
    is_admin = persona == "client_a_admin"
    operator = membership_of(world, "client_a_operator")
    assert ("/users/invite/" in page) is is_admin
    assert (f"/users/{operator.pk}/role/" in page) is is_admin
    assert (f"/users/{operator.pk}/remove/" in page) is is_admin


def test_anonymous_is_sent_to_login_and_other_users_get_403(world, client_host):
    response = client_host().get("/users/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Users without a role in this client: client B's admin, partner and vendor staff.
    for persona in ["client_b_admin", "partner_a_admin", "vendor_admin"]:
        assert client_host(persona).get("/").status_code == 403, persona


@pytest.mark.parametrize("persona", NON_ADMINS)
def test_non_admins_cannot_invite_change_roles_or_remove(world, client_host, persona):
    browser = client_host(persona)
    viewer = membership_of(world, "client_a_viewer")
    assert browser.get("/users/invite/").status_code == 403
    invite = {"full_name": "Eve", "email": "eve@example.com", "role": ClientRole.CLIENT_ADMIN}
    response = browser.post("/users/invite/", invite)
    assert response.status_code == 403
    assert browser.post(f"/users/{viewer.pk}/role/", {"role": ClientRole.CLIENT_ADMIN}).status_code == 403
    assert browser.get(f"/users/{viewer.pk}/remove/").status_code == 403
    assert browser.post(f"/users/{viewer.pk}/remove/").status_code == 403
    # Nothing changed.
    assert not User.objects.filter(email="eve@example.com").exists()
    viewer.refresh_from_db()
    assert viewer.role == ClientRole.VIEWER
    assert ClientMembership.objects.filter(client=world.client_a).count() == 3
    assert mail.outbox == []


def test_invite_creates_user_and_mails_a_link_on_the_client_host(
    world, client_host, django_capture_on_commit_callbacks
):
    browser = client_host("client_a_admin")
    assert browser.get("/users/invite/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        invite = {"full_name": "Olga Ops", "email": "Olga@Example.com", "role": ClientRole.OPERATOR}
        response = browser.post("/users/invite/", invite)
    assert response.status_code == 302 and response["Location"] == "/users/"
    user = User.objects.get(email="olga@example.com")
    assert not user.has_usable_password()
    membership = ClientMembership.objects.get(user=user)
    assert membership.client == world.client_a and membership.role == ClientRole.OPERATOR
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["olga@example.com"]
    assert "Client tw-alpha" in mail.outbox[0].body
    link = re.search(r"http://tw-alpha\.localhost/accounts/set-password/\S+", mail.outbox[0].body).group(0)
    # The flash message is on the list the admin lands on.
    assert "Invitation sent to olga@example.com" in browser.get("/users/").content.decode()
    # The invitee sets a password on the client's host and can then open the dashboard.
    anonymous = client_host()
    form_page = anonymous.get(link.removeprefix("http://tw-alpha.localhost"), follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    passwords = {"new_password1": "a-long-secret-42", "new_password2": "a-long-secret-42"}
    done = anonymous.post(form_page.redirect_chain[-1][0], passwords)
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-long-secret-42")


def test_invite_validates_and_refuses_existing_member(world, client_host, django_capture_on_commit_callbacks):
    browser = client_host("client_a_admin")
    with django_capture_on_commit_callbacks(execute=True):
        empty = browser.post("/users/invite/", {"full_name": "", "email": "not-an-email", "role": "owner"})
        existing = browser.post(
            "/users/invite/",
            {"full_name": "Again", "email": "client.a.viewer@example.com", "role": ClientRole.OPERATOR},
        )
    assert empty.status_code == 200
    page = empty.content.decode()
    assert "This field is required." in page and "Enter a valid email address." in page
    assert "Select a valid choice." in page and "is-invalid" in page
    assert existing.status_code == 200
    assert "is already a user of Client tw-alpha" in existing.content.decode()
    assert membership_of(world, "client_a_viewer").role == ClientRole.VIEWER
    assert ClientMembership.objects.filter(client=world.client_a).count() == 3
    assert mail.outbox == []


def test_invite_adds_a_user_of_another_client_without_touching_their_other_role(
    world, client_host, django_capture_on_commit_callbacks
):
    browser = client_host("client_a_admin")
    with django_capture_on_commit_callbacks(execute=True):
        invite = {"full_name": "B", "email": "client.b.admin@example.com", "role": ClientRole.VIEWER}
        response = browser.post("/users/invite/", invite)
    assert response.status_code == 302
    assert membership_of(world, "client_b_admin", world.client_a).role == ClientRole.VIEWER
    assert membership_of(world, "client_b_admin", world.client_b).role == ClientRole.CLIENT_ADMIN
    # An existing account signs in instead of setting a password.
    assert "http://tw-alpha.localhost/accounts/login/" in mail.outbox[0].body


def test_role_change_plain_post_redirects_with_message(world, client_host):
    browser = client_host("client_a_admin")
    operator = membership_of(world, "client_a_operator")
    response = browser.post(f"/users/{operator.pk}/role/", {"role": ClientRole.VIEWER})
    assert response.status_code == 302 and response["Location"] == "/users/"
    operator.refresh_from_db()
    assert operator.role == ClientRole.VIEWER
    assert "client.a.operator@example.com is now viewer" in browser.get("/users/").content.decode()
    assert browser.get(f"/users/{operator.pk}/role/").status_code == 405


def test_role_change_htmx_answers_with_the_updated_row(world, client_host):
    browser = client_host("client_a_admin")
    viewer = membership_of(world, "client_a_viewer")
    url = f"/users/{viewer.pk}/role/"
    response = browser.post(url, {"role": ClientRole.OPERATOR}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode().strip()
    assert fragment.startswith(f'<tr id="member-{viewer.pk}">') and fragment.endswith("</tr>")
    assert "<html" not in fragment and "<tbody" not in fragment
    assert '<option value="operator" selected>' in fragment
    assert "Role saved." in fragment
    viewer.refresh_from_db()
    assert viewer.role == ClientRole.OPERATOR


def test_invalid_role_is_refused(world, client_host):
    browser = client_host("client_a_admin")
    viewer = membership_of(world, "client_a_viewer")
    response = browser.post(f"/users/{viewer.pk}/role/", {"role": "owner"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Choose one of the listed roles." in response.content.decode()
    viewer.refresh_from_db()
    assert viewer.role == ClientRole.VIEWER


def test_last_admin_cannot_be_demoted(world, client_host):
    browser = client_host("client_a_admin")
    admin = membership_of(world, "client_a_admin")
    response = browser.post(f"/users/{admin.pk}/role/", {"role": ClientRole.VIEWER})
    assert response.status_code == 302
    assert "A client needs at least one client admin." in browser.get("/users/").content.decode()
    fragment = browser.post(f"/users/{admin.pk}/role/", {"role": ClientRole.VIEWER}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "A client needs at least one client admin." in text
    assert '<option value="client_admin" selected>' in text  # the row shows the role it kept
    admin.refresh_from_db()
    assert admin.role == ClientRole.CLIENT_ADMIN


def test_admin_demoting_themselves_gets_a_full_reload(world, client_host):
    browser = client_host("client_a_admin")
    operator = membership_of(world, "client_a_operator")
    browser.post(f"/users/{operator.pk}/role/", {"role": ClientRole.CLIENT_ADMIN})
    admin = membership_of(world, "client_a_admin")
    response = browser.post(f"/users/{admin.pk}/role/", {"role": ClientRole.OPERATOR}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"] == "/users/"
    admin.refresh_from_db()
    assert admin.role == ClientRole.OPERATOR
    # Their admin controls are gone.
    assert browser.get("/users/invite/").status_code == 403


def test_remove_asks_for_confirmation_then_removes(world, client_host):
    browser = client_host("client_a_admin")
    viewer = membership_of(world, "client_a_viewer")
    confirm = browser.get(f"/users/{viewer.pk}/remove/")
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Remove client.a.viewer@example.com?" in page and "Remove user" in page
    assert ClientMembership.objects.filter(pk=viewer.pk).exists()  # GET changes nothing
    response = browser.post(f"/users/{viewer.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/users/"
    assert not ClientMembership.objects.filter(pk=viewer.pk).exists()
    assert User.objects.filter(email="client.a.viewer@example.com").exists()  # the account stays
    assert "no longer has access" in browser.get("/users/").content.decode()
    assert client_host("client_a_viewer").get("/").status_code == 403


def test_admin_cannot_remove_themselves(world, client_host):
    browser = client_host("client_a_admin")
    admin = membership_of(world, "client_a_admin")
    response = browser.post(f"/users/{admin.pk}/remove/")
    assert response.status_code == 302
    assert "You cannot remove yourself." in browser.get("/users/").content.decode()
    assert ClientMembership.objects.filter(pk=admin.pk).exists()


def test_membership_of_another_client_is_404(world, client_host):
    browser = client_host("client_a_admin")
    foreign = membership_of(world, "client_b_admin", world.client_b)
    assert browser.post(f"/users/{foreign.pk}/role/", {"role": ClientRole.VIEWER}).status_code == 404
    assert browser.get(f"/users/{foreign.pk}/remove/").status_code == 404
    assert browser.post(f"/users/{foreign.pk}/remove/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == ClientRole.CLIENT_ADMIN


def test_user_list_paginates(world, client_host):
    for n in range(30):
        user = User.objects.create_user(email=f"bulk{n:02d}@example.com")
        ClientMembership.objects.create(user=user, client=world.client_a, role=ClientRole.VIEWER)
    browser = client_host("client_a_viewer")
    first = browser.get("/users/").content.decode()
    assert "Showing <span>1</span>\N{EN DASH}<span>25</span>" in first and "of <span>33</span>" in first
    second = browser.get("/users/", {"page": 2}).content.decode()
    assert "bulk29@example.com" in second and "bulk00@example.com" not in second
    assert browser.get("/users/", {"page": "junk"}).status_code == 200
