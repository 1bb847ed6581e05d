"""`manage.py bench_tenancy`: parseable figures, real provisioning, nothing left behind.

Timings are never asserted: they depend on the machine.
"""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_exists

from apps.tenancy.models import Client, Domain, Partner

PROVISION_LINE = re.compile(
    r"^provision: n=(?P<n>\d+) p50=(?P<p50>[\d.]+)s p95=(?P<p95>[\d.]+)s max=(?P<max>[\d.]+)s "
    r"mean=(?P<mean>[\d.]+)s$",
    re.MULTILINE,
)
MIGRATE_LINE = re.compile(
    r"^migrate_schemas \(no-op\): schemas=(?P<schemas>\d+) total=(?P<total>[\d.]+)s "
    r"per_schema=(?P<per_schema>[\d.]+)s$",
    re.MULTILINE,
)


def test_bench_refuses_without_debug_unless_forced(world, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("bench_tenancy", clients=1, stdout=StringIO())
    assert not Partner.objects.filter(slug="bench").exists()


def test_bench_provisions_reports_and_cleans_up(world):
    out = StringIO()
    call_command("bench_tenancy", "--clients", "2", "--force", stdout=out)
    output = out.getvalue()

    provision = PROVISION_LINE.search(output)
    assert provision, output
    assert int(provision["n"]) == 2
    p50, p95, slowest = float(provision["p50"]), float(provision["p95"]), float(provision["max"])
    assert 0 < p50 <= p95 <= slowest

    migrate = MIGRATE_LINE.search(output)
    assert migrate, output
    # public + the template + the two bench clients + the world's three clients.
    assert int(migrate["schemas"]) >= 2 + 2 + 3
    assert float(migrate["total"]) > 0

    assert "cleanup: dropped_schemas=2 clients=2" in output
    assert not Client.objects.filter(slug__startswith="bench-").exists()
    assert not Domain.objects.filter(domain__startswith="bench-").exists()
    assert not Partner.objects.filter(slug="bench").exists()
    assert not schema_exists("client_bench_0001")
    assert not schema_exists("client_bench_0002")
    # The world's clients were left alone.
    assert schema_exists(world.client_a.schema_name)


def test_bench_keep_leaves_clients_ready(world):
    out = StringIO()
    call_command("bench_tenancy", "--clients", "1", "--force", "--keep", "--prefix", "bkeep", stdout=out)
    assert "kept: clients=1 partner=bkeep" in out.getvalue()
    client = Client.objects.get(slug="bkeep-0001")
    assert client.status == Client.Status.READY and client.partner.slug == "bkeep"
    assert schema_exists("client_bkeep_0001")
