"""The import-linter contracts in pyproject.toml hold (layers, no domain app importing a portal)."""

from importlinter.cli import lint_imports


def test_import_contracts_are_kept():
    assert lint_imports() == 0
