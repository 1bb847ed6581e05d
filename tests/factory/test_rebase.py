"""Rebase: the parent's new version merged onto a variant (old base → new base), clean or with conflicts."""

import copy

import pytest

from apps.core.exceptions import ApplicationError
from apps.factory import selectors, services
from apps.factory.models import AgentVersion
from apps.factory.spec import SpecError


def publish(variant, actor, version, spec, changelog="Change."):
    draft = services.version_save_draft(
        variant=variant, spec=spec, version=version, changelog=changelog, actor=actor
    )
    return services.version_publish(version=draft, actor=actor)


@pytest.fixture
def custom(base, actor):
    """A fresh clone of base 1.0.0 whose 1.1.0 changed its instructions."""
    variant = services.variant_clone(source=base, key="custom", name="Custom agent", actor=actor)
    spec = copy.deepcopy(selectors.latest_published(variant).spec)
    spec["instructions"] = "Custom instructions."
    publish(variant, actor, "1.1.0", spec)
    return variant


def base_spec(base) -> dict:
    return copy.deepcopy(selectors.latest_published(base).spec)


def test_clean_rebase_combines_base_and_variant_changes(base, custom, actor):
    old_base = selectors.latest_published(base)
    spec = base_spec(base)
    spec["tools"].append({"name": "http.request", "entities": [], "settings": {}})
    new_base = publish(base, actor, "1.1.0", spec, "Adds http.request.")

    behind = {variant.key: (old, new) for variant, old, new in selectors.variants_behind()}
    assert behind["custom"] == (old_base, new_base)
    assert {"itsm", "finance", "hr", "vendor"} <= set(behind)

    plan = services.variant_rebase(variant=custom, actor=actor)
    assert plan.conflicts == [] and plan.old_base == old_base and plan.new_base == new_base
    assert plan.merged["instructions"] == "Custom instructions."
    assert "http.request" in [tool["name"] for tool in plan.merged["tools"]]

    draft = services.variant_rebase_apply(variant=custom, resolutions={}, actor=actor)
    assert draft.status == AgentVersion.Status.DRAFT and draft.version == "1.2.0"
    assert draft.base_version == new_base and draft.derived_from.version == "1.1.0"
    assert draft.changelog == "Rebased onto base 1.1.0."
    assert draft.spec["instructions"] == "Custom instructions."
    assert "http.request" in [tool["name"] for tool in draft.spec["tools"]]

    # Editing the rebased draft keeps its new base; publishing it brings the variant up to date.
    draft = services.version_save_draft(
        variant=custom, spec=draft.spec, version="1.2.0", changelog="Rebased, checked.", actor=actor
    )
    assert draft.base_version == new_base
    services.version_publish(version=draft, actor=actor)
    assert "custom" not in {variant.key for variant, _old, _new in selectors.variants_behind()}
    with pytest.raises(ApplicationError, match="up to date"):
        services.variant_rebase(variant=custom, actor=actor)


def test_seeded_variant_rebases_cleanly_onto_a_new_base_tool(base, itsm, actor):
    spec = base_spec(base)
    spec["tools"].append({"name": "http.request", "entities": [], "settings": {}})
    publish(base, actor, "1.1.0", spec)
    draft = services.variant_rebase_apply(variant=itsm, resolutions={}, actor=actor)
    ours = selectors.latest_published(itsm).spec
    assert draft.spec["instructions"] == ours["instructions"]
    # The new tool lands after the one it follows in the base (notify.email); ours' order is kept.
    names = [t["name"] for t in draft.spec["tools"]]
    assert [name for name in names if name != "http.request"] == [t["name"] for t in ours["tools"]]
    assert names.index("http.request") == names.index("notify.email") + 1
    assert draft.spec["workflows"] == ours["workflows"]


def test_conflicting_rebase_lists_conflicts_and_applies_resolutions(base, custom, actor):
    spec = base_spec(base)
    spec["instructions"] = "New base instructions."
    spec["planner"]["max_steps"] = 30
    new_base = publish(base, actor, "1.1.0", spec)

    plan = services.variant_rebase(variant=custom, actor=actor)
    [conflict] = plan.conflicts
    assert conflict.path == "instructions"
    assert (conflict.ours, conflict.theirs) == ("Custom instructions.", "New base instructions.")
    assert conflict.base == selectors.access_version(variant=base, version="1.0.0").spec["instructions"]
    assert plan.merged["planner"]["max_steps"] == 30

    with pytest.raises(ApplicationError, match="Resolve every conflict") as caught:
        services.variant_rebase_apply(variant=custom, resolutions={}, actor=actor)
    assert caught.value.extra["missing"] == ["instructions"]
    with pytest.raises(ApplicationError):
        services.variant_rebase_apply(variant=custom, resolutions={"instructions": "both"}, actor=actor)
    assert not custom.versions.filter(status="draft").exists()

    draft = services.variant_rebase_apply(
        variant=custom, resolutions={"instructions": "theirs"}, version="2.0.0", actor=actor
    )
    assert draft.version == "2.0.0" and draft.base_version == new_base
    assert draft.spec["instructions"] == "New base instructions." and draft.spec["planner"]["max_steps"] == 30


def test_rebase_producing_an_invalid_spec_is_refused(base, custom, actor):
    spec = copy.deepcopy(selectors.latest_published(custom).spec)
    spec["workflows"] = [
        {"name": "lookup", "steps": [{"id": "get", "tool": "db.get", "params": {"id": "{{ inputs.id }}"}}]}
    ]
    publish(custom, actor, "1.2.0", spec)
    new = base_spec(base)
    new["tools"] = [tool for tool in new["tools"] if tool["name"] != "db.get"]
    publish(base, actor, "1.1.0", new)
    plan = services.variant_rebase(variant=custom, actor=actor)
    assert plan.conflicts == []
    with pytest.raises(SpecError) as caught:
        services.variant_rebase_apply(variant=custom, resolutions={}, actor=actor)
    assert "not in the tool allowlist" in caught.value.errors[0]["message"]
    assert not custom.versions.filter(status="draft").exists()


def test_rebase_refusals(base, custom, actor):
    with pytest.raises(ApplicationError, match="no parent"):
        services.variant_rebase(variant=base, actor=actor)
    with pytest.raises(ApplicationError, match="up to date"):
        services.variant_rebase(variant=custom, actor=actor)
    publish(base, actor, "1.1.0", base_spec(base) | {"instructions": "Newer."})
    services.version_save_draft(
        variant=custom,
        spec=selectors.latest_published(custom).spec,
        version="1.5.0",
        changelog="x",
        actor=actor,
    )
    with pytest.raises(ApplicationError, match="discard or publish the draft first"):
        services.variant_rebase(variant=custom, actor=actor)


def test_rollback_to_a_version_on_an_older_base_makes_the_variant_behind_again(base, custom, actor):
    first = custom.versions.get(version="1.0.0")
    publish(base, actor, "1.1.0", base_spec(base) | {"instructions": "Newer."})
    plan = services.variant_rebase(variant=custom, actor=actor)
    draft = services.variant_rebase_apply(
        variant=custom, resolutions={c.path: "ours" for c in plan.conflicts}, actor=actor
    )
    services.version_publish(version=draft, actor=actor)
    assert "custom" not in {v.key for v, _o, _n in selectors.variants_behind()}
    services.version_rollback(variant=custom, to_version=first, actor=actor)
    assert "custom" in {v.key for v, _o, _n in selectors.variants_behind()}


def test_rebase_is_refused_when_the_base_changed_since_the_plan_was_shown(base, custom, actor):
    publish(base, actor, "1.1.0", base_spec(base) | {"instructions": "Newer."})
    seen = services.variant_rebase(variant=custom, actor=actor)
    # The parent publishes again while the person is choosing: their choices were for 1.1.0's values.
    publish(base, actor, "1.2.0", base_spec(base) | {"instructions": "Newest."})
    with pytest.raises(ApplicationError, match="The base changed since you opened this page"):
        services.variant_rebase_apply(
            variant=custom,
            resolutions={"instructions": "theirs"},
            expected_base_id=seen.new_base.pk,
            actor=actor,
        )
    assert not custom.versions.filter(status="draft").exists()
    fresh = services.variant_rebase(variant=custom, actor=actor)
    draft = services.variant_rebase_apply(
        variant=custom,
        resolutions={"instructions": "theirs"},
        expected_base_id=fresh.new_base.pk,
        actor=actor,
    )
    assert draft.base_version.version == "1.2.0" and draft.spec["instructions"] == "Newest."
