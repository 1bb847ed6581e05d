"""Sign-in, routing to the right portal, lockout, security headers, production settings."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import host_of, http_client
from tests.world import PASSWORD


@pytest.mark.parametrize(
    ("persona", "target"),
    [
        ("vendor_admin", "/vendor/"),
        ("support", "/admin/"),
        ("partner_a_admin", "/partner/"),
        ("partner_a_engineer", "/partner/"),
    ],
)
def test_login_on_platform_host_routes_by_role(world, persona, target):
    browser = http_client()
    response = browser.post(
        "/accounts/login/", {"username": world.users[persona].email, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == target
    assert response.status_code == 200


def test_client_user_signs_in_on_its_host(world):
    browser = http_client(host=host_of(world.client_a))
    response = browser.post(
        "/accounts/login/",
        {"username": world.users["client_a_admin"].email, "password": PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/"
    assert response.status_code == 200


def test_client_user_on_platform_host_gets_no_access_page(world):
    browser = http_client(world.users["client_a_viewer"])
    response = browser.get("/accounts/continue/")
    assert response.status_code == 403
    assert "tw-alpha.localhost" in response.content.decode()


def test_wrong_password_shows_error_without_detail(world):
    browser = http_client()
    response = browser.post(
        "/accounts/login/", {"username": world.users["vendor_admin"].email, "password": "nope"}
    )
    assert response.status_code == 200
    assert "correct email and password" in response.content.decode().lower()


def test_repeated_failures_lock_the_account(world):
    browser = http_client()
    email = world.users["partner_b_admin"].email
    for _ in range(settings.AXES_FAILURE_LIMIT):
        browser.post("/accounts/login/", {"username": email, "password": "wrong-password"})
    # Even the right password is refused while locked.
    response = browser.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in browser.session


def test_security_headers(world):
    response = http_client().get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_error_pages_leak_nothing(world):
    response = http_client(world.users["vendor_admin"]).get("/vendor/partners/999999/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Traceback" not in body and "999999" not in body and "No such partner" not in body


def _settings_process(**env):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS)"
    )
    full_env = {
        key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG", "TRIPLANE_ENV")
    }
    full_env.update(DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_production_refuses_the_development_secret():
    result = _settings_process(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_debug():
    result = _settings_process(TRIPLANE_ENV="production", DEBUG="true", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "DEBUG must be off in production" in result.stderr
    result = _settings_process(TRIPLANE_ENV="production")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_turns_on_secure_cookies_and_hsts():
    result = _settings_process(DEBUG="false", SECRET_KEY="a-real-secret-for-this-test-only-123456789")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "31536000"]


def test_csrf_failure_shows_a_plain_explanation(world):
    from django.test import Client as HttpClient

    browser = HttpClient(HTTP_HOST="localhost", enforce_csrf_checks=True)
    browser.force_login(world.users["vendor_admin"])
    response = browser.post("/vendor/partners/new/", {"name": "No Token", "slug": "no-token"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    from apps.tenancy.models import Partner

    assert not Partner.objects.filter(slug="no-token").exists()


def test_server_error_page_leaks_nothing(world, settings):
    from django.test import Client as HttpClient

    settings.PUBLIC_SCHEMA_URLCONF = "tests.urls_failing"
    browser = HttpClient(HTTP_HOST="localhost", raise_request_exception=False)
    response = browser.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "hunter2" not in body and "RuntimeError" not in body and "Traceback" not in body
    assert "<html" in body


def test_seed_demo_refuses_the_public_password_in_production(settings):
    from django.core.management import CommandError, call_command

    settings.TRIPLANE_ENV = "production"
    with pytest.raises(CommandError, match="needs --password"):
        call_command("seed_demo")
