"""Tenant isolation: what happens in one client's schema stays invisible from every other client."""

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists

from apps.accounts.models import ClientMembership, ClientRole
from apps.tenancy import services as tenancy
from apps.tenancy.models import Client
from tests.conftest import host_of, http_client

INVITEE = "iris.isolated@example.com"


def membership_log(schema_name: str):
    with schema_context(schema_name):
        membership_type = ContentType.objects.get_for_model(ClientMembership)
        return list(
            LogEntry.objects.filter(content_type=membership_type, object_repr__contains=INVITEE).values_list(
                "action", "actor__email"
            )
        )


def invite_on_client_a(client_host, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_host("client_a_admin").post(
            "/users/invite/", {"full_name": "Iris", "email": INVITEE, "role": ClientRole.VIEWER}
        )
    assert response.status_code == 302


def test_change_on_client_a_is_logged_in_a_schema_only(
    world, client_host, django_capture_on_commit_callbacks
):
    invite_on_client_a(client_host, django_capture_on_commit_callbacks)
    assert membership_log(world.client_a.schema_name) == [
        (LogEntry.Action.CREATE, "client.a.admin@example.com")
    ]
    assert membership_log(world.client_b.schema_name) == []
    assert membership_log(world.client_a2.schema_name) == []
    # The client keeps its own log: the platform's log has no copy.
    assert membership_log(get_public_schema_name()) == []


def test_client_a_activity_is_invisible_from_client_b(world, client_host, django_capture_on_commit_callbacks):
    invite_on_client_a(client_host, django_capture_on_commit_callbacks)
    own = client_host("client_a_viewer").get("/api/v1/activity")
    assert own.status_code == 200
    assert any(INVITEE in entry["object_repr"] for entry in own.json()["results"])
    assert INVITEE in client_host("client_a_viewer").get("/").content.decode()

    on_b = client_host("client_b_admin", world.client_b)
    foreign = on_b.get("/api/v1/activity")
    assert foreign.status_code == 200
    assert INVITEE not in foreign.content.decode()
    assert INVITEE not in on_b.get("/").content.decode()
    assert INVITEE not in on_b.get("/users/").content.decode()


def test_client_a_users_are_refused_on_client_b_host(world, client_host):
    for persona in ["client_a_admin", "client_a_operator", "client_a_viewer"]:
        on_b = client_host(persona, world.client_b)
        for url in ["/", "/users/", "/users/invite/", "/api/v1/activity"]:
            assert on_b.get(url).status_code == 403, (persona, url)
    b_admin = ClientMembership.objects.get(client=world.client_b, role=ClientRole.CLIENT_ADMIN)
    on_b = client_host("client_a_admin", world.client_b)
    assert on_b.post(f"/users/{b_admin.pk}/role/", {"role": ClientRole.VIEWER}).status_code == 403
    assert on_b.post(f"/users/{b_admin.pk}/remove/").status_code == 403
    b_admin.refresh_from_db()
    assert b_admin.role == ClientRole.CLIENT_ADMIN


def test_client_a_token_is_refused_on_client_b_host(world, client_host):
    # Sessions and tokens are global (one account, many clients); the role check is per host.
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=world.users["client_a_admin"])
    on_b = http_client(host=host_of(world.client_b))
    response = on_b.get("/api/v1/activity", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403


def test_unknown_host_is_404_not_the_platform(world):
    # Allowed by ALLOWED_HOSTS (any *.localhost) but routed to no client.
    for host in ["nope.localhost", "tw-alpha-old.localhost", "alpha.tw-alpha.localhost"]:
        response = http_client(host=host).get("/")
        assert response.status_code == 404, host
        assert http_client(host=host).get("/api/v1/me").status_code == 404, host


def test_client_not_ready_answers_503_without_touching_its_schema(world, client_host):
    client = tenancy.client_create(
        partner=world.partner_a, name="Pending Co", slug="pending-co", actor=None, schedule=False
    )
    assert client.status == Client.Status.PROVISIONING and not schema_exists(client.schema_name)
    ClientMembership.objects.create(
        user=world.users["client_a_admin"], client=client, role=ClientRole.CLIENT_ADMIN
    )
    for persona in ["anonymous", "client_a_admin"]:
        for url in ["/", "/users/", "/api/v1/me", "/accounts/login/"]:
            response = client_host(persona, client).get(url)
            assert response.status_code == 503, (persona, url)
            assert "Pending Co" in response.content.decode()
            assert "being prepared" in response.content.decode()
            assert connection.schema_name == get_public_schema_name()
    assert not schema_exists(client.schema_name)

    client.status = Client.Status.FAILED
    client.save(update_fields=["status"])
    response = client_host("client_a_admin", client).get("/")
    assert response.status_code == 503 and "could not be prepared" in response.content.decode()
