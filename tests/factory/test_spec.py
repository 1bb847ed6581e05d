"""Spec validation: field-level and cross-reference errors; YAML with errors mapped to their lines."""

import pytest

from apps.factory.spec import SpecError, validate_spec
from apps.factory.yaml_spec import parse_spec_yaml, spec_to_yaml
from tests.factory.conftest import small_spec


def errors_of(call, *args, **kwargs) -> list[dict]:
    with pytest.raises(SpecError) as caught:
        call(*args, **kwargs)
    return caught.value.errors


def test_a_valid_spec_is_normalised_with_defaults():
    spec = validate_spec(small_spec())
    assert spec["planner"] == {"kind": "workflow", "max_steps": 20, "model": None, "temperature": 0.0}
    assert spec["tools"][2] == {"name": "notify.email", "entities": [], "settings": {}}
    assert spec["workflows"][0]["steps"][0]["on_failure"] == "halt"


def test_field_level_errors_carry_their_path():
    spec = small_spec()
    spec["tools"][1]["name"] = "shell.exec"
    spec["workflows"][0]["steps"][1]["on_failure"] = "retry-forever"
    spec["planner"] = {"max_steps": 0}
    spec["surprise"] = True
    paths = {error["path"] for error in errors_of(validate_spec, spec)}
    assert {
        "tools.1.name",
        "workflows.0.steps.1.on_failure",
        "planner.max_steps",
        "surprise",
    } <= paths


def test_missing_required_fields_and_empty_lists_are_refused():
    spec = small_spec(instructions="", tools=[])
    del spec["data"][0]["fields"][0]["name"]
    paths = {error["path"] for error in errors_of(validate_spec, spec)}
    assert {"instructions", "tools", "data.0.fields.0.name"} <= paths


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["tools"].append({"name": "db.get"}), "duplicate tool 'db.get'"),
        (
            lambda s: s["tools"][0]["entities"].append("invoice"),
            "names entity 'invoice', which is not in data",
        ),
        (lambda s: s["workflows"][0]["steps"][0].update(tool="db.query"), "is not in the tool allowlist"),
        (lambda s: s["workflows"][0]["steps"][0].update(entity="invoice"), "unknown entity 'invoice'"),
        (lambda s: s["workflows"][0]["steps"].append(s["workflows"][0]["steps"][0]), "duplicate step id"),
        (lambda s: s["data"][0]["fields"].append({"name": "id"}), "duplicate field 'id'"),
    ],
)
def test_cross_reference_errors(change, message):
    spec = small_spec()
    change(spec)
    assert any(message in error["message"] for error in errors_of(validate_spec, spec))


def test_field_classification_defaults_to_internal_and_takes_four_levels():
    spec = small_spec()
    spec["data"][0]["fields"][1]["classification"] = "confidential"
    fields = validate_spec(spec)["data"][0]["fields"]
    assert [field["classification"] for field in fields] == ["internal", "confidential", "internal"]
    spec["data"][0]["fields"][2]["classification"] = "secret"
    assert [error["path"] for error in errors_of(validate_spec, spec)] == ["data.0.fields.2.classification"]
    text = spec_to_yaml(validate_spec(small_spec()))
    lines = text.splitlines()
    line = lines.index("      - name: subject") + 4  # name, type, required, then classification
    assert lines[line - 1] == "        classification: internal"
    lines[line - 1] = "        classification: top-secret"
    [error] = errors_of(parse_spec_yaml, "\n".join(lines))
    assert (error["path"], error["line"]) == ("data.0.fields.1.classification", line)


def test_yaml_round_trip_is_stable_and_ordered():
    spec = validate_spec(small_spec())
    text = spec_to_yaml(spec)
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert keys == ["instructions", "tools", "data", "workflows", "planner", "policy_pack"]
    assert parse_spec_yaml(text) == spec
    assert spec_to_yaml(parse_spec_yaml(text)) == text


def test_multi_line_instructions_are_a_literal_block():
    text = spec_to_yaml(validate_spec(small_spec(instructions="First line.\nSecond line.")))
    assert text.startswith("instructions: |-\n  First line.\n  Second line.\n")


def test_yaml_syntax_error_reports_its_line():
    text = spec_to_yaml(validate_spec(small_spec()))
    lines = text.splitlines()
    lines[4] = lines[4] + " : : ["  # line 5
    [error] = errors_of(parse_spec_yaml, "\n".join(lines))
    assert error["line"] == 5
    assert error["message"].startswith("YAML syntax error")


def test_invalid_field_reports_the_line_of_its_node():
    text = spec_to_yaml(validate_spec(small_spec()))
    text = text.replace("on_failure: halt", "on_failure: maybe", 2)
    lines = text.splitlines()
    expected = [number for number, line in enumerate(lines, 1) if "on_failure: maybe" in line]
    errors = errors_of(parse_spec_yaml, text)
    assert [(e["path"], e["line"]) for e in errors] == [
        ("workflows.0.steps.0.on_failure", expected[0]),
        ("workflows.0.steps.1.on_failure", expected[1]),
    ]


def test_missing_field_reports_the_line_of_its_parent():
    text = """instructions: Help.
tools:
  - name: db.get
  - entities: [ticket]
"""
    errors = errors_of(parse_spec_yaml, text)
    assert ("tools.1.name", 4) in [(e["path"], e["line"]) for e in errors]


def test_cross_reference_error_points_at_the_offending_step():
    text = spec_to_yaml(validate_spec(small_spec()))
    text = text.replace("tool: db.update", "tool: db.insert")
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if "tool: db.insert" in text_line)
    [error] = errors_of(parse_spec_yaml, text)
    assert error["path"] == "workflows.0.steps.1.tool"
    assert error["line"] == line
    assert "not in the tool allowlist" in error["message"]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "must be a mapping"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("instructions: a\ninstructions: b\ntools: []\n", 2, "duplicate key 'instructions'"),
        ("instructions: &x hello\ntools: *x\n", 2, "aliases"),
        ("instructions: !!python/object:os.system x\n", 1, "YAML syntax error"),
    ],
)
def test_unsafe_or_ambiguous_yaml_is_refused_with_a_line(text, line, fragment):
    [error] = errors_of(parse_spec_yaml, text)
    assert error["line"] == line and fragment in error["message"]


def test_oversized_yaml_is_refused():
    errors = errors_of(parse_spec_yaml, "instructions: " + "x" * 300, max_bytes=100)
    assert "too large" in errors[0]["message"]


# --- Untrusted YAML: only JSON values come out, and nothing turns into a server error ---------


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 5000,
        "{a: " * 5000,
        "- " * 5000 + "x",
        "".join(f"{'  ' * depth}a:\n" for depth in range(1, 2000)),
    ],
    ids=["flow-lists", "flow-maps", "block-lists", "block-maps"],
)
def test_deeply_nested_yaml_is_refused_not_a_recursion_error(nested):
    text = "instructions: x\ntools:\n  " + nested
    [error] = errors_of(parse_spec_yaml, text, max_bytes=10_000_000)
    assert error["message"] == "The YAML is nested too deeply." and error["line"] is not None


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("instructions: x\nsettings: !!binary /w==\n", 2, "the tag !!binary is not allowed"),  # not UTF-8
        ("instructions: !!binary aGVsbG8=\n", 1, "the tag !!binary is not allowed"),
        ("instructions: x\ntools: !!set {a, b}\n", 2, "the tag !!set is not allowed"),
        ("instructions: x\ntools: !!omap [a: 1]\n", 2, "the tag !!omap is not allowed"),
        ("instructions: !!timestamp 2024-01-01\n", 1, "the tag !!timestamp is not allowed"),
        ("instructions: !custom x\n", 1, "the tag !custom is not allowed"),
        ("instructions: x\nplanner:\n  max_steps: !!int many\n", 3, "cannot be read as !!int"),
        ("instructions: x\nplanner:\n  temperature: !!float warm\n", 3, "cannot be read as !!float"),
    ],
)
def test_tags_for_values_json_cannot_hold_are_refused_with_their_line(text, line, fragment):
    [error] = errors_of(parse_spec_yaml, text)
    assert error["line"] == line and fragment in error["message"]


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "+.Inf", "1.0e+400"])
def test_non_finite_numbers_are_refused_not_turned_into_null(value):
    text = spec_to_yaml(validate_spec(small_spec())).replace("temperature: 0.0", f"temperature: {value}")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "temperature:" in row)
    [error] = errors_of(parse_spec_yaml, text)
    assert error["line"] == line and "not a finite number" in error["message"]


def test_dates_and_times_stay_the_strings_that_were_typed():
    spec = small_spec()
    spec["workflows"][0]["steps"][0]["params"] = {"since": "PLACEHOLDER"}
    text = spec_to_yaml(spec)
    for typed in ("2024-01-31", "2024-01-31T10:00:00Z", "2024-01-31 10:00:00.5"):
        parsed = parse_spec_yaml(text.replace("PLACEHOLDER", typed))
        assert parsed["workflows"][0]["steps"][0]["params"]["since"] == typed


def test_the_spec_loader_leaves_pyyaml_safe_load_alone():
    import datetime

    import yaml

    assert yaml.safe_load("d: 2024-01-31") == {"d": datetime.date(2024, 1, 31)}
