"""The permission matrix: every URL of both URL confs, every persona, the expected answer.

For every route: each persona's GET gets the expected status (200, 302 to the
login page, 403, 404). For routes that accept POST, each persona refused by
the matrix POSTs too, and nothing in the database changed — public schema and
both client schemas alike. A route missing from the matrix fails the suite.
"""

import hashlib
import importlib
import pkgutil

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.urls import URLPattern, URLResolver
from django_tenants.utils import schema_context
from guardian.models import UserObjectPermission

import tests.matrix
from apps.accounts.models import ClientMembership, PartnerMembership, User
from apps.audit.models import AuditEvent
from apps.connectors.models import DataSource, FieldMapping
from apps.deployments.models import Deployment, DeploymentTransition
from apps.factory import selectors as factory_selectors
from apps.factory import services as factory_services
from apps.factory.models import (
    AgentVariant,
    AgentVersion,
    PolicyPack,
    PolicyPackVersion,
    Rollout,
    RolloutTarget,
)
from apps.factory.yaml_spec import spec_to_yaml
from apps.governance.models import (
    DecisionLog,
    EvaluationKey,
    Ruleset,
    RulesetVersion,
    RuleTestCase,
)
from apps.runtime.models import Approval, LlmEndpoint, Step, Task, TaskSchedule
from apps.tenancy.models import Client, Domain, Partner
from tests.conftest import PERSONAS, PLATFORM_HOST, host_of, http_client
from tests.matrix.base import (
    CLIENT_A,
    FORBIDDEN,
    MOVED,
    NOT_FOUND,
    OK,
    PARTNER_A,
    VENDOR,
    Case,
    R,
    a_deployed_with_newer_version,
    a_deployment,
    a_deployment_page,
    a_engineer_membership,
    a_viewer_membership,
    answers,
    api_client_a_partner,
    api_client_a_readers,
    api_deployment,
    api_factory_readers,
    client_a_admin,
    client_a_admin_only,
    client_a_all,
    client_a_in_portal,
    everyone,
    itsm,
    only,
    partner_admins,
    partner_team,
    vendor_only,
)

# --- Agent Factory and rollouts (super-admin): each helper makes what a refused POST could change.


def itsm_v110(w) -> AgentVersion:
    """ITSM 1.1.0, published through the factory services (its instructions differ from 1.0.0's)."""
    vendor, version = w.users["vendor_admin"], itsm()
    draft = factory_services.version_save_draft(
        variant=version.variant,
        spec={**version.spec, "instructions": "Changed for the matrix."},
        version="1.1.0",
        changelog="Matrix.",
        actor=vendor,
    )
    return factory_services.version_publish(version=draft, actor=vendor)


def itsm_with_older_version(w) -> dict:
    """ITSM 1.0.0 when 1.1.0 is current: rolling back to it would publish a new version."""
    itsm_v110(w)
    return {"key": "itsm", "version": "1.0.0"}


def itsm_with_draft(w) -> dict:
    """ITSM with a draft that discarding would delete."""
    version = itsm()
    factory_services.version_save_draft(
        variant=version.variant,
        spec=version.spec,
        version="1.1.0",
        changelog="Draft.",
        actor=w.users["vendor_admin"],
    )
    return {"key": "itsm"}


def variant_behind_its_base(w) -> dict:
    """A clone of the base agent whose base then published 1.1.0: a clean rebase would create a draft."""
    vendor, base = w.users["vendor_admin"], factory_selectors.access_variant("base")
    factory_services.variant_clone(source=base, key="matrix-copy", name="Matrix copy", actor=vendor)
    spec = factory_selectors.latest_published(base).spec
    draft = factory_services.version_save_draft(
        variant=base,
        spec={**spec, "planner": {**spec["planner"], "max_steps": 35}},
        version="1.1.0",
        changelog="Matrix.",
        actor=vendor,
    )
    factory_services.version_publish(version=draft, actor=vendor)
    return {"key": "matrix-copy"}


def rollout_candidates(w) -> dict:
    """A deployed ITSM 1.0.0 in client A and ITSM 1.1.0 published: a rollout would have work to do."""
    a_deployment(w, Deployment.Status.DEPLOYED)
    itsm_v110(w)
    return {}


def a_completed_rollout(w) -> dict:
    """A completed rollout that reverting would move to `reverting`."""
    version = itsm()
    rollout = Rollout.objects.create(
        variant=version.variant, target_version=version, status=Rollout.Status.COMPLETED
    )
    return {"pk": rollout.pk}


def a_running_rollout(w) -> dict:
    """A running rollout that resuming would schedule again."""
    version = itsm()
    rollout = Rollout.objects.create(
        variant=version.variant, target_version=version, status=Rollout.Status.RUNNING
    )
    return {"pk": rollout.pk}


CORE_CASES = [
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
    Case(
        "public:superadmin:client_deployment_decide",
        a_deployment_page(Deployment.Status.SUBMITTED),
        post=vendor_only,
        data={"decision": "approve", "reason": "Refused personas must not approve."},
    ),
    # Super-admin portal: the Agent Factory
    Case("public:superadmin:factory", get=vendor_only),
    Case("public:superadmin:variant_detail", lambda w: {"key": "itsm"}, get=vendor_only),
    Case(
        "public:superadmin:variant_clone",
        lambda w: {"key": "itsm"},
        get=vendor_only,
        post=vendor_only,
        data={"key": "evil-clone", "name": "Evil clone"},
    ),
    Case(
        "public:superadmin:version_edit",
        lambda w: {"key": "itsm"},
        get=vendor_only,
        post=vendor_only,
        data=lambda w: {
            "spec": spec_to_yaml(itsm().spec).replace("max_steps: 20", "max_steps: 30"),
            "version": "1.1.0",
            "changelog": "Evil.",
            "action": "publish",
        },
    ),
    Case(
        "public:superadmin:version_preview",
        lambda w: {"key": "itsm"},
        post=vendor_only,
        data=lambda w: {"spec": spec_to_yaml(itsm().spec)},
    ),
    Case("public:superadmin:version_discard", itsm_with_draft, post=vendor_only),
    Case("public:superadmin:version_detail", lambda w: {"key": "itsm", "version": "1.0.0"}, get=vendor_only),
    Case("public:superadmin:version_diff", lambda w: {"key": "itsm"}, get=vendor_only),
    Case("public:superadmin:version_rollback", itsm_with_older_version, get=vendor_only, post=vendor_only),
    Case("public:superadmin:variant_rebase", variant_behind_its_base, get=vendor_only, post=vendor_only),
    # Super-admin portal: rollouts
    Case("public:superadmin:rollout_list", get=vendor_only),
    Case(
        "public:superadmin:rollout_create",
        rollout_candidates,
        get=vendor_only,
        post=vendor_only,
        data=lambda w: {"variant": itsm().variant_id, "target_version": itsm("1.1.0").pk},
    ),
    Case("public:superadmin:rollout_detail", a_completed_rollout, get=vendor_only),
    Case("public:superadmin:rollout_revert", a_completed_rollout, get=vendor_only, post=vendor_only),
    Case("public:superadmin:rollout_resume", a_running_rollout, post=vendor_only),
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
    # Management portal: client A's deployments (partner A's admin and engineer; partner B gets 404)
    Case("public:management:deployment_list", lambda w: {"pk": w.client_a.pk}, get=client_a_in_portal),
    Case(
        "public:management:deployment_create",
        lambda w: {"pk": w.client_a.pk},
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=lambda w: {"name": "Evil agent", "variant": itsm().variant_id, "version": itsm().pk},
    ),
    Case("public:management:deployment_detail", a_deployment_page(), get=client_a_in_portal),
    Case(
        "public:management:deployment_edit",
        a_deployment_page(),
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=lambda w: {"name": "Evil agent", "version": itsm().pk},
    ),
    Case(
        "public:management:deployment_action",
        a_deployment_page(Deployment.Status.DRAFT, action="submit"),
        post=client_a_in_portal,
    ),
    Case(
        "public:management:deployment_action",
        a_deployment_page(Deployment.Status.DEPLOYED, action="retire"),
        get=client_a_in_portal,  # the confirmation page
        post=client_a_in_portal,
    ),
    Case(
        "public:management:deployment_change_version",
        a_deployed_with_newer_version,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=lambda w: {"version": itsm("1.1.0").pk, "confirm": "1"},
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
        "tenant:dashboard:client_settings",
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data={"require_version_change_approval": "on"},
    ),
    Case(
        "tenant:dashboard:user_remove",
        a_viewer_membership,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
    ),
    Case("tenant:dashboard:deployment_list", host="client_a", get=client_a_all),
    Case(
        "tenant:dashboard:deployment_detail",
        lambda w: {"deployment_id": a_deployment(w).pk},
        host="client_a",
        get=client_a_all,
    ),
    Case(
        "tenant:dashboard:deployment_decide",
        lambda w: {"deployment_id": a_deployment(w, Deployment.Status.SUBMITTED).pk},
        host="client_a",
        post=client_a_admin,
        data={"decision": "approve", "reason": "Refused personas must not approve."},
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
    Case("public:api:variant_list", get=api_factory_readers),
    Case("public:api:version_list", lambda w: {"key": "itsm"}, get=api_factory_readers),
    Case("public:api:version_detail", lambda w: {"key": "itsm", "version": "1.0.0"}, get=api_factory_readers),
    Case(  # asked without ?from=&to=: a 400 for those who may ask at all
        "public:api:version_diff",
        lambda w: {"key": "itsm"},
        get=only(VENDOR | PARTNER_A | {"partner_b_admin"}, allowed_answer=400, anonymous=FORBIDDEN),
    ),
    Case(
        "public:api:client_deployment_list",
        lambda w: {"client_id": w.client_a.pk},
        get=api_client_a_readers,
        post=api_client_a_partner,
        data={"name": "Evil agent", "variant": "itsm", "version": "1.0.0"},
    ),
    Case(  # client A2 has no engineer assigned
        "public:api:client_deployment_list",
        lambda w: {"client_id": w.client_a2.pk},
        get=only(
            VENDOR | {"partner_a_admin"},
            partner_a_engineer=NOT_FOUND,
            partner_b_admin=NOT_FOUND,
            anonymous=FORBIDDEN,
        ),
    ),
    Case("public:api:client_deployment_detail", api_deployment(), get=api_client_a_readers),
    Case(
        "public:api:client_deployment_transition",
        api_deployment(),
        post=api_client_a_partner,
        data={"action": "submit"},
    ),
    Case(  # approving is the vendor's on the platform host (or client A's admin on its own host)
        "public:api:client_deployment_transition",
        api_deployment(Deployment.Status.SUBMITTED),
        post=only(VENDOR, anonymous=FORBIDDEN),
        data={"action": "approve", "reason": "Refused personas must not approve."},
    ),
    Case("tenant:api:deployment_list", host="client_a", get=only(CLIENT_A, anonymous=FORBIDDEN)),
    Case(
        "tenant:api:deployment_detail",
        api_deployment(platform=False),
        host="client_a",
        get=only(CLIENT_A, anonymous=FORBIDDEN),
    ),
    Case(
        "tenant:api:deployment_transition",
        api_deployment(Deployment.Status.SUBMITTED, platform=False),
        host="client_a",
        post=only({"client_a_admin"}, anonymous=FORBIDDEN),
        data={"action": "approve", "reason": "Refused personas must not approve."},
    ),
    Case("public:api-schema", get=everyone),
    Case("public:api-docs", get=everyone),
    Case("tenant:api-schema", host="client_a", get=everyone),
    Case("tenant:api-docs", host="client_a", get=everyone),
]


def collected_cases() -> list[Case]:
    """The core cases above and those of every `tests/matrix/cases_*.py` module."""
    cases = list(CORE_CASES)
    for module in sorted(pkgutil.iter_modules(tests.matrix.__path__), key=lambda m: m.name):
        if module.name.startswith("cases_"):
            cases += importlib.import_module(f"tests.matrix.{module.name}").CASES
    return cases


CASES = collected_cases()
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
    """A digest of every row a portal or API view could change, in public and every client schema."""
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
        AgentVariant,
        AgentVersion,
        PolicyPack,
        PolicyPackVersion,
        Rollout,
        RolloutTarget,
    ]
    for model in models:
        digest.update(repr(list(model.objects.order_by("pk").values())).encode())
    for client in (world.client_a, world.client_a2, world.client_b):
        with schema_context(client.schema_name):
            digest.update(repr(list(LogEntry.objects.order_by("pk").values())).encode())
            digest.update(repr(list(UserObjectPermission.objects.order_by("pk").values())).encode())
            for model in (
                Deployment,
                DeploymentTransition,
                Ruleset,
                RulesetVersion,
                RuleTestCase,
                DecisionLog,
                EvaluationKey,
                DataSource,
                FieldMapping,
                AuditEvent,
                Task,
                Step,
                Approval,
                LlmEndpoint,
                TaskSchedule,
            ):
                digest.update(repr(list(model.objects.order_by("pk").values())).encode())
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
    data = case.data(world) if callable(case.data) else case.data
    before = snapshot(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(url, data)
    check(response, case.post[persona], url)
    assert snapshot(world) == before, f"a refused POST to {url} as {persona} changed data"
    assert mail.outbox == []
