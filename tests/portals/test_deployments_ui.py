"""Deployment pages: the partner's (management portal) and the client's (dashboard).

A partner engineer creates a deployment for client A and submits it; client A's
admin approves it on the dashboard; the engineer deploys, pauses, resumes,
retires it and moves its version (with the spec diff shown first, and the
client's approval when the client requires it). Refusals change nothing.
"""

import copy

import pytest
from django.utils import timezone

from apps.deployments import selectors as deployment_selectors
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVariant, AgentVersion
from apps.tenancy.models import Client

PUBLISHED = AgentVersion.Status.PUBLISHED


# --- Fixtures and helpers ----------------------------------------------------------


def _published(variant: AgentVariant, version: str, spec: dict, *, derived_from=None) -> AgentVersion:
    major, minor, patch = (int(part) for part in version.split("."))
    return AgentVersion.objects.create(
        variant=variant,
        version=version,
        major=major,
        minor=minor,
        patch=patch,
        status=PUBLISHED,
        spec=spec,
        changelog=f"Release {version}.",
        published_at=timezone.now(),
        derived_from=derived_from,
    )


def _seeded(key: str) -> AgentVersion:
    """The variant's 1.0.0, published by `seed_factory` when the test world was built."""
    return AgentVersion.objects.get(variant=AgentVariant.objects.get(key=key), version="1.0.0")


@pytest.fixture
def v100(world) -> AgentVersion:
    """ITSM 1.0.0, published."""
    return _seeded("itsm")


@pytest.fixture
def v110(v100) -> AgentVersion:
    """ITSM 1.1.0, published: new instructions and a higher step budget."""
    spec = copy.deepcopy(v100.spec)
    spec["instructions"] = "Triage every ticket within five minutes."
    spec["planner"]["max_steps"] = 30
    return _published(v100.variant, "1.1.0", spec, derived_from=v100)


def partner_urls(world, deployment: Deployment | None = None) -> dict[str, str]:
    base = f"/partner/clients/{world.client_a.pk}/deployments/"
    urls = {"list": base, "create": f"{base}new/"}
    if deployment is not None:
        detail = f"{base}{deployment.pk}/"
        urls |= {"detail": detail, "version": f"{detail}version/", "edit": f"{detail}edit/"}
        urls |= {action: f"{detail}{action}/" for action in ("submit", "deploy", "pause", "resume", "retire")}
    return urls


def reload(world, deployment: Deployment, client: Client | None = None) -> Deployment:
    return deployment_selectors.deployment_get(client=client or world.client_a, pk=deployment.pk)


def create(world, version: AgentVersion, name: str = "Helpdesk") -> Deployment:
    return deployment_services.deployment_create(
        client=world.client_a,
        variant=version.variant,
        version=version,
        name=name,
        actor=world.users["partner_a_engineer"],
    )


def submitted(world, version: AgentVersion, name: str = "Helpdesk") -> Deployment:
    deployment = create(world, version, name)
    deployment_services.deployment_submit(
        client=world.client_a, deployment=deployment, actor=world.users["partner_a_engineer"]
    )
    return reload(world, deployment)


def deployed(world, version: AgentVersion, name: str = "Helpdesk") -> Deployment:
    deployment = submitted(world, version, name)
    deployment_services.deployment_approve(
        client=world.client_a, deployment=deployment, actor=world.users["client_a_admin"]
    )
    deployment_services.deployment_deploy(
        client=world.client_a, deployment=deployment, actor=world.users["partner_a_engineer"]
    )
    return reload(world, deployment)


def text(response) -> str:
    return response.content.decode()


def follow_post(browser, url, data=None) -> str:
    response = browser.post(url, data or {}, follow=True)
    assert response.status_code == 200, (url, response.status_code)
    return text(response)


# --- Management portal: create and submit --------------------------------------------


def test_engineer_creates_a_deployment_and_submits_it(world, platform, v100):
    browser = platform("partner_a_engineer")
    urls = partner_urls(world)
    listing = text(browser.get(urls["list"]))
    assert "No deployments yet" in listing and urls["create"] in listing

    form = text(browser.get(urls["create"]))
    assert f'<option value="{v100.pk}">itsm 1.0.0</option>' in form
    assert f'<option value="{v100.variant.pk}">ITSM agent</option>' in form
    base = AgentVariant.objects.get(key="base")
    assert f'<option value="{base.pk}">' not in form  # the base agent is cloned, never deployed

    response = browser.post(
        urls["create"], {"name": "IT helpdesk", "variant": v100.variant.pk, "version": v100.pk}
    )
    deployment = deployment_selectors.deployment_list(client=world.client_a)[0]
    urls = partner_urls(world, deployment)
    assert response.status_code == 302 and response["Location"] == urls["detail"]
    assert deployment.name == "IT helpdesk" and deployment.status == Deployment.Status.DRAFT
    assert deployment.version == v100 and deployment.created_by == world.users["partner_a_engineer"]

    detail = text(browser.get(urls["detail"]))
    assert "was created as a draft" in detail
    assert f'action="{urls["submit"]}"' in detail
    assert urls["deploy"] not in detail and urls["retire"] not in detail

    page = follow_post(browser, urls["submit"])
    assert "was submitted for the client&#x27;s approval" in page
    deployment = reload(world, deployment)
    assert deployment.status == Deployment.Status.SUBMITTED
    assert deployment.submitted_by == world.users["partner_a_engineer"]
    # Approving is the client's: the partner page offers no such step, and no route takes it.
    assert "Approve" not in page and f'action="{urls["submit"]}"' not in page
    assert browser.post(f"{urls['detail']}approve/").status_code == 404
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED
    history = [
        t.action
        for t in deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)
    ]
    assert history == ["submit", "create"]
    assert "partner.a.engineer@example.com" in page
    assert 'Draft <span aria-hidden="true">→</span><span class="visually-hidden">to</span> Submitted' in page

    listing = text(browser.get(urls["list"]))
    assert "IT helpdesk" in listing and "ITSM agent" in listing and 'bg-blue-lt">Submitted' in listing


def test_create_checks_the_version_belongs_to_the_variant_and_the_name_is_free(world, platform, v100):
    finance = _seeded("finance")
    browser = platform("partner_a_admin")
    urls = partner_urls(world)
    response = browser.post(
        urls["create"], {"name": "Payables", "variant": finance.variant.pk, "version": v100.pk}
    )
    assert response.status_code == 200
    assert "itsm 1.0.0 is not a version of Finance agent." in text(response)

    create(world, v100, "Helpdesk")
    response = browser.post(
        urls["create"], {"name": "helpdesk", "variant": v100.variant.pk, "version": v100.pk}
    )
    assert response.status_code == 200 and "already has a deployment named" in text(response)
    assert [d.name for d in deployment_selectors.deployment_list(client=world.client_a)] == ["Helpdesk"]


def test_draft_versions_are_not_offered(world, platform, v100):
    draft = AgentVersion.objects.create(
        variant=v100.variant, version="9.0.0", major=9, minor=0, patch=0, spec=v100.spec, changelog="wip"
    )
    page = text(platform("partner_a_engineer").get(partner_urls(world)["create"]))
    assert f'value="{draft.pk}"' not in page


def test_a_rejected_deployment_is_revised_edited_and_resubmitted(world, platform, v100, v110):
    deployment = submitted(world, v100)
    deployment_services.deployment_reject(
        client=world.client_a, deployment=deployment, actor=world.users["client_a_admin"], reason="Use 1.1.0"
    )
    browser = platform("partner_a_engineer")
    urls = partner_urls(world, deployment)
    assert urls["edit"] not in text(browser.get(urls["detail"]))  # rejected: revise first
    follow_post(browser, f"{urls['detail']}revise/")

    detail = text(browser.get(urls["detail"]))
    assert f'href="{urls["edit"]}"' in detail
    form = text(browser.get(urls["edit"]))
    assert 'value="Helpdesk"' in form
    assert f'<option value="{v100.pk}" selected>itsm 1.0.0</option>' in form
    assert f'<option value="{v110.pk}">itsm 1.1.0</option>' in form
    finance = _seeded("finance")
    assert f'value="{finance.pk}"' not in form  # only this variant's versions

    response = browser.post(urls["edit"], {"name": "IT helpdesk", "version": v110.pk})
    assert response.status_code == 302 and response["Location"] == urls["detail"]
    deployment = reload(world, deployment)
    assert (deployment.name, deployment.version, deployment.status) == (
        "IT helpdesk",
        v110,
        Deployment.Status.DRAFT,
    )
    page = follow_post(browser, urls["submit"])
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED
    history = deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)
    assert [t.action for t in history][:3] == ["submit", "edit", "revise"]
    assert "Renamed from “Helpdesk”." in page and urls["edit"] not in page


def test_edit_refuses_bad_input_and_non_drafts_and_changes_nothing(world, platform, v100):
    finance = _seeded("finance")
    create(world, v100, "Finance desk")
    deployment = create(world, v100, "Helpdesk")
    browser = platform("partner_a_admin")
    urls = partner_urls(world, deployment)
    response = browser.post(urls["edit"], {"name": "Helpdesk", "version": finance.pk})
    assert response.status_code == 200 and "Choose one of the listed published versions." in text(response)
    response = browser.post(urls["edit"], {"name": "finance desk", "version": v100.pk})
    assert response.status_code == 200 and "already has a deployment named" in text(response)
    after = reload(world, deployment)
    assert (after.name, after.version) == ("Helpdesk", v100)
    assert len(deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)) == 1

    submitted_one = submitted(world, v100, "Submitted desk")
    urls = partner_urls(world, submitted_one)
    for response in (
        browser.get(urls["edit"]),
        browser.post(urls["edit"], {"name": "X", "version": v100.pk}),
    ):
        assert response.status_code == 302 and response["Location"] == urls["detail"]
    page = text(browser.get(urls["detail"]))
    assert "Cannot edit “Submitted desk”: it is submitted" in page and urls["edit"] not in page
    assert reload(world, submitted_one).name == "Submitted desk"


def test_client_page_links_to_deployments(world, platform, v100):
    create(world, v100, "Helpdesk")
    page = text(platform("partner_a_engineer").get(f"/partner/clients/{world.client_a.pk}/"))
    assert partner_urls(world)["list"] in page and "Helpdesk" in page


def test_other_partner_gets_404_on_every_deployment_page(world, platform, v100):
    deployment = submitted(world, v100)
    urls = partner_urls(world, deployment)
    browser = platform("partner_b_admin")
    for key in ("list", "create", "detail", "version", "retire", "edit"):
        assert browser.get(urls[key]).status_code == 404, key
    for key in ("submit", "deploy", "retire", "version", "create", "edit"):
        assert browser.post(urls[key], {"version": v100.pk, "confirm": "1"}).status_code == 404, key
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED
    # An engineer not assigned to a client does not see its deployments either.
    engineer = platform("partner_a_engineer")
    assert engineer.get(f"/partner/clients/{world.client_a2.pk}/deployments/").status_code == 404


# --- Client dashboard: approvals ----------------------------------------------------


def test_client_admin_approves_a_submitted_deployment(world, client_host, v100):
    deployment = submitted(world, v100)
    browser = client_host("client_a_admin")
    home = text(browser.get("/"))
    assert 'data-testid="agents-awaiting">1<' in home and "/agents/" in home

    listing = text(browser.get("/agents/"))
    assert "Awaiting your approval" in listing
    assert f'action="/agents/{deployment.pk}/decide/"' in listing and 'value="approve"' in listing

    detail = text(browser.get(f"/agents/{deployment.pk}/"))
    assert "partner.a.engineer@example.com submitted ITSM agent" in detail
    assert 'value="approve"' in detail and 'value="reject"' in detail

    page = follow_post(
        browser, f"/agents/{deployment.pk}/decide/", {"decision": "approve", "reason": "Looks good"}
    )
    assert "is approved" in page
    deployment = reload(world, deployment)
    assert deployment.status == Deployment.Status.APPROVED
    last = deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)[0]
    assert (last.action, last.actor, last.reason) == ("approve", world.users["client_a_admin"], "Looks good")
    assert 'value="approve"' not in page  # nothing left to decide
    assert "Awaiting your approval" not in text(browser.get("/agents/"))


def test_rejecting_needs_a_reason(world, client_host, v100):
    deployment = submitted(world, v100)
    browser = client_host("client_a_admin")
    page = follow_post(browser, f"/agents/{deployment.pk}/decide/", {"decision": "reject", "reason": "  "})
    assert "Say why you reject it" in page
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED

    page = follow_post(
        browser, f"/agents/{deployment.pk}/decide/", {"decision": "reject", "reason": "Wrong variant"}
    )
    assert "was rejected" in page and "Wrong variant" in page
    assert reload(world, deployment).status == Deployment.Status.REJECTED


def test_a_decision_the_service_refuses_is_shown_and_changes_nothing(world, client_host, v100):
    deployment = create(world, v100)  # a draft: nothing to approve yet
    page = follow_post(
        client_host("client_a_admin"), f"/agents/{deployment.pk}/decide/", {"decision": "approve"}
    )
    assert "Cannot approve" in page
    assert reload(world, deployment).status == Deployment.Status.DRAFT


@pytest.mark.parametrize("persona", ["client_a_operator", "client_a_viewer"])
def test_operators_and_viewers_see_agents_but_cannot_decide(world, client_host, v100, persona):
    deployment = submitted(world, v100)
    browser = client_host(persona)
    listing = text(browser.get("/agents/"))
    assert "Helpdesk" in listing and "Awaiting your approval" not in listing
    detail = text(browser.get(f"/agents/{deployment.pk}/"))
    assert "A client admin decides." in detail and 'value="approve"' not in detail
    response = browser.post(f"/agents/{deployment.pk}/decide/", {"decision": "approve"})
    assert response.status_code == 403
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED
    assert len(deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)) == 2


def test_another_clients_admin_is_refused_on_client_a_host(world, client_host, v100):
    deployment = submitted(world, v100)
    browser = client_host("client_b_admin")
    assert browser.get("/agents/").status_code == 403
    assert browser.get(f"/agents/{deployment.pk}/").status_code == 403
    assert browser.post(f"/agents/{deployment.pk}/decide/", {"decision": "approve"}).status_code == 403
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED
    # On its own host, client B has no such deployment.
    own = client_host("client_b_admin", client=world.client_b)
    assert own.get(f"/agents/{deployment.pk}/").status_code == 404
    assert own.post(f"/agents/{deployment.pk}/decide/", {"decision": "approve"}).status_code == 404
    assert reload(world, deployment).status == Deployment.Status.SUBMITTED


# --- Management portal: the lifecycle -------------------------------------------------


def test_deploy_pause_resume_and_retire(world, platform, client_host, v100):
    deployment = submitted(world, v100)
    follow_post(client_host("client_a_admin"), f"/agents/{deployment.pk}/decide/", {"decision": "approve"})
    browser = platform("partner_a_engineer")
    urls = partner_urls(world, deployment)

    assert f'action="{urls["deploy"]}"' in text(browser.get(urls["detail"]))
    assert "is deployed" in follow_post(browser, urls["deploy"])
    assert reload(world, deployment).status == Deployment.Status.DEPLOYED

    page = follow_post(browser, urls["pause"])
    assert "is paused" in page and f'action="{urls["resume"]}"' in page
    assert reload(world, deployment).status == Deployment.Status.PAUSED

    assert "is running again" in follow_post(browser, urls["resume"])
    assert reload(world, deployment).status == Deployment.Status.DEPLOYED

    # Retiring asks first: the detail page links to a confirmation page, which posts.
    detail = text(browser.get(urls["detail"]))
    assert f'href="{urls["retire"]}"' in detail
    confirm = text(browser.get(urls["retire"]))
    assert "Retire “Helpdesk”?" in confirm and f'action="{urls["retire"]}"' in confirm
    assert reload(world, deployment).status == Deployment.Status.DEPLOYED
    page = follow_post(browser, urls["retire"])
    assert "was retired" in page
    assert reload(world, deployment).status == Deployment.Status.RETIRED

    actions = [
        t.action
        for t in deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)
    ]
    assert actions == ["retire", "resume", "pause", "deploy", "approve", "submit", "create"]

    # The dashboard hides retired agents unless asked.
    viewer = client_host("client_a_viewer")
    assert "Helpdesk" not in text(viewer.get("/agents/"))
    assert "Helpdesk" in text(viewer.get("/agents/", {"retired": "1"}))


def test_an_illegal_step_is_refused_with_a_message_and_changes_nothing(world, platform, v100):
    deployment = create(world, v100)
    browser = platform("partner_a_engineer")
    urls = partner_urls(world, deployment)
    for action in ("deploy", "pause", "resume", "retire"):
        page = follow_post(browser, urls[action])
        assert "Cannot " in page and "it is draft" in page, action
    assert reload(world, deployment).status == Deployment.Status.DRAFT
    assert len(deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)) == 1
    # Unknown steps do not exist; lifecycle steps are POST-only (retire shows its confirmation).
    assert browser.post(f"{urls['detail']}explode/").status_code == 404
    assert browser.get(urls["submit"]).status_code == 405
    assert reload(world, deployment).status == Deployment.Status.DRAFT


# --- Version changes -----------------------------------------------------------------


def test_version_change_shows_the_diff_before_moving(world, platform, v100, v110):
    deployment = deployed(world, v100)
    browser = platform("partner_a_engineer")
    urls = partner_urls(world, deployment)
    assert f'href="{urls["version"]}"' in text(browser.get(urls["detail"]))

    form = text(browser.get(urls["version"]))
    assert f'<option value="{v110.pk}">itsm 1.1.0</option>' in form
    assert f'<option value="{v100.pk}"' not in form  # not the pinned one
    assert 'data-testid="spec-diff"' not in form

    preview = text(browser.get(urls["version"], {"version": v110.pk}))
    assert 'data-testid="spec-diff"' in preview
    assert 'data-path="instructions"' in preview and 'data-path="planner.max_steps"' in preview
    assert "Triage every ticket within five minutes." in preview
    assert 'name="confirm" value="1"' in preview
    assert reload(world, deployment).version == v100  # previewing moves nothing

    # The select asks for the diff alone over htmx.
    fragment = text(browser.get(urls["version"], {"version": v110.pk}, HTTP_HX_REQUEST="true"))
    assert fragment.lstrip().startswith('<div id="version-diff"') and "<html" not in fragment
    assert 'data-path="instructions"' in fragment

    # Without the confirmation, a POST only shows the diff again.
    response = browser.post(urls["version"], {"version": v110.pk})
    assert response.status_code == 200 and 'data-testid="spec-diff"' in text(response)
    assert reload(world, deployment).version == v100

    page = follow_post(browser, urls["version"], {"version": v110.pk, "confirm": "1", "reason": "New triage"})
    assert "moved to 1.1.0" in page
    deployment = reload(world, deployment)
    assert deployment.version == v110 and deployment.pending_version is None
    last = deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)[0]
    assert (last.action, last.from_version, last.to_version, last.reason) == (
        "upgrade",
        v100,
        v110,
        "New triage",
    )

    # Rolling back is the same path.
    page = follow_post(browser, urls["version"], {"version": v100.pk, "confirm": "1"})
    assert "moved to 1.0.0" in page and reload(world, deployment).version == v100


def test_version_change_refuses_other_variants_versions(world, platform, v100, v110):
    finance = _seeded("finance")
    deployment = deployed(world, v100)
    browser = platform("partner_a_engineer")
    url = partner_urls(world, deployment)["version"]
    preview = text(browser.get(url, {"version": finance.pk}))
    assert (
        "Choose one of the listed published versions." in preview and 'data-testid="spec-diff"' not in preview
    )
    response = browser.post(url, {"version": finance.pk, "confirm": "1"})
    assert response.status_code == 200
    assert reload(world, deployment).version == v100


def test_version_change_waits_for_the_client_admin_when_required(world, platform, client_host, v100, v110):
    Client.objects.filter(pk=world.client_a.pk).update(require_version_change_approval=True)
    world.client_a.refresh_from_db()
    deployment = deployed(world, v100)
    browser = platform("partner_a_engineer")
    urls = partner_urls(world, deployment)
    assert "approves version changes" in text(browser.get(urls["version"]))

    page = follow_post(browser, urls["version"], {"version": v110.pk, "confirm": "1", "reason": "New triage"})
    assert "waiting for the client&#x27;s approval" in page
    assert 'data-testid="pending-change"' in page
    deployment = reload(world, deployment)
    assert deployment.version == v100 and deployment.pending_version == v110
    assert f'href="{urls["version"]}"' not in page  # one change at a time
    listing = text(browser.get(urls["list"]))
    assert "awaiting approval" in listing

    # Operators see the request and the diff but cannot decide.
    operator = client_host("client_a_operator")
    detail = text(operator.get(f"/agents/{deployment.pk}/"))
    assert 'data-path="instructions"' in detail and 'value="approve_change"' not in detail
    assert (
        operator.post(f"/agents/{deployment.pk}/decide/", {"decision": "approve_change"}).status_code == 403
    )

    admin = client_host("client_a_admin")
    assert 'value="approve_change"' in text(admin.get("/agents/"))
    detail = text(admin.get(f"/agents/{deployment.pk}/"))
    assert 'data-testid="spec-diff"' in detail and "Triage every ticket within five minutes." in detail
    assert 'value="approve_change"' in detail and 'value="reject_change"' in detail

    page = follow_post(admin, f"/agents/{deployment.pk}/decide/", {"decision": "approve_change"})
    assert "version change of “Helpdesk” is approved" in page
    deployment = reload(world, deployment)
    assert deployment.version == v110 and deployment.pending_version is None
    assert deployment_selectors.deployment_history(client=world.client_a, deployment=deployment)[
        0
    ].action == ("version_change_approved")


def test_a_pending_version_change_can_be_rejected_with_a_reason(world, platform, client_host, v100, v110):
    Client.objects.filter(pk=world.client_a.pk).update(require_version_change_approval=True)
    world.client_a.refresh_from_db()
    deployment = deployed(world, v100)
    deployment_services.deployment_change_version(
        client=world.client_a, deployment=deployment, version=v110, actor=world.users["partner_a_engineer"]
    )
    admin = client_host("client_a_admin")
    url = f"/agents/{deployment.pk}/decide/"
    assert "Say why you reject it" in follow_post(admin, url, {"decision": "reject_change"})
    assert reload(world, deployment).pending_version == v110
    page = follow_post(admin, url, {"decision": "reject_change", "reason": "Not during quarter close"})
    assert "was rejected" in page
    deployment = reload(world, deployment)
    assert deployment.version == v100 and deployment.pending_version is None
