"""Policy packs as governance rules: the checks, publishing (audited), and the super-admin pack editor."""

import pytest
from auditlog.models import LogEntry

from apps.core.exceptions import ApplicationError
from apps.factory import selectors as factory_selectors
from apps.factory import services as factory_services
from apps.factory.models import AgentVariant, PolicyPack, PolicyPackVersion
from apps.governance.packs import (
    policy_pack_check,
    policy_pack_history,
    policy_pack_publish_checked,
    policy_pack_usage,
    rules_from_yaml,
    rules_to_yaml,
)
from apps.governance.rules import RulesetError

PACK = "itsm-baseline"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def vendor(world):
    return world.users["vendor_admin"]


@pytest.fixture
def pack(world) -> PolicyPack:
    return PolicyPack.objects.get(key=PACK)


def latest_rules(pack: PolicyPack) -> list[dict]:
    return factory_selectors.policy_pack_latest(pack).rules


def with_condition(rules: list[dict], key: str, condition: str) -> list[dict]:
    return [{**rule, "condition": condition} if rule["key"] == key else rule for rule in rules]


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


# --- YAML ---------------------------------------------------------------------------------------


def test_rules_yaml_round_trips_every_seeded_pack(world):
    for version in PolicyPackVersion.objects.all():
        text = rules_to_yaml(version.rules)
        assert text.startswith("rules:\n")
        check = policy_pack_check(pack=version.pack, rules=text)
        assert check.ok, check.errors
        assert check.rules == version.rules


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rules: [a", 1, "YAML syntax error"),
        ("rules:\n  - key: a\n    key: b\n", 3, "duplicate key"),
        ("rules:\n  - &x {key: a}\n  - *x\n", 3, "aliases"),
        ("- key: a\n", 1, "mapping with one key, `rules`"),
        ("rules: []\nextra: 1\n", 1, "mapping with one key, `rules`"),
    ],
)
def test_bad_yaml_is_one_error_with_its_line(pack, text, line, message):
    with pytest.raises(RulesetError) as caught:
        rules_from_yaml(text)
    [error] = caught.value.errors
    assert error["line"] == line and message in error["message"]
    check = policy_pack_check(pack=pack, rules=text)
    assert not check.ok and check.errors[0]["line"] == line and check.rules == []


# --- Checks -------------------------------------------------------------------------------------


def test_a_cel_syntax_error_has_its_rule_path_line_and_position(pack):
    text = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps >"))
    [error] = policy_pack_check(pack=pack, rules=text).errors
    index = [rule["key"] for rule in latest_rules(pack)].index("stop_runaway_loops")
    assert error["path"] == f"rules[{index}].condition"
    assert error["rule"] == "stop_runaway_loops"
    assert error["line"] == line_of(text, "condition: trace.steps >")
    assert error["position"] == "1:14" and "Syntax error" in error["message"]


def test_an_unknown_variable_in_a_condition_is_refused(pack):
    text = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "steps > 50"))
    [error] = policy_pack_check(pack=pack, rules=text).errors
    assert error["rule"] == "stop_runaway_loops" and error["path"].endswith(".condition")
    assert "unknown variable steps" in error["message"] and error["line"] == line_of(text, "steps > 50")


def test_every_problem_is_listed_at_once(pack):
    rules = with_condition(latest_rules(pack), "stop_runaway_loops", "amount > 1")
    rules[0] = {**rules[0], "effect": "permit", "mode": "shadow"}
    rules.append({**rules[1]})  # the same key twice
    rules.append({"key": "Bad Key", "name": "", "effect": "require_approval", "message": "x"})
    errors = policy_pack_check(pack=pack, rules=rules_to_yaml(rules)).errors
    by_path = {error["path"]: error["message"] for error in errors}
    assert "'allow', 'deny'" in by_path["rules[0].effect"]
    assert "set by the platform" in by_path["rules[0].mode"]
    assert any(path.endswith(".condition") and "unknown variable amount" in m for path, m in by_path.items())
    last = len(rules) - 1
    assert {f"rules[{last}].key", f"rules[{last}].name"} <= set(by_path)
    assert all(error["line"] for error in errors)


def test_cost_bound_and_empty_packs_are_refused(pack):
    deep = "(" * 13 + "trace.steps > 1" + ")" * 13
    errors = policy_pack_check(
        pack=pack, rules=with_condition(latest_rules(pack), "stop_runaway_loops", deep)
    ).errors
    assert ["nests 13 levels" in error["message"] for error in errors] == [True]
    assert (
        policy_pack_check(pack=pack, rules="rules: []\n").errors[0]["message"]
        == "a pack needs at least one rule"
    )


def test_the_version_must_be_semantic_and_above_the_latest(pack):
    rules = rules_to_yaml(latest_rules(pack))
    for version, message in [
        ("1.0.0", "above the latest version, 1.0.0"),
        ("0.9.0", "above"),
        ("v2", "semantic"),
    ]:
        errors = policy_pack_check(pack=pack, rules=rules, version=version).errors
        assert [error["path"] for error in errors] == ["version"] and message in errors[0]["message"]
    assert policy_pack_check(pack=pack, rules=rules, version="1.0.1").ok


def test_the_check_shows_the_changes_since_the_latest_version(pack):
    rules = latest_rules(pack)
    changed = with_condition(rules, "stop_runaway_loops", "trace.steps > 40")[:-1]
    check = policy_pack_check(pack=pack, rules=rules_to_yaml(changed))
    assert check.ok and check.latest.version == "1.0.0"
    kinds = {change.key: change.kind for change in check.changes}
    assert kinds == {"stop_runaway_loops": "changed", rules[-1]["key"]: "removed"}
    [field] = next(c for c in check.changes if c.key == "stop_runaway_loops").changes
    assert (field.field, field.old, field.new) == ("condition", "trace.steps > 50", "trace.steps > 40")
    assert policy_pack_check(pack=pack, rules=rules_to_yaml(rules)).changes == []


# --- Publishing ---------------------------------------------------------------------------------


def test_a_good_publish_creates_the_version_and_audits_it(pack, vendor):
    rules = with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps > 40")
    published = policy_pack_publish_checked(
        pack_key=PACK,
        version="1.1.0",
        rules=rules_to_yaml(rules),
        changelog="Tighter loop limit.",
        actor=vendor,
    )
    assert published.status == "published" and published.rules == rules
    assert factory_selectors.policy_pack_latest(pack) == published
    assert pack.name == PolicyPack.objects.get(key=PACK).name  # name and description kept
    entry = LogEntry.objects.get(object_pk=str(published.pk), content_type__model="policypackversion")
    assert entry.actor == vendor and entry.action == LogEntry.Action.CREATE
    assert entry.changes_dict["version"][1] == "1.1.0" and entry.additional_data["previous"] == "1.0.0"
    [history] = policy_pack_history(pack)
    assert history.actor == vendor and "1.1.0" in history.object_label
    # Published agent versions keep the pack version they pinned; the next one pins 1.1.0.
    itsm = AgentVariant.objects.get(key="itsm")
    assert factory_selectors.latest_published(itsm).policy_pack_version.version == "1.0.0"
    spec = factory_selectors.latest_published(itsm).spec
    draft = factory_services.version_save_draft(
        variant=itsm, spec={**spec, "instructions": "New."}, version="1.1.0", changelog="x", actor=vendor
    )
    assert factory_services.version_publish(version=draft, actor=vendor).policy_pack_version == published


def test_publishing_refuses_invalid_rules_and_numbers_and_writes_nothing(pack, vendor):
    before = (PolicyPackVersion.objects.count(), LogEntry.objects.count())
    bad = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "steps > 50"))
    with pytest.raises(RulesetError) as caught:
        policy_pack_publish_checked(pack_key=PACK, version="1.1.0", rules=bad, changelog="x", actor=vendor)
    assert "unknown variable" in caught.value.errors[0]["message"] and caught.value.errors[0]["line"]
    good = rules_to_yaml(latest_rules(pack))
    for version, changelog, field in [("1.0.0", "x", "version"), ("1.1.0", " ", "changelog")]:
        with pytest.raises(ApplicationError) as refused:
            policy_pack_publish_checked(
                pack_key=PACK, version=version, rules=good, changelog=changelog, actor=vendor
            )
        assert refused.value.field == field
    assert (PolicyPackVersion.objects.count(), LogEntry.objects.count()) == before


def test_a_new_pack_needs_a_name(world, vendor):
    rules = [{"key": "allow_reads", "name": "Reads", "effect": "allow", "message": "ok"}]
    with pytest.raises(ApplicationError) as refused:
        policy_pack_publish_checked(
            pack_key="new-pack", version="1.0.0", rules=rules, changelog="x", actor=vendor
        )
    assert refused.value.field == "name"
    created = policy_pack_publish_checked(
        pack_key="new-pack", name="New pack", version="1.0.0", rules=rules, changelog="First.", actor=vendor
    )
    assert created.pack.name == "New pack" and created.rules[0]["key"] == "allow_reads"


def test_usage_lists_the_variants_whose_current_version_names_the_pack(pack):
    [use] = policy_pack_usage(pack)
    assert use.variant.key == "itsm" and use.current.version == "1.0.0" and use.pinned.version == "1.0.0"
    assert {u.variant.key for u in policy_pack_usage(PolicyPack.objects.get(key="baseline"))} == {"base"}


# --- The super-admin pages ----------------------------------------------------------------------


def test_the_factory_page_links_every_pack(platform):
    html = platform("vendor_admin").get("/vendor/factory/").content.decode()
    for key in ("baseline", "itsm-baseline", "finance-baseline", "hr-baseline", "vendor-baseline"):
        assert f'href="/vendor/packs/{key}/"' in html and f'href="/vendor/packs/{key}/versions/new/"' in html


def test_the_pack_page_shows_versions_rules_and_variants(platform, pack):
    response = platform("vendor_admin").get(f"/vendor/packs/{PACK}/")
    html = response.content.decode()
    assert response.status_code == 200
    for rule in latest_rules(pack):
        assert f'data-rule="{rule["key"]}"' in html
    assert 'data-testid="pack-usage"' in html and "ITSM agent" in html
    assert f'href="/vendor/packs/{PACK}/versions/1.0.0/"' in html
    assert platform("vendor_admin").get("/vendor/packs/nope/").status_code == 404
    assert platform("vendor_admin").get(f"/vendor/packs/{PACK}/versions/9.9.9/").status_code == 404


def test_the_version_page_shows_its_rules_and_changes(platform, pack, vendor):
    rules = with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps > 40")
    policy_pack_publish_checked(
        pack_key=PACK, version="1.1.0", rules=rules, changelog="Tighter.", actor=vendor
    )
    html = platform("vendor_admin").get(f"/vendor/packs/{PACK}/versions/1.1.0/").content.decode()
    assert 'data-testid="rule-diff"' in html and "trace.steps &gt; 40" in html and "Tighter." in html
    detail = platform("vendor_admin").get(f"/vendor/packs/{PACK}/").content.decode()
    assert "vendor@example.com" in detail  # the audit trail names who published it


def test_the_editor_starts_from_the_latest_rules_and_the_next_minor_version(platform, pack):
    html = platform("vendor_admin").get(f"/vendor/packs/{PACK}/versions/new/").content.decode()
    assert 'value="1.1.0"' in html and "stop_runaway_loops" in html and "hx-post" in html


def test_check_renders_errors_or_changes_without_writing(platform, pack):
    browser = platform("vendor_admin")
    url = f"/vendor/packs/{PACK}/versions/check/"
    count = PolicyPackVersion.objects.count()
    bad = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps >"))
    html = browser.post(url, {"rules": bad, "version": "1.1.0"}, **HTMX).content.decode()
    assert 'data-testid="pack-errors"' in html and "condition 1:14" in html
    assert f"Line {line_of(bad, 'condition: trace.steps >')}" in html and "<html" not in html
    good = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps > 40"))
    html = browser.post(url, {"rules": good, "version": "1.1.0"}, **HTMX).content.decode()
    assert 'data-testid="pack-check-ok"' in html and 'data-rule="stop_runaway_loops"' in html
    html = browser.post(url, {"rules": good, "version": "1.0.0"}, **HTMX).content.decode()
    assert "above the latest version" in html
    assert PolicyPackVersion.objects.count() == count


def test_publishing_from_the_editor(platform, pack):
    browser = platform("vendor_admin")
    url = f"/vendor/packs/{PACK}/versions/new/"
    bad = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "steps > 50"))
    response = browser.post(url, {"rules": bad, "version": "1.1.0", "changelog": "x"})
    html = response.content.decode()
    assert (
        response.status_code == 200
        and "unknown variable steps" in html
        and 'data-testid="pack-errors"' in html
    )
    response = browser.post(
        url, {"rules": rules_to_yaml(latest_rules(pack)), "version": "0.9.0", "changelog": "x"}
    )
    assert "above the latest published version" in response.content.decode()
    assert not PolicyPackVersion.objects.filter(pack=pack, version="1.1.0").exists()
    good = rules_to_yaml(with_condition(latest_rules(pack), "stop_runaway_loops", "trace.steps > 40"))
    response = browser.post(url, {"rules": good, "version": "1.1.0", "changelog": "Tighter."})
    assert response.status_code == 302 and response["Location"] == f"/vendor/packs/{PACK}/versions/1.1.0/"
    published = PolicyPackVersion.objects.get(pack=pack, version="1.1.0")
    assert (
        next(r for r in published.rules if r["key"] == "stop_runaway_loops")["condition"]
        == "trace.steps > 40"
    )
