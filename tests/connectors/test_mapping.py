"""Field mappings typed as YAML: the normalised spec, and every error with the line it is on."""

import pytest

from apps.connectors.mapping import MappingError, parse_mapping_yaml, starter_yaml
from tests.connectors.conftest import DATA, MAPPING_YAML


def errors_of(text: str) -> list[dict]:
    with pytest.raises(MappingError) as caught:
        parse_mapping_yaml(text, data=DATA)
    return caught.value.errors


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_a_valid_mapping_is_normalised_with_types_and_absent_fields():
    spec = parse_mapping_yaml(MAPPING_YAML, data=DATA)
    ticket = spec["entities"]["ticket"]
    assert ticket["table"] == "hd_tkt"
    assert ticket["key"] == "tkt_id"
    assert ticket["fields"]["description"] == "hd_tkt_txt.body"
    assert ticket["fields"]["team_id"] is None
    assert ticket["joins"] == {"hd_tkt_txt": {"column": "tkt_ref_id", "references": "tkt_id"}}
    assert ticket["types"]["due_date"] == "date"
    assert spec["entities"]["person"]["fields"] == {"name": "full_nm", "email": "email_addr"}
    assert spec["warnings"] == []


def test_unmentioned_optional_fields_and_unmapped_entities_are_warnings():
    text = "entities:\n  ticket:\n    table: sales.hd_tkt\n    key: tkt_id\n    fields:\n"
    text += "      reference: ref\n      subject: subj\n      status: st\n"
    spec = parse_mapping_yaml(text, data=DATA)
    assert spec["entities"]["ticket"]["table"] == "sales.hd_tkt"
    assert spec["entities"]["ticket"]["fields"]["priority"] is None
    assert "Entity 'person' is not mapped: the agent's tools cannot reach it." in spec["warnings"]
    assert "ticket.priority is not mapped: tools leave it out." in spec["warnings"]


def test_errors_carry_the_line_they_are_on():
    text = MAPPING_YAML.replace("subject: subj", "subjekt: subj").replace(
        "status: stat_cd", "status: stat_cd; DROP TABLE x"
    )
    text = text.replace("  person:", "  invoice:")
    errors = errors_of(text)
    by_path = {error["path"]: error for error in errors}
    assert by_path["entities.ticket.fields.subjekt"]["line"] == line_of(text, "subjekt")
    assert "'subjekt' is not a field of ticket" in by_path["entities.ticket.fields.subjekt"]["message"]
    assert by_path["entities.ticket.fields.status"]["line"] == line_of(text, "status: stat_cd")
    assert "not a valid column reference" in by_path["entities.ticket.fields.status"]["message"]
    assert by_path["entities.invoice"]["line"] == line_of(text, "invoice:")
    assert "not an entity of this agent" in by_path["entities.invoice"]["message"]
    # subject is required and now unmapped: reported on the fields block.
    required = [e for e in errors if "'subject' is required" in e["message"]]
    assert required and required[0]["line"] == line_of(text, "    fields:")


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (("subject: subj", "subject: null"), "entities.ticket.fields.subject", "'subject' is required"),
        (
            ("description: hd_tkt_txt.body", "description: hd_notes.body"),
            "entities.ticket.fields.description",
            "side table 'hd_notes', which has no entry under joins",
        ),
        (("table: hd_tkt\n", "table: 1hd_tkt\n"), "entities.ticket.table", "not a valid table name"),
        (("key: tkt_id", "key: tkt id"), "entities.ticket.key", "not a valid column name"),
        (("vip: vip_flg", "vip: subj"), "entities.ticket.fields.vip", "already mapped to 'subject'"),
        (("vip: vip_flg", "id: tkt_id"), "entities.ticket.fields.id", "set it with `key:`"),
        (
            ("{column: tkt_ref_id, references: tkt_id}", "{column: tkt_ref_id, refs: tkt_id}"),
            "entities.ticket.joins.hd_tkt_txt.refs",
            "Extra inputs are not permitted",
        ),
        (
            ("{column: tkt_ref_id, references: tkt_id}", '{column: "x\'--", references: tkt_id}'),
            "entities.ticket.joins.hd_tkt_txt.column",
            "not a valid column name",
        ),
    ],
)
def test_each_rule_names_the_node(change, path, message):
    text = MAPPING_YAML.replace(*change)
    errors = errors_of(text)
    found = [error for error in errors if error["path"] == path]
    assert found, errors
    assert message in found[0]["message"]
    assert found[0]["line"] is not None


def test_yaml_problems_are_reported_with_their_line():
    errors = errors_of("entities:\n  ticket:\n    table: [unclosed\n")
    assert errors[0]["message"].startswith("YAML syntax error")
    assert errors[0]["line"] in (3, 4)
    errors = errors_of("entities:\n  ticket: &a\n    table: t\n  person: *a\n")
    assert "aliases" in errors[0]["message"]
    assert errors[0]["line"] == 4
    errors = errors_of("entities:\n  ticket:\n    table: a\n    table: b\n    key: id\n")
    assert "duplicate key 'table'" in errors[0]["message"]
    assert errors[0]["line"] == 4
    assert errors_of("- just\n- a list\n")[0]["message"].startswith("The mapping must be a YAML mapping")
    assert errors_of("entities: {}\n")[0]["path"] == "entities"


def test_the_starter_mapping_parses_and_names_every_field():
    text = starter_yaml(DATA)
    spec = parse_mapping_yaml(text, data=DATA)
    assert spec["entities"]["ticket"]["fields"]["subject"] == "subject"
    assert spec["entities"]["person"]["key"] == "id"
    assert spec["warnings"] == []
