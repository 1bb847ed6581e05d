"""rules_diff: rules matched by key, field-level changes, selector dimensions, order."""

from apps.governance.diff import FieldChange, rules_diff
from apps.governance.rules import validate_rules


def rule(key: str, **extra) -> dict:
    return {"key": key, "name": key.replace("_", " ").title(), "effect": "deny", "message": "No.", **extra}


def test_identical_lists_have_no_changes():
    rules = validate_rules([rule("a"), rule("b", condition="action.params.amount > 5")])
    assert rules_diff(rules, rules) == []
    assert rules_diff([], []) == []
    assert rules_diff(None, None) == []


def test_added_and_removed_by_key():
    changes = rules_diff([rule("a"), rule("b")], [rule("a"), rule("c")])
    assert [(c.key, c.kind) for c in changes] == [("c", "added"), ("b", "removed")]
    added, removed = changes
    assert added.old is None and added.new["key"] == "c" and added.rule is added.new and added.changes == []
    assert removed.new is None and removed.rule["key"] == "b" and removed.name == "B"


def test_insertion_does_not_make_later_rules_changed():
    changes = rules_diff([rule("a"), rule("b")], [rule("new"), rule("a"), rule("b")])
    assert [(c.key, c.kind) for c in changes] == [("new", "added")]


def test_changed_fields_in_a_stable_order():
    old = rule("a", condition="action.params.amount > 5", severity="low")
    new = rule("a", condition="action.params.amount > 10", severity="high", message="Too big.")
    (change,) = rules_diff([old], [new])
    assert change.kind == "changed" and change.old == old and change.new == new
    assert change.changes == [
        FieldChange("condition", "action.params.amount > 5", "action.params.amount > 10"),
        FieldChange("message", "No.", "Too big."),
        FieldChange("severity", "low", "high"),
    ]


def test_selector_compared_per_dimension_and_missing_means_empty():
    old = rule("a", selector={"tools": ["db.update"]})
    new = rule("a", selector={"tools": ["db.update", "db.insert"], "entities": ["invoice"], "variants": []})
    (change,) = rules_diff([old], [new])
    assert change.changes == [
        FieldChange("selector.tools", ["db.update"], ["db.update", "db.insert"]),
        FieldChange("selector.entities", [], ["invoice"]),
    ]
    # A selector written out with empty lists is the same as no selector.
    assert rules_diff([rule("b")], [rule("b", selector={"tools": [], "entities": []})]) == []


def test_a_field_appearing_or_disappearing():
    (change,) = rules_diff(
        [rule("a", effect="require_approval", approver_role="operator")],
        [rule("a", effect="redact", redact_fields=["body"])],
    )
    assert change.changes == [
        FieldChange("effect", "require_approval", "redact"),
        FieldChange("approver_role", "operator", None),
        FieldChange("redact_fields", None, ["body"]),
    ]


def test_only_the_moved_rule_gets_a_position_change():
    old = [rule("a"), rule("b"), rule("c"), rule("d")]
    new = [rule("d"), rule("a"), rule("b"), rule("c")]
    (change,) = rules_diff(old, new)
    assert change.key == "d" and change.kind == "changed"
    assert change.changes == [FieldChange("position", 4, 1)]


def test_position_is_among_shared_rules_only():
    # b is removed and x added: a and c keep their relative order, so nothing moved.
    changes = rules_diff([rule("a"), rule("b"), rule("c")], [rule("x"), rule("c", name="C!"), rule("a")])
    by_key = {c.key: c for c in changes}
    assert by_key["x"].kind == "added" and by_key["b"].kind == "removed"
    moved = [c for c in changes if any(f.field == "position" for f in c.changes)]
    assert len(moved) == 1  # one of a / c moved relative to the other
    assert FieldChange("name", "C", "C!") in by_key["c"].changes


def test_works_on_normalised_rules():
    old = validate_rules([rule("a"), rule("b", layer="client")])
    new = validate_rules([rule("a", mode="shadow"), rule("b", layer="client", fail_mode="closed")])
    (change,) = rules_diff(old, new)
    assert change.key == "a" and change.changes == [FieldChange("mode", "enforce", "shadow")]


def test_field_changes_read_as_text():
    (change,) = rules_diff(
        [rule("a", selector={"tools": ["db.update"]}, condition="action.params.amount > 5")],
        [rule("a", selector={"tools": ["db.update", "db.insert"], "entities": ["invoice"]})],
    )
    texts = [(f.field, f.old_text, f.new_text) for f in change.changes]
    assert texts == [
        ("selector.tools", "db.update", "db.update, db.insert"),
        ("selector.entities", "any", "invoice"),
        ("condition", "action.params.amount > 5", ""),
    ]
