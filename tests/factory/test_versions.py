"""Versions: clone, drafts, publish, discard, rollback; published versions are immutable by every path."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.core.exceptions import ApplicationError
from apps.factory import selectors, services
from apps.factory.models import AgentVariant, AgentVersion, PolicyPackVersion
from apps.factory.spec import SpecError, validate_spec
from apps.factory.yaml_spec import spec_to_yaml
from tests.factory.conftest import small_spec

DB_REFUSAL = (IntegrityError, InternalError)


def clone(source, actor, key="itsm-emea", name="ITSM EMEA"):
    return services.variant_clone(source=source, key=key, name=name, actor=actor)


def test_clone_publishes_the_source_spec_as_1_0_0(itsm, actor):
    source = selectors.latest_published(itsm)
    variant = clone(itsm, actor)
    assert variant.parent == itsm and variant.template == itsm.template and variant.created_by == actor
    [first] = variant.versions.all()
    assert first.version == "1.0.0" and first.is_published and first.published_at is not None
    assert first.spec == source.spec
    assert first.changelog == f"Cloned from itsm {source.version}."
    assert first.derived_from == source and first.base_version == source
    assert first.author == actor


def test_clone_refuses_a_taken_key(itsm, actor):
    with pytest.raises(ApplicationError) as caught:
        clone(itsm, actor, key="finance")
    assert caught.value.field == "key"
    with pytest.raises(ValidationError) as invalid:
        clone(itsm, actor, key="Not A Key")
    assert "key" in invalid.value.message_dict
    assert itsm.children.count() == 0


def test_a_clone_can_be_cloned_and_ignores_drafts(itsm, actor):
    child = clone(itsm, actor)
    published = child.versions.get()
    services.version_save_draft(variant=child, spec=small_spec(), version="1.1.0", changelog="x", actor=actor)
    grandchild = clone(child, actor, key="itsm-emea-fr", name="ITSM EMEA France")
    assert grandchild.parent == child
    assert grandchild.versions.get().derived_from == published


def test_clone_of_a_variant_without_any_published_version_is_refused(itsm, actor):
    bare = AgentVariant.objects.create(template=itsm.template, key="bare", name="Bare")
    with pytest.raises(ApplicationError, match="no published version"):
        clone(bare, actor, key="bare-clone")
    assert not AgentVariant.objects.filter(key="bare-clone").exists()


def test_save_draft_creates_then_updates_the_single_draft(itsm, actor):
    current = selectors.latest_published(itsm)
    spec = dict(current.spec, instructions="Be brief.")
    draft = services.version_save_draft(
        variant=itsm, spec=spec, version="1.1.0", changelog="Shorter answers.", actor=actor
    )
    assert draft.status == AgentVersion.Status.DRAFT and draft.semver == (1, 1, 0)
    assert draft.derived_from == current and draft.base_version == current.base_version
    again = services.version_save_draft(
        variant=itsm, spec=spec_to_yaml(spec), version="1.2.0", changelog="Even shorter.", actor=actor
    )
    assert again.pk == draft.pk and again.version == "1.2.0" and again.changelog == "Even shorter."
    assert itsm.versions.filter(status="draft").count() == 1
    assert selectors.latest_version(itsm) == again and selectors.latest_published(itsm) == current


@pytest.mark.parametrize(
    ("version", "changelog", "field"),
    [
        ("1.0.0", "x", "version"),  # already published
        ("0.9.0", "x", "version"),  # below the latest published
        ("1.1", "x", "version"),
        ("v1.1.0", "x", "version"),
        ("1.1.0", "  ", "changelog"),
    ],
)
def test_save_draft_refuses_bad_numbers_and_empty_changelogs(itsm, actor, version, changelog, field):
    with pytest.raises(ApplicationError) as caught:
        services.version_save_draft(
            variant=itsm,
            spec=selectors.latest_published(itsm).spec,
            version=version,
            changelog=changelog,
            actor=actor,
        )
    assert caught.value.field == field
    assert not itsm.versions.filter(status="draft").exists()


def test_save_draft_reports_spec_errors_with_lines(itsm, actor):
    text = spec_to_yaml(selectors.latest_published(itsm).spec).replace("kind: workflow", "kind: oracle")
    with pytest.raises(SpecError) as caught:
        services.version_save_draft(variant=itsm, spec=text, version="1.1.0", changelog="x", actor=actor)
    [error] = caught.value.errors
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if "kind: oracle" in text_line)
    assert error["path"] == "planner.kind" and error["line"] == line
    with pytest.raises(SpecError) as caught:
        services.version_save_draft(
            variant=itsm, spec=small_spec(policy_pack="nope"), version="1.1.0", changelog="x", actor=actor
        )
    assert caught.value.errors[0]["path"] == "policy_pack"
    assert not itsm.versions.filter(status="draft").exists()


def test_publish_makes_the_draft_current(itsm, actor):
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="2.0.0", changelog="Rewrite.", actor=actor
    )
    published = services.version_publish(version=draft, actor=actor)
    assert published.is_published and published.published_at is not None
    assert selectors.latest_published(itsm) == published
    assert published.spec == validate_spec(small_spec())
    with pytest.raises(ApplicationError, match="already published"):
        services.version_publish(version=published, actor=actor)


def test_discard_deletes_only_drafts(itsm, actor):
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="1.1.0", changelog="x", actor=actor
    )
    services.version_discard(version=draft, actor=actor)
    assert not AgentVersion.objects.filter(pk=draft.pk).exists()
    with pytest.raises(ApplicationError):
        services.version_discard(version=selectors.latest_published(itsm), actor=actor)
    assert itsm.versions.filter(version="1.0.0").exists()


# ---------------------------------------------------------------- immutability


def test_services_refuse_to_edit_a_published_version(itsm, actor):
    published = selectors.latest_published(itsm)
    before = published.spec
    # Saving a draft with the published number is refused; publishing again too.
    with pytest.raises(ApplicationError):
        services.version_save_draft(
            variant=itsm, spec=small_spec(), version=published.version, changelog="x", actor=actor
        )
    with pytest.raises(ApplicationError):
        services.version_publish(version=published, actor=actor)
    published.refresh_from_db()
    assert published.spec == before


def test_model_save_of_a_published_version_is_refused_by_the_database(itsm):
    published = selectors.latest_published(itsm)
    published.changelog = "Rewritten history."
    with pytest.raises(DB_REFUSAL), transaction.atomic():
        published.save()
    published.refresh_from_db()
    assert published.changelog == "Initial release."


def test_queryset_update_of_a_published_version_is_refused(itsm):
    published = selectors.latest_published(itsm)
    with pytest.raises(DB_REFUSAL), transaction.atomic():
        AgentVersion.objects.filter(pk=published.pk).update(spec={})
    published.refresh_from_db()
    assert published.spec["instructions"]


def test_raw_sql_update_of_a_published_version_is_refused(itsm):
    published = selectors.latest_published(itsm)
    with pytest.raises(DB_REFUSAL), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE factory_agentversion SET status = 'draft' WHERE id = %s", [published.pk])
    published.refresh_from_db()
    assert published.is_published


def test_delete_of_a_published_version_is_refused(world, itsm):
    published = selectors.latest_published(itsm)
    # In a client's schema the ORM can check deployments before deleting; the trigger still refuses.
    with pytest.raises(DB_REFUSAL), transaction.atomic(), schema_context(world.client_a.schema_name):
        AgentVersion.objects.filter(pk=published.pk).delete()
    with pytest.raises(DB_REFUSAL), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM factory_agentversion WHERE id = %s", [published.pk])
    assert AgentVersion.objects.filter(pk=published.pk).exists()


def test_published_policy_pack_versions_are_immutable(world):
    from apps.factory.models import PolicyPackVersion

    pack_version = PolicyPackVersion.objects.get(pack__key="finance-baseline", version="1.0.0")
    with pytest.raises(DB_REFUSAL), transaction.atomic():
        PolicyPackVersion.objects.filter(pk=pack_version.pk).update(rules=[])
    pack_version.refresh_from_db()
    assert pack_version.rules


def test_admin_refuses_to_change_or_delete_a_published_version(itsm, platform):
    published = selectors.latest_published(itsm)
    browser = platform("vendor_admin")
    url = f"/admin/factory/agentversion/{published.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert "IT service management agent" in page.content.decode()  # the spec is shown
    response = browser.post(url, {"changelog": "Hijacked", "spec": "{}"})
    assert response.status_code == 403
    response = browser.post(f"/admin/factory/agentversion/{published.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    published.refresh_from_db()
    assert published.changelog == "Initial release." and published.spec["instructions"]
    assert browser.get("/admin/factory/agentversion/add/").status_code == 403


def test_admin_edits_a_draft_changelog_and_discards_it(itsm, actor, platform):
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="1.1.0", changelog="x", actor=actor
    )
    browser = platform("vendor_admin")
    response = browser.post(f"/admin/factory/agentversion/{draft.pk}/change/", {"changelog": "Better words."})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.changelog == "Better words." and draft.spec == validate_spec(small_spec())
    response = browser.post(f"/admin/factory/agentversion/{draft.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not AgentVersion.objects.filter(pk=draft.pk).exists()


@pytest.mark.parametrize(
    "path",
    [
        "agenttemplate",
        "agentvariant",
        "agentversion",
        "policypack",
        "policypackversion",
        "rollout",
        "rollouttarget",
    ],
)
def test_support_reads_every_factory_admin_page(world, platform, path):
    assert platform("support").get(f"/admin/factory/{path}/").status_code == 200


def test_support_reads_a_variant_and_a_pack_version(itsm, platform):
    from apps.factory.models import PolicyPackVersion

    browser = platform("support")
    assert browser.get(f"/admin/factory/agentvariant/{itsm.pk}/change/").status_code == 200
    pack_version = PolicyPackVersion.objects.get(pack__key="hr-baseline")
    page = browser.get(f"/admin/factory/policypackversion/{pack_version.pk}/change/")
    assert page.status_code == 200 and "redact_personal_fields" in page.content.decode()


# ---------------------------------------------------------------- rollback


def publish(variant, actor, version, **spec_overrides):
    draft = services.version_save_draft(
        variant=variant,
        spec=small_spec(**spec_overrides),
        version=version,
        changelog=f"{version}.",
        actor=actor,
    )
    return services.version_publish(version=draft, actor=actor)


def test_rollback_makes_a_new_version_and_keeps_history(itsm, actor):
    first = selectors.latest_published(itsm)
    second = publish(itsm, actor, "1.1.0", instructions="Second.")
    third = publish(itsm, actor, "1.2.0", instructions="Third.")
    rolled = services.version_rollback(variant=itsm, to_version=first, actor=actor)
    assert rolled.version == "1.3.0" and rolled.is_published
    assert rolled.spec == first.spec
    assert rolled.changelog == "Rollback to 1.0.0."
    assert rolled.derived_from == first and rolled.base_version == first.base_version
    assert selectors.latest_published(itsm) == rolled
    assert [v.version for v in selectors.version_list(variant=itsm)] == ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]
    for version, instructions in ((second, "Second."), (third, "Third.")):
        version.refresh_from_db()
        assert version.spec["instructions"] == instructions and version.is_published
    again = services.version_rollback(
        variant=itsm, to_version=third, actor=actor, version="2.0.0", note="Oops."
    )
    assert again.version == "2.0.0" and again.changelog == "Rollback to 1.2.0. Oops."


def test_rollback_refusals(itsm, actor, world):
    first = selectors.latest_published(itsm)
    with pytest.raises(ApplicationError, match="already the current version"):
        services.version_rollback(variant=itsm, to_version=first, actor=actor)
    finance_version = selectors.latest_published(selectors.access_variant("finance"))
    with pytest.raises(ApplicationError, match="another variant"):
        services.version_rollback(variant=itsm, to_version=finance_version, actor=actor)
    publish(itsm, actor, "1.1.0")
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="1.2.0", changelog="x", actor=actor
    )
    with pytest.raises(ApplicationError, match="Only a published version"):
        services.version_rollback(variant=itsm, to_version=draft, actor=actor)
    with pytest.raises(ApplicationError, match="discard or publish the draft first"):
        services.version_rollback(variant=itsm, to_version=first, actor=actor)
    services.version_discard(version=draft, actor=actor)
    with pytest.raises(ApplicationError) as caught:
        services.version_rollback(variant=itsm, to_version=first, actor=actor, version="1.1.0")
    assert caught.value.field == "version"
    assert itsm.versions.count() == 2


# ---------------------------------------------------------------- selectors


def test_selectors(itsm, actor, world):
    variants = list(selectors.variant_list())
    assert variants[0].key == "base"
    assert {v.key: v.latest_version for v in variants} == {
        "base": "1.0.0",
        "itsm": "1.0.0",
        "finance": "1.0.0",
        "hr": "1.0.0",
        "vendor": "1.0.0",
    }
    assert selectors.access_variant("itsm") == itsm == selectors.access_variant(str(itsm.pk))
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.access_variant("nope")
    with pytest.raises(Http404):
        selectors.access_version(variant=itsm, version="9.9.9")
    second = publish(itsm, actor, "1.1.0")
    third = publish(itsm, actor, "1.10.0")
    below = selectors.published_versions_below(variant=itsm, version=third)
    assert [v.version for v in below] == ["1.1.0", "1.0.0"]
    assert selectors.access_version(variant=itsm, version="1.1.0") == second
    packs = {p.key: p.latest_version for p in selectors.policy_pack_list()}
    assert packs["finance-baseline"] == "1.0.0" and len(packs) == 5


def test_admin_edits_a_variant_name_but_never_its_key(itsm, platform):
    browser = platform("vendor_admin")
    url = f"/admin/factory/agentvariant/{itsm.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200 and "1.0.0" in page.content.decode()  # its versions, listed
    response = browser.post(
        url,
        {
            "name": "Service desk agent",
            "domain": "IT service management",
            "description": "",
            "key": "hijacked",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    itsm.refresh_from_db()
    assert itsm.name == "Service desk agent" and itsm.key == "itsm"
    assert browser.post(f"/admin/factory/agentvariant/{itsm.pk}/delete/", {"post": "yes"}).status_code == 403


# ---------------------------------------------------------------- policy pack pinning


def publish_pack(key: str, version: str):
    """A new version of a seeded policy pack, with the same rules as its 1.0.0."""
    first = PolicyPackVersion.objects.get(pack__key=key, version="1.0.0")
    return services.policy_pack_publish(
        pack_key=key, name=first.pack.name, version=version, rules=first.rules, changelog="Tighter."
    )


def test_published_versions_keep_the_policy_pack_version_they_were_published_with(itsm, actor):
    pack = itsm.versions.get().spec["policy_pack"]
    pack_100 = PolicyPackVersion.objects.get(pack__key=pack, version="1.0.0")
    first = itsm.versions.get(version="1.0.0")
    assert first.policy_pack_version == pack_100  # pinned when the seed published it

    pack_110 = publish_pack(pack, "1.1.0")
    first.refresh_from_db()
    assert first.policy_pack_version == pack_100  # a new pack version changes nothing already published

    draft = services.version_save_draft(
        variant=itsm,
        spec=first.spec | {"instructions": "Second."},
        version="1.1.0",
        changelog="x",
        actor=actor,
    )
    assert draft.policy_pack_version is None  # a draft is pinned when it is published
    second = services.version_publish(version=draft, actor=actor)
    assert second.policy_pack_version == pack_110
    # A rollback ships with the pack version of the version it rolls back to, not today's.
    rolled = services.version_rollback(variant=itsm, to_version=first, actor=actor)
    assert rolled.policy_pack_version == pack_100
    # A clone is published now: the pack's latest version.
    assert clone(itsm, actor).versions.get().policy_pack_version == pack_110


def test_a_spec_without_a_policy_pack_pins_none(itsm, actor):
    spec = small_spec()
    del spec["policy_pack"]
    version = services.version_save_and_publish(
        variant=itsm, spec=spec, version="1.1.0", changelog="No pack.", actor=actor
    )
    assert version.is_published and version.policy_pack_version is None


# ---------------------------------------------------------------- save and publish


def test_save_and_publish_publishes_what_was_given_in_one_step(itsm, actor):
    version = services.version_save_and_publish(
        variant=itsm, spec=spec_to_yaml(small_spec()), version="1.1.0", changelog="Smaller.", actor=actor
    )
    assert version.is_published and version.published_at is not None
    assert version.spec == validate_spec(small_spec()) and version.changelog == "Smaller."
    assert selectors.latest_published(itsm) == version and selectors.draft_of(itsm) is None
    assert version.policy_pack_version.pack.key == "baseline"


def test_a_refused_save_and_publish_leaves_the_draft_as_it_was(itsm, actor):
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="1.1.0", changelog="Draft.", actor=actor
    )
    with pytest.raises(SpecError):
        services.version_save_and_publish(
            variant=itsm, spec=small_spec(policy_pack="nope"), version="1.2.0", changelog="Bad.", actor=actor
        )
    with pytest.raises(ApplicationError):
        services.version_save_and_publish(
            variant=itsm, spec=small_spec(), version="1.0.0", changelog="Old number.", actor=actor
        )
    kept = selectors.draft_of(itsm)
    assert kept == draft and kept.version == "1.1.0" and kept.changelog == "Draft."
    assert itsm.versions.filter(status="published").count() == 1


# ---------------------------------------------------------------- clone validates the source spec


def test_clone_refuses_a_source_spec_that_is_no_longer_valid(itsm, actor):
    # A published spec that today's schema refuses (as after a schema change); drafts may still be
    # rewritten, and turning one into a published row in the same UPDATE is the trigger's last allowed change.
    draft = services.version_save_draft(
        variant=itsm, spec=small_spec(), version="1.1.0", changelog="x", actor=actor
    )
    broken = {"instructions": "Run anything.", "tools": [{"name": "shell.exec"}]}
    AgentVersion.objects.filter(pk=draft.pk).update(
        spec=broken, status="published", published_at=timezone.now()
    )
    with pytest.raises(SpecError) as caught:
        clone(itsm, actor)
    assert caught.value.errors[0]["path"].startswith("tools.0")
    assert not AgentVariant.objects.filter(key="itsm-emea").exists()
