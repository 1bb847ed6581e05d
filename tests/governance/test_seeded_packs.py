"""The vendor policy packs that seed_factory publishes are valid governance rules."""

import pytest

from apps.factory.fixtures_data import POLICY_PACKS
from apps.governance.rules import check_condition

RULES = [(pack["key"], rule) for pack in POLICY_PACKS for rule in pack["rules"]]


@pytest.mark.parametrize(("pack", "rule"), RULES, ids=[f"{pack}:{rule['key']}" for pack, rule in RULES])
def test_seeded_rule_conditions_compile_against_the_context_schema(pack, rule):
    if not rule.get("condition"):
        return
    program, errors = check_condition(rule["condition"])
    assert errors == [] and program is not None, (pack, rule["key"], errors)
