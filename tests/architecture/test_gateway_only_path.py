"""Every tool kind is reachable only through the gateway, and no executor runs without a permit."""

import grimp
import pytest

from apps.factory.spec import TOOLS
from apps.runtime import tools


def test_every_tool_kind_has_an_executor_that_requires_a_permit():
    for name in TOOLS:
        executor = tools.executor_for(name)
        assert getattr(executor, "requires_permit", False), f"{name} runs without a permit"


@pytest.mark.parametrize("tool", TOOLS)
def test_an_executor_without_a_permit_refuses_before_doing_anything(tool):
    with pytest.raises(tools.PermitRefused, match="No permit"):
        tools.run(permit=None, action={"tool": tool, "params": {}}, ctx=None)  # type: ignore[arg-type]
    with pytest.raises(tools.PermitRefused, match="not genuine"):
        tools.run(permit="forged-token", action={"tool": tool, "params": {}}, ctx=None)  # type: ignore[arg-type]


def test_only_the_gateway_imports_the_executors():
    graph = grimp.build_graph("apps")
    executors = {"apps.runtime.tools", *graph.find_descendants("apps.runtime.tools")}
    importers = set()
    for module in executors:
        importers |= graph.find_modules_that_directly_import(module)
    assert importers - executors == {"apps.runtime.gateway"}


def test_client_database_and_outbound_clients_are_imported_only_by_the_runtime():
    graph = grimp.build_graph("apps")
    for protected, allowed in [
        ("apps.connectors.clientdb", ("apps.runtime.tools", "apps.connectors")),
        ("apps.runtime.outbound", ("apps.runtime.tools", "apps.runtime.llm")),
    ]:
        importers = graph.find_modules_that_directly_import(protected)
        assert importers, f"nothing imports {protected}?"
        assert all(m.startswith(allowed) for m in importers), (protected, importers)
