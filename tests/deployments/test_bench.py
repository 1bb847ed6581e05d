"""`manage.py bench_rollout`: parseable figures, a real rollout, nothing left behind.

Timings are never asserted: they depend on the machine.
"""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_exists

from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion, Rollout
from apps.tenancy.models import Client, Partner

ROLLOUT_LINE = re.compile(
    r"^rollout: clients=(?P<clients>\d+) total=(?P<total>[\d.]+)s p50=(?P<p50>[\d.]+)s p95=(?P<p95>[\d.]+)s$",
    re.MULTILINE,
)


def test_bench_refuses_without_debug_unless_forced(world, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("bench_rollout", clients=1, stdout=StringIO())
    assert not Partner.objects.filter(slug="rbench").exists()


def test_bench_rolls_out_reports_and_cleans_up(world):
    out = StringIO()
    call_command("bench_rollout", "--clients", "2", "--force", stdout=out)
    output = out.getvalue()

    line = ROLLOUT_LINE.search(output)
    assert line, output
    assert int(line["clients"]) == 2
    assert 0 < float(line["p50"]) <= float(line["p95"])
    assert float(line["total"]) >= 0
    assert "moved=2 failed=0" in output

    assert "cleanup: dropped_schemas=2 clients=2" in output
    assert not Client.objects.filter(slug__startswith="rbench-").exists()
    assert not Partner.objects.filter(slug="rbench").exists()
    assert not AgentVariant.objects.filter(key__startswith="rbench").exists()
    assert not AgentTemplate.objects.filter(key="rbench").exists()
    assert not AgentVersion.objects.filter(variant__key__startswith="rbench").exists()
    assert not Rollout.objects.exists()
    assert not schema_exists("client_rbench_0001")
    assert schema_exists(world.client_a.schema_name)


def test_bench_keep_leaves_the_rollout(world):
    out = StringIO()
    call_command("bench_rollout", "--clients", "1", "--force", "--keep", "--prefix", "rkeep", stdout=out)
    assert "kept: clients=1 partner=rkeep variant=rkeep-v1" in out.getvalue()
    rollout = Rollout.objects.get(variant__key="rkeep-v1")
    assert rollout.status == Rollout.Status.COMPLETED
    assert schema_exists("client_rkeep_0001")
