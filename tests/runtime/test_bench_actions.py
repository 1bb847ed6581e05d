"""`manage.py bench_actions`: every action through the API, the worker's task body and the gate, parseable
figures, and only what the run made removed.

Timings are never asserted: they depend on the machine. The inline runs (requests and task bodies in the
test's thread and transaction) show the figures and the bookkeeping; the last test runs the default path,
real Celery worker processes and a gunicorn server, which only see committed rows (a transactional test).
"""

import re
from io import StringIO

import psycopg
import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_exists, tenant_context

from apps.audit.models import AuditEvent
from apps.factory.models import AgentVariant, AgentVersion
from apps.governance.models import DecisionLog
from apps.runtime.management.commands.bench_actions import STATUSES, WORKFLOW
from apps.runtime.management.commands.seed_runtime_demo import _server_dsn, helpdesk_database_name
from apps.runtime.models import Step, Task
from apps.tenancy.models import Client, Partner

NUMBER = r"[\d.]+"
LINES = {
    "setup": re.compile(rf"^setup: seconds={NUMBER} tickets=(?P<tickets>\d+) .*api=(?P<api>\w+)$", re.M),
    "actions": re.compile(
        rf"^actions: executed=(?P<executed>\d+) failed=(?P<failed>\d+) seconds={NUMBER} "
        rf"throughput={NUMBER}/s$",
        re.M,
    ),
    "latency": re.compile(
        rf"^latency: p50=(?P<p50>{NUMBER})ms p95=(?P<p95>{NUMBER})ms p99=(?P<p99>{NUMBER})ms max={NUMBER}ms$",
        re.M,
    ),
    "phases": re.compile(r"^phases: api_p50=.* api_errors=(?P<errors>\d+)$", re.M),
    "gate": re.compile(
        rf"^gate: engine_p50=(?P<engine>{NUMBER})us engine_p99={NUMBER}us decide_p50={NUMBER}ms "
        rf"decide_p95={NUMBER}ms share={NUMBER}%$",
        re.M,
    ),
    "audit_append": re.compile(
        rf"^audit_append: samples=(?P<samples>\d+) p50={NUMBER}ms p99={NUMBER}ms$", re.M
    ),
    "audit_wait": re.compile(rf"^audit_wait: p50={NUMBER}ms p95={NUMBER}ms share={NUMBER}%$", re.M),
    "targets": re.compile(
        r"^targets: throughput>=100/s:(met|missed) p95<=150ms:(met|missed) "
        r"audit_append_p99<=5ms:(met|missed)$",
        re.M,
    ),
}


def parsed(text: str) -> dict[str, re.Match]:
    found = {name: pattern.search(text) for name, pattern in LINES.items()}
    missing = [name for name, match in found.items() if match is None]
    assert not missing, f"missing {missing} in:\n{text}"
    return found  # type: ignore[return-value]


def database_exists(name: str) -> bool:
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def drop_database(name: str) -> None:
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_bench_refuses_without_debug_unless_forced(world, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("bench_actions", "--inline", "--actions", "1", stdout=StringIO())
    assert not Partner.objects.filter(slug="abench").exists()


def test_bench_runs_every_action_and_removes_only_what_it_made(world):
    out = StringIO()
    call_command(
        "bench_actions",
        *("--inline", "--actions", "6", "--tickets", "4", "--audit-samples", "5", "--force"),
        stdout=out,
    )
    text = out.getvalue()
    lines = parsed(text)
    assert lines["setup"]["tickets"] == "4" and lines["setup"]["api"] == "inprocess"
    assert (lines["actions"]["executed"], lines["actions"]["failed"]) == ("6", "0")
    assert lines["phases"]["errors"] == "0"
    latency = lines["latency"]
    assert 0 < float(latency["p50"]) <= float(latency["p95"]) <= float(latency["p99"])
    assert float(lines["gate"]["engine"]) > 0
    assert lines["audit_append"]["samples"] == "5"

    # Removed: the client, its schema, its helpdesk database and the partner this run made.
    assert "cleanup: dropped_schemas=1 helpdesk=dropped" in text
    assert not Client.objects.filter(slug__startswith="abench-").exists()
    assert not Partner.objects.filter(slug="abench").exists()
    assert not schema_exists("client_abench_0001")
    assert not database_exists(helpdesk_database_name("abench-0001"))
    # Kept: the bench variant, a child of the ITSM agent, its published version pinned to the ITSM pack.
    variant = AgentVariant.objects.get(key="abench-itsm")
    assert variant.parent is not None and variant.parent.key == "itsm"
    version = AgentVersion.objects.get(variant=variant, status=AgentVersion.Status.PUBLISHED)
    assert version.policy_pack_version is not None
    assert version.policy_pack_version.pack.key == "itsm-baseline"
    assert WORKFLOW in [workflow["name"] for workflow in version.spec["workflows"]]

    # The next run reuses the variant and its version (nothing changed, nothing is published).
    out = StringIO()
    call_command(
        "bench_actions",
        "--inline",
        "--actions",
        "2",
        "--tickets",
        "2",
        "--audit-samples",
        "0",
        "--force",
        stdout=out,
    )
    assert parsed(out.getvalue())["actions"]["executed"] == "2"
    assert AgentVersion.objects.filter(variant=variant).count() == 1


def test_bench_updates_the_helpdesk_through_the_gate_and_keeps_it_with_keep(world):
    helpdesk = helpdesk_database_name("akeep-0001")
    try:
        out = StringIO()
        call_command(
            "bench_actions",
            *("--inline", "--actions", "6", "--tickets", "6", "--audit-samples", "2"),
            *("--prefix", "akeep", "--keep", "--force"),
            stdout=out,
        )
        text = out.getvalue()
        assert parsed(text)["actions"]["executed"] == "6"
        assert f"kept: client=akeep-0001 helpdesk={helpdesk} partner=akeep variant=akeep-itsm" in text

        # Every ticket got the status its action asked for, in the client's real PostgreSQL database.
        with psycopg.connect(_server_dsn(helpdesk)) as db:
            statuses = [row[0] for row in db.execute("SELECT stat_cd FROM hd_tkt ORDER BY tkt_id LIMIT 6")]
        assert statuses == [STATUSES[i % len(STATUSES)] for i in range(6)]

        client = Client.objects.get(slug="akeep-0001")
        with tenant_context(client):
            tasks = list(Task.objects.all())
            assert len(tasks) == 6
            assert {(t.source, t.workflow, t.status) for t in tasks} == {("api", WORKFLOW, "completed")}
            # Each action was decided by the ITSM pack's locked rules, then ran: one decision, one update.
            assert set(Step.objects.values_list("status", flat=True)) == {"executed"}
            decisions = DecisionLog.objects.all()
            assert decisions.count() == 6
            assert {(d.effect, d.deciding_rule, d.layer) for d in decisions} == {
                ("allow", "allow_ticket_updates", "vendor")
            }
            kinds = list(AuditEvent.objects.values_list("kind", flat=True))
            assert kinds.count("tool.executed") == 6 and kinds.count("bench.probe") == 2
    finally:
        drop_database(helpdesk)


ALL_APPS = [config.name for config in apps.get_app_configs()]


@pytest.mark.django_db(transaction=True, available_apps=ALL_APPS)
def test_bench_default_path_runs_real_worker_processes_and_the_http_api():
    # A transactional test starts from what is committed; an earlier one may have flushed the factory.
    call_command("seed_factory", verbosity=0)
    out = StringIO()
    call_command(
        "bench_actions",
        *("--actions", "6", "--concurrency", "2", "--tickets", "4", "--audit-samples", "3"),
        *("--prefix", "aproc", "--force"),
        stdout=out,
    )
    text = out.getvalue()
    lines = parsed(text)
    assert "pool=prefork workers=1 concurrency=2 warmup=4 api=http" in text
    assert (lines["actions"]["executed"], lines["actions"]["failed"]) == ("6", "0")
    assert lines["phases"]["errors"] == "0"
    assert "cleanup: dropped_schemas=1 helpdesk=dropped" in text
    assert not Client.objects.filter(slug__startswith="aproc-").exists()
    assert not database_exists(helpdesk_database_name("aproc-0001"))
