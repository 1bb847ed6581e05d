"""Shared fixtures: the session-wide test world, personas and host-bound HTTP clients."""

import os

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client as HttpClient

from tests.world import World, build_world

# Playwright's sync API runs an event loop in the test thread; the ORM is used beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PERSONAS = [
    "anonymous",
    "vendor_admin",
    "support",
    "partner_a_admin",
    "partner_a_engineer",
    "partner_b_admin",
    "client_a_admin",
    "client_a_operator",
    "client_a_viewer",
    "client_b_admin",
]

_world: World | None = None


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Migrate the test database (public + template schema), then build the world once."""
    global _world
    with django_db_blocker.unblock():
        _world = build_world()
    yield


@pytest.fixture
def world(django_db_setup, db) -> World:
    assert _world is not None
    # Refresh so a test sees rows as they are now in its own transaction.
    for obj in (_world.partner_a, _world.partner_b, _world.client_a, _world.client_a2, _world.client_b):
        obj.refresh_from_db()
    return _world


@pytest.fixture(autouse=True)
def _public_schema_after_test():
    yield
    # A test that switched schemas must not leak its search_path into the next test.
    connection.set_schema_to_public()


PLATFORM_HOST = settings.PLATFORM_DOMAIN


def host_of(client) -> str:
    return f"{client.slug}.{settings.PLATFORM_DOMAIN}"


def http_client(user=None, host: str = PLATFORM_HOST) -> HttpClient:
    """A Django test client bound to a host, signed in as `user` (or anonymous)."""
    browser = HttpClient(HTTP_HOST=host)
    if user is not None:
        browser.force_login(user)
    return browser


@pytest.fixture
def platform(world):
    """`platform(persona)` → a test client on the platform host signed in as that persona."""
    return lambda persona="anonymous": http_client(world.users.get(persona), PLATFORM_HOST)


@pytest.fixture
def client_host(world):
    """`client_host(persona, client=world.client_a)` → a test client on that client's host."""

    def make(persona="anonymous", client=None):
        return http_client(world.users.get(persona), host_of(client or world.client_a))

    return make
