"""Workflow templates and `when` conditions: names are looked up, never executed; missing names are errors."""

import pytest

from apps.runtime.templating import TemplateError, condition_holds, render

NAMES = {
    "inputs": {"ticket_id": 42, "resolution": "Replaced the toner"},
    "steps": {"load": {"status": "new", "reference": "T-42", "tags": ["a", "b"]}, "q": {"rows": [{"id": 7}]}},
    "now": "2026-11-22T10:00:00+00:00",
}


def test_a_whole_placeholder_keeps_its_type():
    assert render("{{ inputs.ticket_id }}", NAMES) == 42
    assert render({"id": "{{inputs.ticket_id}}", "n": ["{{ steps.q.rows.0.id }}"]}, NAMES) == {
        "id": 42,
        "n": [7],
    }


def test_placeholders_inside_text_are_formatted():
    assert (
        render("[{{ steps.load.reference }}] {{ inputs.resolution }}", NAMES) == "[T-42] Replaced the toner"
    )


def test_a_missing_name_is_an_error_naming_it():
    with pytest.raises(TemplateError, match=r"steps\.requester is not available"):
        render("{{ steps.requester.email }}", NAMES)


def test_templates_are_not_code():
    # Anything that is not a dotted name is left as text, never evaluated.
    assert render("{{ __import__('os') }}", NAMES) == "{{ __import__('os') }}"


def test_conditions_are_cel_over_the_same_names():
    assert condition_holds("steps.load.status == 'new'", NAMES) is True
    assert condition_holds("inputs.ticket_id > 100", NAMES) is False


@pytest.mark.parametrize(
    "expression", ["steps.missing.status == 'x'", "inputs.ticket_id +", "inputs.ticket_id"]
)
def test_a_broken_or_non_boolean_condition_is_an_error(expression):
    with pytest.raises(TemplateError):
        condition_holds(expression, NAMES)
