"""The permission matrix: every URL of both URL confs, every persona, the expected answer.

For every route: each persona's GET gets the expected status (200, 302 to the
login page, 403, 404). For routes that accept POST, each persona refused by
the matrix POSTs too, and nothing in the database changed — public schema and
both client schemas alike. A route missing from the matrix fails the suite.
"""

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.urls import URLPattern, URLResolver
from django_tenants.utils import schema_context
from guardian.models import UserObjectPermission

from apps.accounts.models import ClientMembership, PartnerMembership, User
from apps.tenancy.models import Client, Domain, Partner
from tests.conftest import PERSONAS, PLATFORM_HOST, host_of, http_client

R, OK, MOVED, FORBIDDEN, NOT_FOUND = "login", 200, 302, 403, 404
VENDOR = {"vendor_admin"}
PARTNER_A = {"partner_a_admin", "partner_a_engineer"}
CLIENT_A = {"client_a_admin", "client_a_operator", "client_a_viewer"}


def answers(default, **overrides) -> dict:
    """Expected answer per persona: anonymous → login unless overridden; `default` for the rest."""
    table = dict.fromkeys(PERSONAS, default)
    table["anonymous"] = R
    table.update(overrides)
    return table


def only(allowed: set, *, denied=FORBIDDEN, allowed_answer=OK, **overrides) -> dict:
    table = answers(denied)
    for persona in allowed:
        table[persona] = allowed_answer
    table.update(overrides)
    return table


@dataclass
class Case:
    route: str  # "<urlconf>:<namespace:name>"
    kwargs: Callable = lambda w: {}
    host: str = "platform"  # or "client_a"
    get: dict | None = None  # expected GET answers; None = GET not tested (POST-only view)
    post: dict | None = None  # expected POST answers for refused personas (nothing may change)
    data: dict = field(default_factory=dict)


def a_engineer_membership(w):
    return {"pk": PartnerMembership.objects.get(user=w.users["partner_a_engineer"]).pk}


def a_viewer_membership(w):
    return {"pk": ClientMembership.objects.get(user=w.users["client_a_viewer"]).pk}


vendor_only = only(VENDOR)
partner_team = only(PARTNER_A | {"partner_b_admin"})
partner_admins = only({"partner_a_admin", "partner_b_admin"})
client_a_all = only(CLIENT_A)
client_a_admin = only({"client_a_admin"})
# A client of partner A: partner A's admin and assigned engineer see it, partner B gets 404.
client_a_in_portal = only(PARTNER_A, partner_b_admin=NOT_FOUND)
client_a_admin_only = only({"partner_a_admin"}, partner_b_admin=NOT_FOUND)
everyone = answers(OK, anonymous=OK)

CASES = [
    # Super-admin portal
    Case("public:superadmin:home", get=vendor_only),
    Case("public:superadmin:partner_list", get=vendor_only),
    Case(
        "public:superadmin:partner_create",
        get=vendor_only,
        post=vendor_only,
        data={"name": "X", "slug": "xx-x"},
    ),
    Case("public:superadmin:partner_detail", lambda w: {"pk": w.partner_a.pk}, get=vendor_only),
    Case(
        "public:superadmin:partner_edit",
        lambda w: {"pk": w.partner_a.pk},
        get=vendor_only,
        post=vendor_only,
        data={"name": "Renamed"},
    ),
    Case(
        "public:superadmin:partner_deactivate",
        lambda w: {"pk": w.partner_a.pk},
        get=vendor_only,
        post=vendor_only,
    ),
    Case("public:superadmin:partner_activate", lambda w: {"pk": w.partner_a.pk}, post=vendor_only),
    Case(
        "public:superadmin:partner_invite_admin",
        lambda w: {"pk": w.partner_a.pk},
        get=vendor_only,
        post=vendor_only,
        data={"full_name": "Eve", "email": "eve@example.com"},
    ),
    Case("public:superadmin:client_list", get=vendor_only),
    Case("public:superadmin:client_detail", lambda w: {"pk": w.client_a.pk}, get=vendor_only),
    # Management portal
    Case("public:management:home", get=partner_team),
    Case(
        "public:management:client_create",
        get=partner_admins,
        post=partner_admins,
        data={"name": "Evil", "slug": "evil-co"},
    ),
    Case("public:management:client_detail", lambda w: {"pk": w.client_a.pk}, get=client_a_in_portal),
    Case(
        "public:management:client_detail",
        lambda w: {"pk": w.client_a2.pk},
        get=only({"partner_a_admin"}, partner_a_engineer=NOT_FOUND, partner_b_admin=NOT_FOUND),
    ),
    Case("public:management:client_status", lambda w: {"pk": w.client_a.pk}, get=client_a_in_portal),
    Case("public:management:client_retry", lambda w: {"pk": w.client_a.pk}, post=client_a_admin_only),
    Case(
        "public:management:client_engineers",
        lambda w: {"pk": w.client_a.pk},
        get=client_a_admin_only,
        post=client_a_admin_only,
        data={"engineers": []},
    ),
    Case("public:management:team", get=partner_team),
    Case(
        "public:management:team_invite",
        get=partner_admins,
        post=partner_admins,
        data={"full_name": "Eve", "email": "eve@example.com", "role": "partner_engineer"},
    ),
    Case(
        "public:management:team_remove",
        a_engineer_membership,
        get=client_a_admin_only,
        post=client_a_admin_only,
    ),
    # Client dashboard (on client A's host; client B's admin is the foreign tenant)
    Case("tenant:dashboard:home", host="client_a", get=client_a_all),
    Case("tenant:dashboard:user_list", host="client_a", get=client_a_all),
    Case(
        "tenant:dashboard:user_invite",
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data={"full_name": "Eve", "email": "eve@example.com", "role": "viewer"},
    ),
    Case(
        "tenant:dashboard:user_role",
        a_viewer_membership,
        host="client_a",
        post=client_a_admin,
        data={"role": "client_admin"},
    ),
    Case(
        "tenant:dashboard:user_remove",
        a_viewer_membership,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
    ),
    # Sign-in pages (both hosts)
    Case("public:accounts:login", get=answers(MOVED, anonymous=OK)),  # signed in: sent on to a portal
    Case("public:accounts:after_login", get=answers(R)),  # each role is routed; asserted in tests/accounts
    Case("public:accounts:set_password", lambda w: {"uidb64": "MQ", "token": "bad-token"}, get=everyone),
    Case("public:accounts:set_password_done", get=everyone),
    Case("public:accounts:logout", post={}),
    Case("tenant:accounts:login", host="client_a", get=answers(MOVED, anonymous=OK)),
    Case("tenant:accounts:after_login", host="client_a", get=answers(R)),
    Case(
        "tenant:accounts:set_password",
        lambda w: {"uidb64": "MQ", "token": "bad-token"},
        host="client_a",
        get=everyone,
    ),
    Case("tenant:accounts:set_password_done", host="client_a", get=everyone),
    Case("tenant:accounts:logout", host="client_a", post={}),
    # API
    Case("public:api:me", get=answers(OK, anonymous=FORBIDDEN)),
    Case("public:api:activity", get=answers(FORBIDDEN, anonymous=FORBIDDEN)),  # client hosts only
    Case("public:api:token", post={}),
    Case("tenant:api:me", host="client_a", get=answers(OK, anonymous=FORBIDDEN)),
    Case("tenant:api:activity", host="client_a", get=only(CLIENT_A, anonymous=FORBIDDEN)),
    Case("tenant:api:token", host="client_a", post={}),
    Case("public:api-schema", get=everyone),
    Case("public:api-docs", get=everyone),
    Case("tenant:api-schema", host="client_a", get=everyone),
    Case("tenant:api-docs", host="client_a", get=everyone),
]
# after_login answers depend on the role (redirect or "nothing here"); only anonymous is fixed.
ROLE_ROUTED = {"public:accounts:after_login", "tenant:accounts:after_login"}


def named_routes(urlconf: str) -> set[str]:
    def walk(patterns, namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                if entry.namespace == "admin":
                    continue  # the Django admin has its own tests
                yield from walk(entry.url_patterns, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                yield namespace + entry.name

    return set(walk(importlib.import_module(urlconf).urlpatterns))


def test_every_route_is_in_the_matrix():
    covered = {case.route for case in CASES}
    routes = {f"public:{name}" for name in named_routes("config.urls_public")}
    routes |= {f"tenant:{name}" for name in named_routes("config.urls_tenant")}
    assert routes - covered == set(), "routes without a permission-matrix entry"
    assert covered - routes == set(), "matrix entries for routes that do not exist"


def resolve(case: Case, world) -> tuple[str, str]:
    from django.urls import reverse

    urlconf = "config.urls_public" if case.route.startswith("public:") else "config.urls_tenant"
    name = case.route.split(":", 1)[1]
    host = PLATFORM_HOST if case.host == "platform" else host_of(world.client_a)
    return host, reverse(name, urlconf=urlconf, kwargs=case.kwargs(world))


def snapshot(world) -> str:
    """A digest of every row a portal or API view could change, in public and both client schemas."""
    connection.set_schema_to_public()  # a request to a client host leaves the connection in its schema
    digest = hashlib.sha256()
    models = [
        Partner,
        Client,
        Domain,
        User,
        PartnerMembership,
        ClientMembership,
        UserObjectPermission,
        LogEntry,
    ]
    for model in models:
        digest.update(repr(list(model.objects.order_by("pk").values())).encode())
    for client in (world.client_a, world.client_b):
        with schema_context(client.schema_name):
            digest.update(repr(list(LogEntry.objects.order_by("pk").values())).encode())
            digest.update(repr(list(UserObjectPermission.objects.order_by("pk").values())).encode())
    connection.set_schema_to_public()
    return digest.hexdigest()


def check(response, expected, url):
    if expected == R:
        assert response.status_code == 302, (url, response.status_code)
        assert "/accounts/login/" in response["Location"], response["Location"]
    else:
        assert response.status_code == expected, (url, response.status_code, expected)


GET_CASES = [(case, persona) for case in CASES if case.get is not None for persona in PERSONAS]
POST_CASES = [
    (case, persona) for case in CASES if case.post for persona in PERSONAS if case.post.get(persona) != OK
]


@pytest.mark.parametrize(("case", "persona"), GET_CASES, ids=[f"{c.route}|{p}" for c, p in GET_CASES])
def test_get(world, case, persona):
    expected = case.get[persona]
    if case.route in ROLE_ROUTED and persona != "anonymous":
        return
    host, url = resolve(case, world)
    response = http_client(world.users.get(persona), host).get(url)
    check(response, expected, url)


@pytest.mark.parametrize(("case", "persona"), POST_CASES, ids=[f"{c.route}|{p}" for c, p in POST_CASES])
def test_refused_post_changes_nothing(world, case, persona, django_capture_on_commit_callbacks):
    from django.core import mail

    host, url = resolve(case, world)
    browser = http_client(world.users.get(persona), host)  # signing in stamps last_login: before the snapshot
    before = snapshot(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(url, case.data)
    check(response, case.post[persona], url)
    assert snapshot(world) == before, f"a refused POST to {url} as {persona} changed data"
    assert mail.outbox == []
