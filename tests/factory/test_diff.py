"""Structured diff and three-way merge of specs (pure functions, no database)."""

import copy

from apps.factory.diff import Conflict, DiffEntry, apply_resolutions, spec_diff, three_way_merge
from apps.factory.spec import validate_spec
from tests.factory.conftest import small_spec


def spec(**overrides) -> dict:
    return validate_spec(small_spec(**overrides))


def test_identical_specs_have_no_diff():
    assert spec_diff(spec(), spec()) == []


def test_added_removed_changed_with_keyed_lists():
    old = spec()
    new = copy.deepcopy(old)
    new["instructions"] = "Help the service desk, politely."
    new["tools"][1]["entities"] = []  # a plain list: compared whole
    new["tools"].append({"name": "db.query", "entities": ["ticket"], "settings": {}})
    del new["tools"][2]  # notify.email
    new["workflows"][0]["steps"][0]["params"]["id"] = "{{ inputs.id }}"
    new["data"][0]["fields"][2]["required"] = True
    entries = spec_diff(old, new)
    assert entries == sorted(entries, key=lambda e: e.path)
    assert entries == [
        DiffEntry("data[ticket].fields[status].required", "changed", False, True),
        DiffEntry("instructions", "changed", old["instructions"], new["instructions"]),
        DiffEntry("tools[db.query]", "added", None, new["tools"][2]),
        DiffEntry("tools[db.update].entities", "changed", ["ticket"], []),
        DiffEntry("tools[notify.email]", "removed", old["tools"][2], None),
        DiffEntry(
            "workflows[close_ticket].steps[load].params.id",
            "changed",
            "{{ inputs.ticket_id }}",
            "{{ inputs.id }}",
        ),
    ]


def test_inserting_an_item_does_not_change_the_items_after_it():
    old = spec()
    new = copy.deepcopy(old)
    new["workflows"][0]["steps"].insert(1, {**old["workflows"][0]["steps"][0], "id": "audit"})
    assert [(e.path, e.kind) for e in spec_diff(old, new)] == [
        ("workflows[close_ticket].steps[audit]", "added")
    ]


def test_reordering_steps_is_a_change_of_the_list_order():
    old = spec()
    new = copy.deepcopy(old)
    new["workflows"][0]["steps"].reverse()
    assert spec_diff(old, new) == [
        DiffEntry("workflows[close_ticket].steps", "changed", ["load", "close"], ["close", "load"])
    ]


def test_diff_against_nothing_lists_every_top_level_key_as_added():
    assert {e.path for e in spec_diff({}, spec())} == {
        "instructions",
        "tools",
        "data",
        "workflows",
        "planner",
        "policy_pack",
    }


def test_merge_combines_changes_from_both_sides():
    base = spec()
    ours = copy.deepcopy(base)
    ours["instructions"] = "Variant instructions."
    ours["workflows"][0]["steps"][1]["params"]["status"] = "resolved"
    theirs = copy.deepcopy(base)
    theirs["tools"].append({"name": "db.query", "entities": ["ticket"], "settings": {}})
    theirs["planner"]["max_steps"] = 40
    theirs["workflows"][0]["steps"][1]["when"] = None
    merged, conflicts = three_way_merge(base, ours, theirs)
    assert conflicts == []
    assert merged["instructions"] == "Variant instructions."
    assert [t["name"] for t in merged["tools"]] == ["db.get", "db.update", "notify.email", "db.query"]
    assert merged["planner"]["max_steps"] == 40
    assert merged["workflows"][0]["steps"][1]["params"]["status"] == "resolved"
    assert merged["workflows"][0]["steps"][1]["when"] is None
    validate_spec(merged)


def test_merge_keeps_ours_order_and_places_their_additions_after_their_predecessor():
    base = spec()
    ours = copy.deepcopy(base)
    ours["tools"].append({"name": "http.request", "entities": [], "settings": {}})
    theirs = copy.deepcopy(base)
    theirs["tools"].insert(1, {"name": "db.query", "entities": [], "settings": {}})
    theirs["workflows"][0]["steps"].insert(1, {**base["workflows"][0]["steps"][0], "id": "audit"})
    merged, conflicts = three_way_merge(base, ours, theirs)
    assert conflicts == []
    assert [t["name"] for t in merged["tools"]] == [
        "db.get",
        "db.query",
        "db.update",
        "notify.email",
        "http.request",
    ]
    assert [s["id"] for s in merged["workflows"][0]["steps"]] == ["load", "audit", "close"]


def test_same_change_on_both_sides_is_not_a_conflict():
    base = spec()
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["instructions"] = theirs["instructions"] = "Same."
    merged, conflicts = three_way_merge(base, ours, theirs)
    assert conflicts == [] and merged["instructions"] == "Same."


def test_different_changes_to_one_path_conflict_and_keep_ours():
    base = spec()
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["instructions"] = "Ours."
    theirs["instructions"] = "Theirs."
    ours["tools"][0]["entities"] = []
    theirs["planner"]["max_steps"] = 50
    merged, conflicts = three_way_merge(base, ours, theirs)
    assert conflicts == [Conflict("instructions", base["instructions"], "Ours.", "Theirs.")]
    assert merged["instructions"] == "Ours."
    assert merged["tools"][0]["entities"] == [] and merged["planner"]["max_steps"] == 50
    resolved = apply_resolutions(merged, conflicts, {"instructions": "theirs"})
    assert resolved["instructions"] == "Theirs." and merged["instructions"] == "Ours."


def test_delete_versus_modify_is_a_conflict_resolved_either_way():
    base = spec()
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["tools"] = [t for t in ours["tools"] if t["name"] != "notify.email"]
    theirs["tools"][2]["settings"] = {"from": "desk@example.com"}
    merged, conflicts = three_way_merge(base, ours, theirs)
    [conflict] = conflicts
    assert conflict.path == "tools[notify.email]"
    assert conflict.ours is None and conflict.theirs["settings"] == {"from": "desk@example.com"}
    assert "notify.email" not in [t["name"] for t in merged["tools"]]
    kept = apply_resolutions(merged, conflicts, {conflict.path: "theirs"})
    assert kept["tools"][-1] == theirs["tools"][2]
    dropped = apply_resolutions(merged, conflicts, {conflict.path: "ours"})
    assert "notify.email" not in [t["name"] for t in dropped["tools"]]

    # And the other way round: we modify what they deleted.
    merged, conflicts = three_way_merge(base, theirs, ours)
    assert [c.path for c in conflicts] == ["tools[notify.email]"]
    removed = apply_resolutions(merged, conflicts, {"tools[notify.email]": "theirs"})
    assert "notify.email" not in [t["name"] for t in removed["tools"]]


def test_both_reordering_differently_is_an_order_conflict():
    base = spec(tools=[{"name": n} for n in ("db.get", "db.update", "notify.email", "db.query")])
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["tools"].reverse()
    theirs["tools"] = [theirs["tools"][i] for i in (1, 0, 2, 3)]
    merged, conflicts = three_way_merge(base, ours, theirs)
    [conflict] = conflicts
    assert conflict.path == "tools" and conflict.order
    resolved = apply_resolutions(merged, conflicts, {"tools": "theirs"})
    assert [t["name"] for t in resolved["tools"]] == ["db.update", "db.get", "notify.email", "db.query"]


def test_only_their_reordering_is_taken():
    base = spec()
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    theirs["workflows"][0]["steps"].reverse()
    ours["workflows"][0]["steps"][0]["on_failure"] = "continue"
    merged, conflicts = three_way_merge(base, ours, theirs)
    assert conflicts == []
    steps = merged["workflows"][0]["steps"]
    assert [s["id"] for s in steps] == ["close", "load"] and steps[1]["on_failure"] == "continue"
