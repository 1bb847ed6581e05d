"""API v1: who-am-I on both hosts, token sign-in, the OpenAPI schema and docs."""

import json

import pytest
from django.core.management import call_command

from tests.conftest import PLATFORM_HOST, host_of, http_client
from tests.world import PASSWORD

ME_KEYS = {"id", "email", "full_name", "vendor_role", "partner", "clients", "current_client"}


def test_me_for_vendor_admin(world, platform):
    response = platform("vendor_admin").get("/api/v1/me")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ME_KEYS
    assert body["email"] == "vendor@example.com" and body["vendor_role"] == "platform_admin"
    assert body["partner"] is None and body["clients"] == [] and body["current_client"] is None


def test_me_for_partner_admin(world, platform):
    body = platform("partner_a_admin").get("/api/v1/me").json()
    assert body["vendor_role"] is None
    assert body["partner"] == {
        "id": world.partner_a.pk,
        "name": "Partner A",
        "slug": "partner-a",
        "role": "partner_admin",
    }
    # Partner staff have no client role: the clients they deliver are not listed here.
    assert body["clients"] == [] and body["current_client"] is None


def test_me_for_client_user_on_platform_and_client_host(world, platform, client_host):
    expected_clients = [
        {
            "id": world.client_a.pk,
            "name": "Client tw-alpha",
            "slug": "tw-alpha",
            "host": "tw-alpha.localhost",
            "status": "ready",
            "role": "client_admin",
        }
    ]
    body = platform("client_a_admin").get("/api/v1/me").json()
    assert body["email"] == "client.a.admin@example.com"
    assert body["vendor_role"] is None and body["partner"] is None
    assert body["clients"] == expected_clients and body["current_client"] is None
    on_host = client_host("client_a_admin").get("/api/v1/me")
    assert on_host.status_code == 200
    assert on_host.json()["clients"] == expected_clients and on_host.json()["current_client"] == "tw-alpha"
    viewer = client_host("client_a_viewer").get("/api/v1/me").json()
    assert [c["role"] for c in viewer["clients"]] == ["viewer"]


@pytest.mark.parametrize("on_client_host", [False, True])
def test_anonymous_is_refused(world, platform, client_host, on_client_host):
    browser = client_host() if on_client_host else platform()
    for url in ["/api/v1/me", "/api/v1/activity"]:
        response = browser.get(url)
        assert response.status_code in (401, 403), url
        assert "email" not in response.json()


def test_activity_needs_a_client_host_and_a_role_there(world, platform, client_host):
    assert platform("client_a_admin").get("/api/v1/activity").status_code == 403
    assert platform("vendor_admin").get("/api/v1/activity").status_code == 403
    assert client_host("partner_a_admin").get("/api/v1/activity").status_code == 403
    response = client_host("client_a_viewer").get("/api/v1/activity")
    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}


def test_token_sign_in_then_token_auth(world):
    anonymous = http_client()
    response = anonymous.post(
        "/api/v1/auth/token", {"username": "client.a.admin@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    key = response.json()["token"]
    assert key
    # No session: the token alone authenticates, on the platform host and on the client's host.
    on_platform = http_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key}")
    assert on_platform.status_code == 200 and on_platform.json()["email"] == "client.a.admin@example.com"
    on_host = http_client(host=host_of(world.client_a))
    assert on_host.get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key}").json()["current_client"] == "tw-alpha"
    assert on_host.get("/api/v1/activity", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    # Still only this user's clients: another client's host refuses the same token.
    other = http_client(host=host_of(world.client_b))
    assert other.get("/api/v1/activity", HTTP_AUTHORIZATION=f"Token {key}").status_code == 403
    # A second sign-in returns the same token; a forged one is refused.
    again = anonymous.post(
        "/api/v1/auth/token", {"username": "client.a.admin@example.com", "password": PASSWORD}
    )
    assert again.json()["token"] == key
    forged = http_client().get("/api/v1/me", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert forged.status_code in (401, 403)


def test_token_sign_in_with_json_body_on_a_client_host(world):
    browser = http_client(host=host_of(world.client_a))
    response = browser.post(
        "/api/v1/auth/token",
        json.dumps({"username": "client.a.viewer@example.com", "password": PASSWORD}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["token"]


def test_token_wrong_password_is_400_and_repeated_failures_lock(world, settings):
    anonymous = http_client()
    wrong = {"username": "client.a.admin@example.com", "password": "not-the-password"}
    response = anonymous.post("/api/v1/auth/token", wrong)
    assert response.status_code == 400 and "token" not in response.json()
    unknown = anonymous.post("/api/v1/auth/token", {"username": "nobody@example.com", "password": PASSWORD})
    assert unknown.status_code == 400
    for _ in range(settings.AXES_FAILURE_LIMIT):
        anonymous.post("/api/v1/auth/token", wrong)
    # Locked out: even the right password gets no token now.
    right = anonymous.post(
        "/api/v1/auth/token", {"username": "client.a.admin@example.com", "password": PASSWORD}
    )
    assert right.status_code != 200 and "token" not in right.json()


@pytest.mark.parametrize("host", ["platform", "client"])
def test_openapi_schema_and_docs_on_both_hosts(world, host):
    browser = http_client(host=PLATFORM_HOST if host == "platform" else host_of(world.client_a))
    response = browser.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/me", "/api/v1/activity", "/api/v1/auth/token"} <= set(schema["paths"])
    assert {"Me", "ActivityEntry"} <= set(schema["components"]["schemas"])
    yaml = browser.get("/api/schema/")
    assert yaml.status_code == 200 and yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    docs = browser.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.parametrize("urlconf", ["config.urls_public", "config.urls_tenant"])
def test_openapi_schema_is_valid_and_free_of_warnings(urlconf, tmp_path):
    # Warnings (e.g. two serializers claiming one component name) mean a wrong schema.
    call_command(
        "spectacular", "--urlconf", urlconf, "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml")
    )
