"""Super-admin portal: the Agent Factory (variants, the spec editor, diffs, rollback, rebase) and rollouts."""

import copy
import re

import pytest
from django_tenants.utils import tenant_context

from apps.deployments import selectors as deployment_selectors
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory import selectors
from apps.factory import services as factory_services
from apps.factory.models import AgentVariant, AgentVersion, Rollout, RolloutTarget
from apps.factory.yaml_spec import spec_to_yaml

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def vendor(world):
    return world.users["vendor_admin"]


def publish(variant_key: str, version: str, change, actor) -> AgentVersion:
    """Publish a new version of a variant: its current spec with `change(spec)` applied."""
    variant = selectors.access_variant(variant_key)
    spec = copy.deepcopy(selectors.latest_published(variant).spec)
    change(spec)
    draft = factory_services.version_save_draft(
        variant=variant, spec=spec, version=version, changelog=f"Test change {version}.", actor=actor
    )
    factory_services.version_publish(version=draft, actor=actor)
    return selectors.access_version(variant=variant, version=version)


def set_instructions(text: str):
    def change(spec):
        spec["instructions"] = text

    return change


def deployed(world, *, client=None, variant_key="itsm", version="1.0.0", name="Service desk") -> Deployment:
    """A deployment of the variant at that version, taken through the approval flow to deployed."""
    client = client or world.client_a
    variant = selectors.access_variant(variant_key)
    pinned = selectors.access_version(variant=variant, version=version)
    engineer, admin = world.users["partner_a_engineer"], world.users["client_a_admin"]
    deployment = deployment_services.deployment_create(
        client=client, variant=variant, version=pinned, name=name, actor=engineer
    )
    deployment_services.deployment_submit(client=client, deployment=deployment, actor=engineer)
    deployment_services.deployment_approve(client=client, deployment=deployment, actor=admin)
    deployment_services.deployment_deploy(client=client, deployment=deployment, actor=admin)
    return deployment_selectors.deployment_get(client=client, pk=deployment.pk)


def page(response) -> str:
    return response.content.decode()


# --- Pages ----------------------------------------------------------------------------


def test_every_factory_page_renders_for_the_platform_admin(world, platform, vendor):
    publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    browser = platform("vendor_admin")
    for url in [
        "/vendor/factory/",
        "/vendor/factory/itsm/",
        "/vendor/factory/itsm/clone/",
        "/vendor/factory/itsm/versions/new/",
        "/vendor/factory/itsm/versions/1.0.0/",
        "/vendor/factory/itsm/diff/?from=1.0.0&to=1.1.0",
        "/vendor/factory/itsm/diff/",
        "/vendor/factory/itsm/versions/1.0.0/rollback/",
        "/vendor/factory/itsm/rebase/",
        "/vendor/rollouts/",
        "/vendor/rollouts/new/",
        f"/vendor/clients/{world.client_a.pk}/",
    ]:
        response = browser.get(url)
        assert response.status_code == 200, url
        assert "<script>" not in page(response) and " style=" not in page(response), url
    home = page(browser.get("/vendor/factory/"))
    for key in ("base", "itsm", "finance", "hr", "vendor"):
        assert f"<code>{key}</code>" in home
    assert "1.1.0" in home and "Policy packs" in home
    nav = page(browser.get("/vendor/"))
    assert 'href="/vendor/factory/"' in nav and 'href="/vendor/rollouts/"' in nav


def test_unknown_variant_or_version_is_404(world, platform):
    browser = platform("vendor_admin")
    assert browser.get("/vendor/factory/nope/").status_code == 404
    assert browser.get("/vendor/factory/itsm/versions/9.9.9/").status_code == 404
    assert browser.get("/vendor/factory/itsm/diff/?from=1.0.0&to=9.9.9").status_code == 404
    assert browser.get("/vendor/factory/itsm/versions/9.9.9/rollback/").status_code == 404


def test_variant_detail_shows_history_and_actions(world, platform, vendor):
    publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    html = page(platform("vendor_admin").get("/vendor/factory/itsm/"))
    assert "Test change 1.1.0." in html and "Initial release." in html
    assert "/vendor/factory/itsm/diff/?from=1.0.0&amp;to=1.1.0" in html
    assert "/vendor/factory/itsm/versions/1.0.0/rollback/" in html
    assert "/vendor/factory/itsm/versions/1.1.0/rollback/" not in html  # the current version
    assert "/vendor/factory/itsm/clone/" in html and "/vendor/factory/itsm/versions/new/" in html


# --- Clone ----------------------------------------------------------------------------


def test_clone_variant(world, platform):
    browser = platform("vendor_admin")
    response = browser.post("/vendor/factory/itsm/clone/", {"key": "Bad Key", "name": ""})
    assert response.status_code == 200 and "This field is required." in page(response)
    assert not AgentVariant.objects.filter(name="").exists()
    response = browser.post(
        "/vendor/factory/itsm/clone/",
        {"key": "itsm-emea", "name": "ITSM EMEA", "domain": "IT service management", "description": "EU"},
    )
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm-emea/"
    clone = AgentVariant.objects.get(key="itsm-emea")
    assert clone.parent.key == "itsm"
    assert page(browser.get("/vendor/factory/itsm-emea/")).count("ITSM EMEA") >= 1
    # The key is unique: cloning again under the same key is refused on the form.
    again = browser.post("/vendor/factory/itsm/clone/", {"key": "itsm-emea", "name": "Twice"})
    assert again.status_code == 200 and "already exists" in page(again)
    assert AgentVariant.objects.filter(key="itsm-emea").count() == 1


# --- The spec editor ------------------------------------------------------------------


def editor_post(browser, spec_text: str, *, action="save", version="1.1.0", changelog="Shorter prompt."):
    return browser.post(
        "/vendor/factory/itsm/versions/new/",
        {"spec": spec_text, "version": version, "changelog": changelog, "action": action},
    )


def itsm_yaml() -> str:
    variant = selectors.access_variant("itsm")
    return spec_to_yaml(selectors.latest_published(variant).spec)


def test_editor_is_prefilled_with_the_current_spec_and_next_minor(world, platform):
    html = page(platform("vendor_admin").get("/vendor/factory/itsm/versions/new/"))
    assert 'name="spec"' in html and 'value="1.1.0"' in html
    assert "IT service management agent" in html  # the published instructions, in the textarea
    assert 'hx-post="/vendor/factory/itsm/versions/preview/"' in html
    assert 'hx-trigger="keyup changed delay:800ms"' in html and 'hx-target="#diff-preview"' in html


def test_save_with_a_yaml_syntax_error_shows_the_line_and_saves_nothing(world, platform):
    before = AgentVersion.objects.count()
    text = itsm_yaml() + "tools: [unclosed\n"
    broken_line = text.count("\n")  # the last line
    response = editor_post(platform("vendor_admin"), text)
    assert response.status_code == 200
    html = page(response)
    assert "YAML syntax error" in html or "duplicate key" in html
    assert "Line " in html
    assert "[unclosed" in html  # the text is kept in the textarea
    assert AgentVersion.objects.count() == before
    assert broken_line > 1


def test_save_with_a_validation_error_shows_its_line(world, platform):
    text = itsm_yaml().replace("max_steps: 20", "max_steps: 0")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "max_steps: 0" in row)
    response = editor_post(platform("vendor_admin"), text)
    html = page(response)
    assert response.status_code == 200
    assert f"Line {line}" in html and "planner.max_steps" in html
    assert not AgentVersion.objects.filter(variant__key="itsm", version="1.1.0").exists()


def test_save_draft_then_publish(world, platform):
    browser = platform("vendor_admin")
    text = itsm_yaml().replace("escalate when priority", "escalate at once when priority")
    response = editor_post(browser, text)
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm/versions/new/"
    draft = AgentVersion.objects.get(variant__key="itsm", version="1.1.0")
    assert draft.status == AgentVersion.Status.DRAFT and "escalate at once" in draft.spec["instructions"]
    # The editor now shows the draft, its changes beside it, and the discard button.
    html = page(browser.get("/vendor/factory/itsm/versions/new/"))
    assert "escalate at once" in html and "Discard draft" in html and 'data-path="instructions"' in html
    # Publishing saves the text again and publishes it.
    response = editor_post(browser, text, action="publish", changelog="Escalate at once.")
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm/versions/1.1.0/"
    draft.refresh_from_db()
    assert draft.status == AgentVersion.Status.PUBLISHED and draft.changelog == "Escalate at once."
    detail = page(browser.get("/vendor/factory/itsm/versions/1.1.0/"))
    assert "escalate at once" in detail and "<pre" in detail


def test_preview_returns_only_the_diff_partial_and_writes_nothing(world, platform):
    browser = platform("vendor_admin")
    before = AgentVersion.objects.count()
    text = itsm_yaml().replace("max_steps: 20", "max_steps: 30")
    response = browser.post("/vendor/factory/itsm/versions/preview/", {"spec": text}, **HTMX)
    html = page(response)
    assert response.status_code == 200 and "<html" not in html
    assert 'data-path="planner.max_steps"' in html and "table-warning" in html
    response = browser.post("/vendor/factory/itsm/versions/preview/", {"spec": "tools: [oops\n"}, **HTMX)
    html = page(response)
    assert "<html" not in html and "Line " in html and "YAML syntax error" in html
    unchanged = browser.post("/vendor/factory/itsm/versions/preview/", {"spec": itsm_yaml()}, **HTMX)
    assert "No changes yet" in page(unchanged)
    assert AgentVersion.objects.count() == before


def test_discard_draft(world, platform):
    browser = platform("vendor_admin")
    editor_post(browser, itsm_yaml().replace("max_steps: 20", "max_steps: 30"))
    assert AgentVersion.objects.filter(variant__key="itsm", status="draft").exists()
    response = browser.post("/vendor/factory/itsm/versions/discard/")
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm/"
    assert not AgentVersion.objects.filter(variant__key="itsm", status="draft").exists()
    # Nothing left to discard: a message, no error.
    assert browser.post("/vendor/factory/itsm/versions/discard/").status_code == 302


# --- Diff and rollback ----------------------------------------------------------------


def test_diff_page_shows_changed_paths_side_by_side(world, platform, vendor):
    def change(spec):
        spec["instructions"] = "Triage tickets, briefly."
        spec["planner"]["max_steps"] = 40

    publish("itsm", "1.1.0", change, vendor)
    html = page(platform("vendor_admin").get("/vendor/factory/itsm/diff/?from=1.0.0&to=1.1.0"))
    assert 'data-path="instructions"' in html and 'data-path="planner.max_steps"' in html
    assert "2 changed paths" in html
    assert 'data-testid="spec-old"' in html and 'data-testid="spec-new"' in html
    assert "Triage tickets, briefly." in html and "IT service management agent" in html
    same = page(platform("vendor_admin").get("/vendor/factory/itsm/diff/?from=1.1.0&to=1.1.0"))
    assert "No differences" in same


def test_rollback_confirms_then_creates_a_new_version(world, platform, vendor):
    original = selectors.access_version(variant=selectors.access_variant("itsm"), version="1.0.0")
    publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    browser = platform("vendor_admin")
    confirm = browser.get("/vendor/factory/itsm/versions/1.0.0/rollback/")
    html = page(confirm)
    assert confirm.status_code == 200 and 'data-path="instructions"' in html and "Roll back" in html
    assert AgentVersion.objects.filter(variant__key="itsm").count() == 2  # GET changes nothing
    response = browser.post("/vendor/factory/itsm/versions/1.0.0/rollback/")
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm/"
    newest = selectors.latest_version(selectors.access_variant("itsm"))
    assert newest.version not in ("1.0.0", "1.1.0") and newest.spec == original.spec
    assert "1.0.0" in newest.changelog
    followed = page(browser.get("/vendor/factory/itsm/"))
    assert "Rolled back" in followed


# --- Rebase ---------------------------------------------------------------------------


def test_rebase_clean_creates_a_draft(world, platform, vendor):
    browser = platform("vendor_admin")
    browser.post("/vendor/factory/base/clone/", {"key": "base-copy", "name": "Base copy"})
    assert browser.get("/vendor/factory/base-copy/rebase/").status_code == 200  # up to date: nothing to do

    def change(spec):
        spec["planner"]["max_steps"] = 35

    publish("base", "1.1.0", change, vendor)
    home = page(browser.get("/vendor/factory/"))
    assert 'data-testid="variants-behind"' in home and "/vendor/factory/base-copy/rebase/" in home
    plan = page(browser.get("/vendor/factory/base-copy/rebase/"))
    assert "The merge is clean" in plan and "Create draft" in plan
    base_110 = selectors.access_version(variant=selectors.access_variant("base"), version="1.1.0")
    assert f'name="base_version" value="{base_110.pk}"' in plan
    response = browser.post("/vendor/factory/base-copy/rebase/", {"base_version": base_110.pk})
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/base-copy/versions/new/"
    draft = selectors.draft_of(selectors.access_variant("base-copy"))
    assert draft is not None and draft.spec["planner"]["max_steps"] == 35
    assert draft.base_version.version == "1.1.0"


def test_rebase_with_conflicts_is_resolved_path_by_path(world, platform, vendor):
    # ITSM's instructions differ from the base's; the base now changes its own instructions too.
    base_110 = publish("base", "1.1.0", set_instructions("Be brief and precise."), vendor)
    browser = platform("vendor_admin")
    assert "/vendor/factory/itsm/rebase/" in page(browser.get("/vendor/factory/"))
    plan = browser.get("/vendor/factory/itsm/rebase/")
    html = page(plan)
    assert 'data-testid="rebase-conflicts"' in html
    assert 'name="resolve:instructions"' in html and "Be brief and precise." in html
    # Unresolved conflicts: the form says so and nothing is created.
    response = browser.post("/vendor/factory/itsm/rebase/", {"base_version": base_110.pk})
    assert response.status_code == 200 and "This field is required." in page(response)
    assert selectors.draft_of(selectors.access_variant("itsm")) is None
    response = browser.post(
        "/vendor/factory/itsm/rebase/", {"base_version": base_110.pk, "resolve:instructions": "theirs"}
    )
    assert response.status_code == 302 and response["Location"] == "/vendor/factory/itsm/versions/new/"
    draft = selectors.draft_of(selectors.access_variant("itsm"))
    assert draft.spec["instructions"] == "Be brief and precise."


def test_rebase_refuses_choices_made_for_a_base_that_changed_since_the_page_loaded(world, platform, vendor):
    base_110 = publish("base", "1.1.0", set_instructions("Be brief and precise."), vendor)
    browser = platform("vendor_admin")
    assert f'name="base_version" value="{base_110.pk}"' in page(browser.get("/vendor/factory/itsm/rebase/"))
    # The base publishes again before the person submits what they chose for 1.1.0.
    base_120 = publish("base", "1.2.0", set_instructions("Be brief, precise and kind."), vendor)
    response = browser.post(
        "/vendor/factory/itsm/rebase/", {"base_version": base_110.pk, "resolve:instructions": "theirs"}
    )
    html = page(response)
    assert response.status_code == 200
    assert "The base changed since you opened this page; review the new plan." in html
    assert selectors.draft_of(selectors.access_variant("itsm")) is None
    # The page now shows the new plan, for 1.2.0, with fresh choices.
    assert f'name="base_version" value="{base_120.pk}"' in html and "Be brief, precise and kind." in html
    assert re.search(r"<input[^>]*\bchecked\b", html) is None
    # A post without the base it was made for is refused the same way.
    refused = browser.post("/vendor/factory/itsm/rebase/", {"resolve:instructions": "theirs"})
    assert (
        "The base changed" in page(refused) and selectors.draft_of(selectors.access_variant("itsm")) is None
    )
    response = browser.post(
        "/vendor/factory/itsm/rebase/", {"base_version": base_120.pk, "resolve:instructions": "theirs"}
    )
    assert response.status_code == 302
    draft = selectors.draft_of(selectors.access_variant("itsm"))
    assert draft.base_version == base_120 and draft.spec["instructions"] == "Be brief, precise and kind."


# --- Policy pack pinning --------------------------------------------------------------


def test_version_detail_shows_the_policy_pack_version_it_ships_with(world, platform, vendor):
    from apps.factory.models import PolicyPackVersion

    browser = platform("vendor_admin")
    html = page(browser.get("/vendor/factory/itsm/versions/1.0.0/"))
    assert "Policy pack" in html and "itsm-baseline 1.0.0" in html
    first = PolicyPackVersion.objects.get(pack__key="itsm-baseline", version="1.0.0")
    factory_services.policy_pack_publish(
        pack_key="itsm-baseline", name=first.pack.name, version="1.1.0", rules=first.rules, changelog="New."
    )
    assert "itsm-baseline 1.0.0" in page(browser.get("/vendor/factory/itsm/versions/1.0.0/"))
    publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    assert "itsm-baseline 1.1.0" in page(browser.get("/vendor/factory/itsm/versions/1.1.0/"))


def test_a_refused_save_and_publish_keeps_the_draft_as_it_was(world, platform):
    browser = platform("vendor_admin")
    editor_post(browser, itsm_yaml().replace("max_steps: 20", "max_steps: 30"), changelog="Draft.")
    before = AgentVersion.objects.get(variant__key="itsm", status="draft")
    text = itsm_yaml().replace("policy_pack: itsm-baseline", "policy_pack: nope")
    response = editor_post(browser, text, action="publish", version="1.2.0", changelog="Publish.")
    assert response.status_code == 200 and "unknown policy pack" in page(response)
    after = AgentVersion.objects.get(variant__key="itsm", status="draft")
    assert (after.pk, after.version, after.changelog, after.spec) == (
        before.pk,
        "1.1.0",
        "Draft.",
        before.spec,
    )
    assert AgentVersion.objects.filter(variant__key="itsm", status="published").count() == 1


def test_clone_of_a_source_whose_spec_is_no_longer_valid_is_refused_on_the_form(world, platform, vendor):
    from django.utils import timezone

    variant = selectors.access_variant("itsm")
    draft = factory_services.version_save_draft(
        variant=variant, spec=itsm_yaml(), version="1.1.0", changelog="x", actor=vendor
    )
    broken = {"instructions": "Run anything.", "tools": [{"name": "shell.exec"}]}
    AgentVersion.objects.filter(pk=draft.pk).update(
        spec=broken, status="published", published_at=timezone.now()
    )
    response = platform("vendor_admin").post(
        "/vendor/factory/itsm/clone/", {"key": "itsm-2", "name": "ITSM 2"}
    )
    assert response.status_code == 200 and "is not valid any more" in page(response)
    assert not AgentVariant.objects.filter(key="itsm-2").exists()


# --- Rollouts -------------------------------------------------------------------------


def test_rollout_create_run_detail_and_revert(world, platform, vendor):
    deployment = deployed(world)
    target = publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    browser = platform("vendor_admin")
    form = page(browser.get("/vendor/rollouts/new/"))
    assert "itsm / 1.1.0" in form and world.client_a.name in form
    # The variant select re-renders the target version field alone (htmx).
    variant = selectors.access_variant("itsm")
    field = page(browser.get(f"/vendor/rollouts/new/?variant={variant.pk}", **HTMX))
    assert 'id="target-version"' in field and "<html" not in field and "finance / " not in field

    # A version of another variant is refused by the form.
    finance = selectors.latest_published(selectors.access_variant("finance"))
    refused = browser.post("/vendor/rollouts/new/", {"variant": variant.pk, "target_version": finance.pk})
    assert refused.status_code == 200 and not Rollout.objects.exists()

    response = browser.post(
        "/vendor/rollouts/new/",
        {"variant": variant.pk, "target_version": target.pk, "clients": [world.client_a.pk]},
    )
    rollout = Rollout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/vendor/rollouts/{rollout.pk}/"
    assert rollout.canary and rollout.status == Rollout.Status.PENDING
    pending = page(browser.get(f"/vendor/rollouts/{rollout.pk}/"))
    assert 'id="rollout-results"' in pending and 'hx-trigger="every 2s"' in pending
    assert 'data-status="pending"' in pending

    deployment_services.rollout_execute(rollout=rollout)  # the Celery task's body
    partial = page(browser.get(f"/vendor/rollouts/{rollout.pk}/", **HTMX))
    assert "<html" not in partial and 'data-status="completed"' in partial
    assert 'hx-trigger="every 2s"' not in partial  # finished: no more polling
    assert 'data-result="moved"' in partial and world.client_a.name in partial and " ms" in partial
    moved = deployment_selectors.deployment_get(client=world.client_a, pk=deployment.pk)
    assert moved.version_id == target.pk
    assert str(rollout.pk) in page(browser.get("/vendor/rollouts/"))

    confirm = browser.get(f"/vendor/rollouts/{rollout.pk}/revert/")
    assert confirm.status_code == 200 and "Revert rollout" in page(confirm)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED  # the GET changed nothing
    response = browser.post(f"/vendor/rollouts/{rollout.pk}/revert/")
    assert response.status_code == 302
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.REVERTING
    deployment_services.rollout_revert_execute(rollout=rollout, actor=vendor)
    reverted = page(browser.get(f"/vendor/rollouts/{rollout.pk}/"))
    assert 'data-status="reverted"' in reverted and 'data-result="reverted"' in reverted
    back = deployment_selectors.deployment_get(client=world.client_a, pk=deployment.pk)
    assert back.version.version == "1.0.0"
    # A reverted rollout cannot be reverted again: a message, nothing changes.
    browser.post(f"/vendor/rollouts/{rollout.pk}/revert/")
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.REVERTED


def test_resume_schedules_an_unfinished_rollout_again(
    world, platform, vendor, django_capture_on_commit_callbacks
):
    deployed(world)
    target = publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    rollout = deployment_services.rollout_create(
        variant=target.variant, target_version=target, actor=vendor, schedule=False
    )
    Rollout.objects.filter(pk=rollout.pk).update(status=Rollout.Status.RUNNING)  # its worker was lost
    browser = platform("vendor_admin")
    resume_url = f"/vendor/rollouts/{rollout.pk}/resume/"
    # The button is in the polled fragment, next to the status badge.
    partial = page(browser.get(f"/vendor/rollouts/{rollout.pk}/", **HTMX))
    assert "<html" not in partial and f'action="{resume_url}"' in partial and ">Resume</button>" in partial
    assert browser.get(resume_url).status_code == 405

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = browser.post(resume_url)
    assert response.status_code == 302 and response["Location"] == f"/vendor/rollouts/{rollout.pk}/"
    assert len(callbacks) == 1  # the rollout task, sent once the transaction commits
    assert "scheduled again" in page(browser.get(response["Location"]))

    deployment_services.rollout_execute(rollout=rollout)
    done = page(browser.get(f"/vendor/rollouts/{rollout.pk}/"))
    assert 'data-status="completed"' in done and resume_url not in done
    # A finished rollout is not resumed: a message, nothing scheduled.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = browser.post(resume_url, follow=True)
    assert callbacks == [] and "is completed" in page(refused)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED


def test_rollout_with_nothing_to_move_is_refused_on_the_form(world, platform, vendor):
    target = publish("hr", "1.1.0", set_instructions("Handle leave."), vendor)
    browser = platform("vendor_admin")
    response = browser.post(
        "/vendor/rollouts/new/", {"variant": target.variant_id, "target_version": target.pk}
    )
    assert response.status_code == 200 and "Nothing to roll out" in page(response)
    assert not Rollout.objects.exists() and not RolloutTarget.objects.exists()


# --- Deployments on the client page ---------------------------------------------------


def test_client_page_lists_deployments_and_decides_submitted_ones(world, platform):
    client, engineer = world.client_a, world.users["partner_a_engineer"]
    variant = selectors.access_variant("finance")
    version = selectors.latest_published(variant)
    deployment = deployment_services.deployment_create(
        client=client, variant=variant, version=version, name="Payables", actor=engineer
    )
    deployment_services.deployment_submit(client=client, deployment=deployment, actor=engineer)
    browser = platform("vendor_admin")
    url = f"/vendor/clients/{client.pk}/"
    decide = f"/vendor/clients/{client.pk}/deployments/{deployment.pk}/decide/"
    html = page(browser.get(url))
    assert "Payables" in html and decide in html and 'value="approve"' in html

    # Rejecting needs a reason.
    response = browser.post(decide, {"decision": "reject", "reason": " "})
    assert response.status_code == 302 and response["Location"] == url
    assert "Give a reason" in page(browser.get(url))
    with tenant_context(client):
        assert Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.SUBMITTED

    response = browser.post(decide, {"decision": "approve", "reason": ""})
    assert response.status_code == 302
    with tenant_context(client):
        assert Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.APPROVED
    # Approving twice: the state machine refuses it, shown as a message.
    browser.post(decide, {"decision": "approve"})
    assert "alert-danger" in page(browser.get(url))
    assert browser.post(f"/vendor/clients/{client.pk}/deployments/999999/decide/", {}).status_code == 404


def test_client_page_decides_a_pending_version_change(world, platform, vendor):
    client = world.client_a
    client.require_version_change_approval = True
    client.save(update_fields=["require_version_change_approval"])
    deployment = deployed(world)
    target = publish("itsm", "1.1.0", set_instructions("Triage tickets, briefly."), vendor)
    deployment_services.deployment_change_version(
        client=client, deployment=deployment, version=target, actor=world.users["partner_a_engineer"]
    )
    browser = platform("vendor_admin")
    decide = f"/vendor/clients/{client.pk}/deployments/{deployment.pk}/decide/"
    html = page(browser.get(f"/vendor/clients/{client.pk}/"))
    assert "waiting for approval" in html and 'value="approve_change"' in html
    browser.post(decide, {"decision": "reject_change", "reason": "Not during the freeze."})
    current = deployment_selectors.deployment_get(client=client, pk=deployment.pk)
    assert current.pending_version_id is None and current.version.version == "1.0.0"
