"""API v1: the Agent Factory (variants, versions, specs, diffs) and clients' deployments on both hosts.

The seeded factory (base, itsm, finance, hr, vendor, each published as 1.0.0) is in
the test world; deployments are made in client A's schema inside each test.
"""

import json

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import ClientMembership, ClientRole
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment, DeploymentTransition
from apps.factory import services as factory_services
from apps.factory.diff import spec_diff
from apps.factory.models import AgentVersion
from apps.tenancy.models import Client
from tests.conftest import host_of, http_client
from tests.world import PASSWORD

S = Deployment.Status
DEPLOYMENT_KEYS = {"id", "name", "variant", "version", "status", "pending_version", "updated_at"}
DETAIL_KEYS = DEPLOYMENT_KEYS | {"created_at", "created_by", "submitted_by", "history"}


def post(browser, url: str, data: dict):
    return browser.post(url, json.dumps(data), content_type="application/json")


def itsm_v100() -> AgentVersion:
    return AgentVersion.objects.get(variant__key="itsm", version="1.0.0")


def itsm_draft(world, version: str = "1.1.0") -> AgentVersion:
    """A draft of ITSM with changed instructions and planner (through the factory services)."""
    v100 = itsm_v100()
    spec = {
        **v100.spec,
        "instructions": "Triage faster.",
        "planner": {**v100.spec["planner"], "max_steps": 30},
    }
    return factory_services.version_save_draft(
        variant=v100.variant,
        spec=spec,
        version=version,
        changelog="Faster triage.",
        actor=world.users["vendor_admin"],
    )


def itsm_v110(world) -> AgentVersion:
    return factory_services.version_publish(version=itsm_draft(world), actor=world.users["vendor_admin"])


def make_deployment(world, status: str = S.DRAFT, *, client=None, name: str = "Helpdesk") -> Deployment:
    """An ITSM 1.0.0 deployment of client A (or another of partner A's clients) brought to `status`
    through the services: partner A's engineer makes it, the vendor approves it."""
    client = client or world.client_a
    maker = world.users["partner_a_engineer"]
    version = itsm_v100()
    deployment = deployment_services.deployment_create(
        client=client, variant=version.variant, version=version, name=name, actor=maker
    )
    steps = {S.DRAFT: [], S.SUBMITTED: ["submit"], S.APPROVED: ["submit", "approve"]}
    steps[S.DEPLOYED] = [*steps[S.APPROVED], "deploy"]
    for step in steps[status]:
        actor = world.users["vendor_admin"] if step == "approve" else maker
        getattr(deployment_services, f"deployment_{step}")(client=client, deployment=deployment, actor=actor)
    return deployment


def state(client: Client, deployment: Deployment) -> tuple[dict, int]:
    """The stored row and its number of transitions: to show that a refusal changed nothing."""
    with tenant_context(client):
        row = Deployment.objects.filter(pk=deployment.pk).values().get()
        return row, DeploymentTransition.objects.filter(deployment_id=deployment.pk).count()


def deployment_count(client: Client) -> int:
    with tenant_context(client):
        return Deployment.objects.count()


def platform_url(client: Client, *rest) -> str:
    return "/".join([f"/api/v1/clients/{client.pk}/deployments", *map(str, rest)])


def host_url(*rest) -> str:
    return "/".join(["/api/v1/deployments", *map(str, rest)])


# --- Factory ---------------------------------------------------------------------------


def test_variant_list_for_vendor_and_partners(world, platform):
    for persona in ["vendor_admin", "partner_a_engineer", "partner_b_admin"]:
        response = platform(persona).get("/api/v1/variants")
        assert response.status_code == 200, persona
        rows = {row["key"]: row for row in response.json()}
        assert {"base", "itsm", "finance", "hr", "vendor"} <= set(rows)
    itsm = rows["itsm"]
    assert set(itsm) == {"key", "name", "domain", "description", "parent", "latest_version"}
    assert itsm["parent"] == "base" and itsm["latest_version"] == "1.0.0"
    assert rows["base"]["parent"] is None


def test_factory_is_not_for_client_users(world, platform, client_host):
    for persona in ["client_a_admin", "support", "anonymous"]:
        assert platform(persona).get("/api/v1/variants").status_code == 403, persona
    # The factory is served on the platform host only.
    assert client_host("client_a_admin").get("/api/v1/variants").status_code == 404


def test_version_list_partners_see_published_versions_only(world, platform):
    draft = itsm_draft(world)
    vendor = platform("vendor_admin").get("/api/v1/variants/itsm/versions").json()
    assert [(v["version"], v["status"]) for v in vendor] == [("1.1.0", "draft"), ("1.0.0", "published")]
    assert vendor[0]["author"] == "vendor@example.com" and vendor[0]["changelog"] == "Faster triage."
    assert vendor[0]["published_at"] is None and vendor[0]["derived_from"] == "1.0.0"
    assert set(vendor[0]) == {
        "version",
        "status",
        "changelog",
        "author",
        "created_at",
        "published_at",
        "derived_from",
    }
    partner = platform("partner_a_engineer").get("/api/v1/variants/itsm/versions").json()
    assert [v["version"] for v in partner] == ["1.0.0"]
    assert draft.status == AgentVersion.Status.DRAFT
    assert platform("vendor_admin").get("/api/v1/variants/nope/versions").status_code == 404


def test_version_detail_has_the_spec(world, platform):
    response = platform("partner_a_admin").get("/api/v1/variants/itsm/versions/1.0.0")
    assert response.status_code == 200
    body = response.json()
    assert body["variant"] == "itsm" and body["version"] == "1.0.0" and body["status"] == "published"
    assert body["spec"] == itsm_v100().spec and body["spec"]["workflows"]
    itsm_draft(world)
    # A draft exists for the vendor only; to a partner it is not there at all.
    assert platform("vendor_admin").get("/api/v1/variants/itsm/versions/1.1.0").json()["status"] == "draft"
    assert platform("partner_a_admin").get("/api/v1/variants/itsm/versions/1.1.0").status_code == 404
    assert platform("partner_a_admin").get("/api/v1/variants/itsm/versions/9.9.9").status_code == 404
    assert platform("client_a_admin").get("/api/v1/variants/itsm/versions/1.0.0").status_code == 403


def test_diff_of_two_versions(world, platform):
    v110 = itsm_v110(world)
    response = platform("partner_a_engineer").get(
        "/api/v1/variants/itsm/diff", {"from": "1.0.0", "to": "1.1.0"}
    )
    assert response.status_code == 200
    changes = response.json()
    assert {"path": "planner.max_steps", "kind": "changed", "old": 20, "new": 30} in changes
    assert {c["path"] for c in changes} == {"instructions", "planner.max_steps"}
    expected = spec_diff(itsm_v100().spec, v110.spec)
    assert [(c["path"], c["kind"], c["old"], c["new"]) for c in changes] == [
        (e.path, e.kind, e.old, e.new) for e in expected
    ]
    same = platform("partner_a_engineer").get("/api/v1/variants/itsm/diff", {"from": "1.1.0", "to": "1.1.0"})
    assert same.status_code == 200 and same.json() == []


def test_diff_needs_both_versions(world, platform):
    browser = platform("vendor_admin")
    missing_both = browser.get("/api/v1/variants/itsm/diff")
    assert missing_both.status_code == 400
    assert set(missing_both.json()) == {"from", "to"}
    assert "?from=1.0.0&to=1.1.0" in missing_both.json()["from"][0]
    missing_to = browser.get("/api/v1/variants/itsm/diff", {"from": "1.0.0"})
    assert missing_to.status_code == 400 and list(missing_to.json()) == ["to"]
    assert browser.get("/api/v1/variants/itsm/diff", {"from": "1.0.0", "to": "7.0.0"}).status_code == 404
    # A partner cannot diff against a draft it cannot see.
    itsm_draft(world)
    assert browser.get("/api/v1/variants/itsm/diff", {"from": "1.0.0", "to": "1.1.0"}).status_code == 200
    partner = platform("partner_a_admin").get("/api/v1/variants/itsm/diff", {"from": "1.0.0", "to": "1.1.0"})
    assert partner.status_code == 404


# --- Deployments: create, list, detail -------------------------------------------------


def test_partner_engineer_creates_then_everyone_entitled_reads_it(world, platform, client_host):
    response = post(
        platform("partner_a_engineer"),
        platform_url(world.client_a),
        {"name": "Helpdesk", "variant": "itsm", "version": "1.0.0"},
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert set(created) == DETAIL_KEYS
    assert created["name"] == "Helpdesk" and created["variant"] == "itsm" and created["version"] == "1.0.0"
    assert created["status"] == "draft" and created["pending_version"] is None
    assert created["created_by"] == "partner.a.engineer@example.com"
    assert [h["action"] for h in created["history"]] == ["create"]
    pk = created["id"]
    for persona in ["partner_a_engineer", "partner_a_admin", "vendor_admin"]:
        rows = platform(persona).get(platform_url(world.client_a)).json()
        assert [(r["id"], r["status"]) for r in rows] == [(pk, "draft")], persona
        assert set(rows[0]) == DEPLOYMENT_KEYS
        detail = platform(persona).get(platform_url(world.client_a, pk))
        assert detail.status_code == 200 and detail.json()["id"] == pk
    # The client's own users see it on their host.
    for persona in ["client_a_admin", "client_a_operator", "client_a_viewer"]:
        assert [r["id"] for r in client_host(persona).get(host_url()).json()] == [pk], persona
        assert client_host(persona).get(host_url(pk)).json()["history"][0]["action"] == "create"
    assert platform("partner_a_engineer").get(platform_url(world.client_a, 99999)).status_code == 404
    # Another client's host does not know this deployment.
    assert client_host("client_b_admin", world.client_b).get(host_url(pk)).status_code == 404


def test_partner_admin_creates_on_an_unassigned_client(world, platform):
    response = post(
        platform("partner_a_admin"),
        platform_url(world.client_a2),
        {"name": "Payables", "variant": "finance", "version": "1.0.0"},
    )
    assert response.status_code == 201 and response.json()["variant"] == "finance"
    assert deployment_count(world.client_a2) == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"name": "X", "variant": "nope", "version": "1.0.0"},
            "variant",
            "There is no agent variant “nope”.",
        ),
        ({"name": "X", "variant": "itsm", "version": "9.9.9"}, "version", "no published version 9.9.9"),
        (
            {"name": "X", "variant": "itsm", "version": "1.1.0"},
            "version",
            "no published version 1.1.0",
        ),  # draft
        ({"variant": "itsm", "version": "1.0.0"}, "name", "This field is required."),
        ({"name": "X", "variant": "itsm"}, "version", "This field is required."),
    ],
)
def test_create_validation(world, platform, data, field, message):
    itsm_draft(world)
    response = post(platform("partner_a_engineer"), platform_url(world.client_a), data)
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert deployment_count(world.client_a) == 0


def test_create_with_a_taken_name_is_a_400_from_the_service(world, platform):
    make_deployment(world, name="Helpdesk")
    response = post(
        platform("partner_a_engineer"),
        platform_url(world.client_a),
        {"name": "helpdesk", "variant": "itsm", "version": "1.0.0"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "name" and "already has a deployment" in response.json()["detail"]
    assert deployment_count(world.client_a) == 1


def test_the_base_agent_is_not_deployable(world, platform):
    response = post(
        platform("partner_a_engineer"),
        platform_url(world.client_a),
        {"name": "Base", "variant": "base", "version": "1.0.0"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "variant" and "not deployable" in response.json()["detail"]
    assert deployment_count(world.client_a) == 0


def test_only_partner_teams_create(world, platform, client_host):
    data = {"name": "Helpdesk", "variant": "itsm", "version": "1.0.0"}
    assert post(platform("vendor_admin"), platform_url(world.client_a), data).status_code == 403
    assert post(platform("client_a_admin"), platform_url(world.client_a), data).status_code == 403
    # A client's host lists its deployments; creating one is the partner's job on the platform host.
    assert post(client_host("client_a_admin"), host_url(), data).status_code == 405
    assert deployment_count(world.client_a) == 0


# --- Scoping: foreign partner, unassigned engineer, foreign client ---------------------


def test_partner_b_gets_404_on_client_a_and_changes_nothing(world, platform):
    deployment = make_deployment(world)
    before = state(world.client_a, deployment)
    browser = platform("partner_b_admin")
    assert browser.get(platform_url(world.client_a)).status_code == 404
    assert browser.get(platform_url(world.client_a, deployment.pk)).status_code == 404
    create = post(
        browser, platform_url(world.client_a), {"name": "Evil", "variant": "itsm", "version": "1.0.0"}
    )
    assert create.status_code == 404
    submit = post(browser, platform_url(world.client_a, deployment.pk, "transitions"), {"action": "submit"})
    assert submit.status_code == 404
    assert state(world.client_a, deployment) == before and deployment_count(world.client_a) == 1
    # Its own client is fine.
    assert browser.get(platform_url(world.client_b)).status_code == 200


def test_engineer_on_an_unassigned_client_gets_404(world, platform):
    deployment = make_deployment(world, client=world.client_a2, name="Payables")
    before = state(world.client_a2, deployment)
    browser = platform("partner_a_engineer")
    assert browser.get(platform_url(world.client_a2)).status_code == 404
    assert browser.get(platform_url(world.client_a2, deployment.pk)).status_code == 404
    data = {"name": "Other", "variant": "itsm", "version": "1.0.0"}
    assert post(browser, platform_url(world.client_a2), data).status_code == 404
    submit = post(browser, platform_url(world.client_a2, deployment.pk, "transitions"), {"action": "submit"})
    assert submit.status_code == 404
    assert state(world.client_a2, deployment) == before and deployment_count(world.client_a2) == 1


def test_client_b_admin_on_client_a_host_gets_403(world, client_host):
    deployment = make_deployment(world, S.SUBMITTED)
    before = state(world.client_a, deployment)
    browser = client_host("client_b_admin")
    assert browser.get(host_url()).status_code == 403
    assert browser.get(host_url(deployment.pk)).status_code == 403
    response = post(browser, host_url(deployment.pk, "transitions"), {"action": "approve", "reason": "x"})
    assert response.status_code == 403
    assert state(world.client_a, deployment) == before


def test_client_users_and_support_have_no_platform_deployments_api(world, platform):
    for persona in ["client_a_admin", "client_a_viewer", "support", "anonymous"]:
        assert platform(persona).get(platform_url(world.client_a)).status_code == 403, persona


# --- Transitions: the whole flow, role rules, the services' refusals -------------------


def test_lifecycle_through_the_api(world, platform, client_host):
    engineer, vendor, admin = (
        platform("partner_a_engineer"),
        platform("vendor_admin"),
        client_host("client_a_admin"),
    )
    deployment = make_deployment(world)
    on_platform = platform_url(world.client_a, deployment.pk, "transitions")
    on_host = host_url(deployment.pk, "transitions")

    response = post(engineer, on_platform, {"action": "submit", "reason": "Ready for review"})
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    assert response.json()["submitted_by"] == "partner.a.engineer@example.com"
    response = post(admin, on_host, {"action": "reject", "reason": "Wrong queue"})
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert post(engineer, on_platform, {"action": "revise"}).json()["status"] == "draft"
    post(engineer, on_platform, {"action": "submit"})
    assert post(vendor, on_platform, {"action": "approve", "reason": "Fine"}).json()["status"] == "approved"
    assert post(engineer, on_platform, {"action": "deploy"}).json()["status"] == "deployed"

    # Version changes: straight through, or waiting for approval when the client requires it.
    itsm_v110(world)
    moved = post(engineer, on_platform, {"action": "change_version", "version": "1.1.0", "reason": "Upgrade"})
    assert moved.status_code == 200 and moved.json()["version"] == "1.1.0"
    assert moved.json()["history"][0]["action"] == "upgrade"
    Client.objects.filter(pk=world.client_a.pk).update(require_version_change_approval=True)
    waiting = post(engineer, on_platform, {"action": "change_version", "version": "1.0.0"})
    assert waiting.json()["version"] == "1.1.0" and waiting.json()["pending_version"] == "1.0.0"
    rejected = post(admin, on_host, {"action": "reject_change", "reason": "Not now"})
    assert rejected.json()["pending_version"] is None and rejected.json()["version"] == "1.1.0"
    post(engineer, on_platform, {"action": "change_version", "version": "1.0.0", "reason": "Rollback"})
    approved = post(vendor, on_platform, {"action": "approve_change"})
    assert approved.json()["version"] == "1.0.0" and approved.json()["pending_version"] is None

    assert post(engineer, on_platform, {"action": "pause"}).json()["status"] == "paused"
    assert post(engineer, on_platform, {"action": "resume"}).json()["status"] == "deployed"
    final = post(engineer, on_platform, {"action": "retire", "reason": "Replaced"})
    assert final.json()["status"] == "retired"
    history = [(h["action"], h["actor"]) for h in final.json()["history"]]
    assert history[0] == ("retire", "partner.a.engineer@example.com")
    assert ("version_change_approved", "vendor@example.com") in history
    assert ("reject", "client.a.admin@example.com") in history
    assert [
        h["action"] for h in client_host("client_a_viewer").get(host_url(deployment.pk)).json()["history"]
    ] == [h for h, _ in history]


@pytest.mark.parametrize(
    ("persona", "where", "action", "status"),
    [
        ("client_a_operator", "host", "approve", S.SUBMITTED),
        ("client_a_viewer", "host", "approve", S.SUBMITTED),
        ("client_a_operator", "host", "pause", S.DEPLOYED),
        ("client_a_viewer", "host", "reject", S.SUBMITTED),
        ("client_a_admin", "host", "submit", S.DRAFT),  # the partner's side
        ("client_a_admin", "host", "deploy", S.APPROVED),
        ("partner_a_engineer", "platform", "approve", S.SUBMITTED),  # the approver's side
        ("partner_a_admin", "platform", "approve_change", S.DEPLOYED),
        ("vendor_admin", "platform", "submit", S.DRAFT),
        ("vendor_admin", "platform", "change_version", S.DEPLOYED),
    ],
)
def test_transitions_outside_the_role_are_403_and_change_nothing(
    world, platform, client_host, persona, where, action, status
):
    deployment = make_deployment(world, status)
    before = state(world.client_a, deployment)
    if where == "host":
        browser, url = client_host(persona), host_url(deployment.pk, "transitions")
    else:
        browser, url = platform(persona), platform_url(world.client_a, deployment.pk, "transitions")
    response = post(browser, url, {"action": action, "reason": "Because", "version": "1.0.0"})
    assert response.status_code == 403
    assert state(world.client_a, deployment) == before


@pytest.mark.parametrize("action", [[], ["approve"], {"action": "approve"}, 1])
def test_a_non_string_action_on_the_client_host_is_a_400(world, client_host, action):
    deployment = make_deployment(world, S.SUBMITTED)
    before = state(world.client_a, deployment)
    response = post(client_host("client_a_admin"), host_url(deployment.pk, "transitions"), {"action": action})
    assert response.status_code == 400 and "action" in response.json()
    assert state(world.client_a, deployment) == before


def test_operator_is_refused_even_an_unknown_action(world, client_host):
    deployment = make_deployment(world, S.SUBMITTED)
    response = post(
        client_host("client_a_operator"), host_url(deployment.pk, "transitions"), {"action": "nope"}
    )
    assert response.status_code == 403


def test_maker_checker_is_a_400(world, platform, client_host):
    # The engineer who submits is also a client admin of A: it still may not approve its own submission.
    engineer = world.users["partner_a_engineer"]
    ClientMembership.objects.create(user=engineer, client=world.client_a, role=ClientRole.CLIENT_ADMIN)
    deployment = make_deployment(world)
    submitted = post(
        platform("partner_a_engineer"),
        platform_url(world.client_a, deployment.pk, "transitions"),
        {"action": "submit"},
    )
    assert submitted.status_code == 200
    before = state(world.client_a, deployment)
    response = post(
        client_host("partner_a_engineer"), host_url(deployment.pk, "transitions"), {"action": "approve"}
    )
    assert response.status_code == 400
    assert "Maker-checker" in response.json()["detail"]
    assert state(world.client_a, deployment) == before


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [
        (S.DRAFT, {"action": "deploy"}, {"detail": "Cannot deploy"}),  # illegal in this state
        (S.DEPLOYED, {"action": "submit"}, {"detail": "Cannot submit"}),
        (S.DRAFT, {"action": "launch"}, {"action": "is not a valid choice"}),
        # Not a string at all: a 400 from the input serializer, not a 500 from the permission check.
        (S.DRAFT, {"action": []}, {"action": "is not a valid choice"}),
        (S.DRAFT, {"action": ["submit"]}, {"action": "is not a valid choice"}),
        (S.DRAFT, {"action": {"name": "submit"}}, {"action": "is not a valid choice"}),
        (S.DRAFT, {}, {"action": "This field is required."}),
        (S.DEPLOYED, {"action": "change_version"}, {"version": "Give the version to move to"}),
        (
            S.DEPLOYED,
            {"action": "change_version", "version": "4.0.0"},
            {"version": "no published version 4.0.0"},
        ),
        (
            S.DEPLOYED,
            {"action": "change_version", "version": "1.0.0"},
            {"detail": "already on version 1.0.0"},
        ),
    ],
)
def test_refused_transitions_are_400_and_change_nothing(world, platform, status, data, expected):
    deployment = make_deployment(world, status)
    before = state(world.client_a, deployment)
    response = post(
        platform("partner_a_engineer"), platform_url(world.client_a, deployment.pk, "transitions"), data
    )
    assert response.status_code == 400, response.json()
    [(key, text)] = expected.items()
    message = response.json()[key]
    assert text in (message if isinstance(message, str) else message[0]), response.json()
    assert state(world.client_a, deployment) == before


def test_rejecting_needs_a_reason(world, client_host):
    deployment = make_deployment(world, S.SUBMITTED)
    response = post(
        client_host("client_a_admin"), host_url(deployment.pk, "transitions"), {"action": "reject"}
    )
    assert response.status_code == 400 and response.json()["field"] == "reason"
    assert state(world.client_a, deployment)[0]["status"] == S.SUBMITTED


# --- Token authentication and the schema -----------------------------------------------


def token_for(email: str) -> str:
    response = http_client().post("/api/v1/auth/token", {"username": email, "password": PASSWORD})
    assert response.status_code == 200
    return response.json()["token"]


def test_token_auth_on_both_hosts(world):
    deployment = make_deployment(world, S.SUBMITTED)
    engineer = {"HTTP_AUTHORIZATION": f"Token {token_for('partner.a.engineer@example.com')}"}
    admin = {"HTTP_AUTHORIZATION": f"Token {token_for('client.a.admin@example.com')}"}
    variants = http_client().get("/api/v1/variants", **engineer)
    assert variants.status_code == 200 and "itsm" in {v["key"] for v in variants.json()}
    listed = http_client().get(platform_url(world.client_a), **engineer)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [deployment.pk]
    on_host = http_client(host=host_of(world.client_a))
    approved = on_host.post(
        host_url(deployment.pk, "transitions"),
        json.dumps({"action": "approve", "reason": "Checked"}),
        content_type="application/json",
        **admin,
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    # The client admin's token is no key to the platform's deployments API.
    assert http_client().get(platform_url(world.client_a), **admin).status_code == 403


def test_each_host_documents_its_own_endpoints(world):
    platform_paths = set(http_client().get("/api/schema/", {"format": "json"}).json()["paths"])
    client_paths = set(
        http_client(host=host_of(world.client_a)).get("/api/schema/", {"format": "json"}).json()["paths"]
    )
    assert {
        "/api/v1/variants",
        "/api/v1/variants/{key}/versions",
        "/api/v1/variants/{key}/versions/{version}",
        "/api/v1/variants/{key}/diff",
        "/api/v1/clients/{client_id}/deployments",
        "/api/v1/clients/{client_id}/deployments/{id}",
        "/api/v1/clients/{client_id}/deployments/{id}/transitions",
    } <= platform_paths
    assert {
        "/api/v1/deployments",
        "/api/v1/deployments/{id}",
        "/api/v1/deployments/{id}/transitions",
    } <= client_paths
    assert not any("variants" in path or "clients" in path for path in client_paths)
    assert "/api/v1/deployments" not in platform_paths
