"""`manage.py bench_rollout`: parseable figures, a real rollout, only its own clients removed.

Timings are never asserted: they depend on the machine.
"""

import re
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_tenants.utils import schema_exists

from apps.factory.models import AgentVariant, AgentVersion, Rollout, RolloutTarget
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


def _immutability_trigger_enabled() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'factory_agentversion_immutable_when_published'"
        )
        return cursor.fetchone() == ("O",)


def bench_versions() -> list[tuple[str, str]]:
    return list(
        AgentVersion.objects.filter(variant__key="rbench-agent")
        .order_by("major", "minor", "patch")
        .values_list("version", "status")
    )


def test_bench_rolls_out_reports_and_cleans_up_only_what_it_made(world):
    audit_before = LogEntry.objects.count()
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
    assert not Rollout.objects.exists() and not RolloutTarget.objects.exists()
    assert not schema_exists("client_rbench_0001")
    assert schema_exists(world.client_a.schema_name)
    # Published versions and the audit trail are permanent: the bench variant and its versions stay,
    # the immutability trigger was never switched off, and no audit row was deleted.
    variant = AgentVariant.objects.get(key="rbench-agent")
    assert variant.parent is not None and variant.parent.key == "rbench-base"
    assert bench_versions() == [("1.0.0", "published"), ("1.1.0", "published")]
    assert _immutability_trigger_enabled()
    assert LogEntry.objects.count() >= audit_before
    assert LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Client), action=LogEntry.Action.DELETE
    ).exists()

    # The next run reuses the variant: pinned at its latest version, rolled out to the next minor.
    out = StringIO()
    call_command("bench_rollout", "--clients", "1", "--force", stdout=out)
    assert "moved=1 failed=0" in out.getvalue()
    assert AgentVariant.objects.filter(key__startswith="rbench").count() == 2
    assert bench_versions()[-1] == ("1.2.0", "published")
    assert not Client.objects.filter(slug__startswith="rbench-").exists()
    assert not Rollout.objects.exists()


def test_bench_keep_leaves_the_rollout(world):
    out = StringIO()
    call_command("bench_rollout", "--clients", "1", "--force", "--keep", "--prefix", "rkeep", stdout=out)
    assert "kept: clients=1 partner=rkeep variant=rkeep-agent" in out.getvalue()
    rollout = Rollout.objects.get(variant__key="rkeep-agent")
    assert rollout.status == Rollout.Status.COMPLETED
    assert schema_exists("client_rkeep_0001")
