"""Benchmark the governed runtime end to end: API → worker → gate → db.update on a PostgreSQL client database.

    python manage.py bench_actions --concurrency 16 --actions 2000

Setup (not timed): a bench partner and one bench client provisioned through the real path; its own
PostgreSQL helpdesk database (the demo's non-canonical schema, `--tickets` tickets) mapped with the
demo's field mapping; a deployment of the permanent bench variant — a child of the seeded ITSM agent
whose published version is the ITSM spec plus one workflow, `bench_update` (inputs ticket_id and
status; one step: db.update ticket {id, status}), pinned to the latest `itsm-baseline` policy pack,
whose locked vendor rules (`allow_ticket_updates` among them) decide every action; a client admin
with an API token.

Timed run: real Celery worker processes (`--pool prefork`, one worker with `--concurrency` child
processes; or `--pool threads`, `--workers` processes sharing `--concurrency` threads) and, with
`--api http` (default), a gunicorn server with the project's WSGI app; `--concurrency` client
threads POST /api/v1/tasks on the client's host with the token, closed loop: at most
`--concurrency` actions are in flight (a submitted task counts until it has finished), so latency
is what one action takes at that load rather than the length of a queue the bench filled itself.
`--warmup` actions (default twice the concurrency) go first and are left out of the figures: each worker
process imports, connects and compiles once, which is not what an action costs.
`--api inprocess` sends the same requests through Django's WSGI handler in this process.
`--inline` runs everything in this thread, one task at a time, with the worker's task body run
in this process (for tests: no subprocesses; its figures are not the benchmark's).

Figures are read from the database afterwards:

- latency per action: step.finished_at - task.created_at (the API created the task → the update
  ran and was recorded); throughput: executed actions / (last task finished - first request sent);
- gate: the engine's own evaluation time (DecisionLog.elapsed_us) and the whole decision as the
  gateway sees it (DecisionLog.created_at - step.created_at: context, rules, rate counters), and
  that decision's share of the latency;
- audit_append: `--audit-samples` appends timed in this process after the run (each one a
  transaction of its own, commit included) on the bench client's trail, which the run filled;
- audit_wait: from timestamps of the run — for the three appends a worker makes per action
  (decision, tool.executed, task.finished), the event's created_at minus the write just before
  it (one row update, then the wait for the client's append lock); their share of the latency.

Unless `--keep` is given, the client (schema, rows) and its helpdesk database are removed at the
end, also after a failure; the bench variant with its published versions (immutable) and the bench
user (no password; its memberships go with the clients) stay and are reused. A development worker
listening on the same Redis would take bench tasks too: stop it first. The `cpu:` line is the CPU
time the workers, the API server and this process used during the run (from /proc; PostgreSQL's
own time is not in it), so a figure can be told apart from a busy machine. Output lines are meant
to be parsed (figures illustrative):

    setup: seconds=2.1 tickets=500 pool=prefork workers=1 concurrency=16 warmup=32 api=http
    actions: executed=2000 failed=0 seconds=16.4 throughput=121.9/s
    latency: p50=98.2ms p95=141.0ms p99=180.3ms max=240.1ms
    phases: api_p50=21.0ms api_p99=60.2ms queue_p50=3.1ms queue_p95=9.0ms decide_p50=6.2ms \
tool_p50=2.9ms tool_p95=8.1ms api_errors=0
    gate: engine_p50=35us engine_p99=80us decide_p50=6.2ms decide_p95=12.0ms share=6.1%
    audit_append: samples=200 p50=0.90ms p99=2.40ms
    audit_wait: p50=4.1ms p95=20.2ms share=8.3%
    cpu: client=3.0s worker=20.1s api=9.0s per_action=16.0ms load_before=0.3
    targets: throughput>=100/s:met p95<=150ms:met audit_append_p99<=5ms:met
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import psycopg
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client as WsgiClient
from django.utils import timezone
from django_tenants.utils import tenant_context
from psycopg import sql
from rest_framework.authtoken.models import Token

from apps.accounts.models import ClientMembership, ClientRole, User
from apps.audit.models import AuditEvent
from apps.audit.services import audit_append_client
from apps.connectors import services as connector_services
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory import selectors as factory_selectors
from apps.factory import services as factory_services
from apps.factory.fixtures_data import ITSM_SPEC
from apps.factory.models import AgentTemplate, AgentVariant, AgentVersion
from apps.factory.spec import validate_spec
from apps.runtime.models import Step, Task
from apps.runtime.tasks import advance_task
from apps.tenancy import services as tenancy
from apps.tenancy.bench import BenchCommand, percentile, remove_bench_clients, to_public
from apps.tenancy.models import Client, Domain, Partner

from .seed_runtime_demo import MAPPING, _server_dsn, helpdesk_create, helpdesk_database_name

WORKFLOW = "bench_update"
BENCH_WORKFLOW = {
    "name": WORKFLOW,
    "description": "Benchmark: set one ticket's status.",
    "inputs": ["ticket_id", "status"],
    "steps": [
        {
            "id": "update",
            "tool": "db.update",
            "entity": "ticket",
            "params": {"id": "{{ inputs.ticket_id }}", "status": "{{ inputs.status }}"},
            "when": None,
            "on_failure": "halt",
        }
    ],
}
PARENT_VARIANT = "itsm"
POLICY_PACK = "itsm-baseline"
STATUSES = ["open", "in_progress", "waiting", "resolved"]
TARGETS = {"throughput": 100.0, "p95_ms": 150.0, "audit_p99_ms": 5.0}
POLL_SECONDS = 0.01
PROBE_KIND = "bench.probe"


def bench_spec() -> dict:
    """The ITSM spec with the benchmark's one-step workflow added, validated."""
    spec = copy.deepcopy(ITSM_SPEC)
    spec["workflows"] = [*spec.get("workflows", []), BENCH_WORKFLOW]
    spec["policy_pack"] = POLICY_PACK
    return validate_spec(spec)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


@dataclass
class Submissions:
    """What the client threads saw in one phase (warm-up or run): tasks created, request times, refusals."""

    phase: str = "run"
    task_ids: list[int] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, task_id: int, elapsed_ms: float) -> None:
        with self.lock:
            self.task_ids.append(task_id)
            self.request_ms.append(elapsed_ms)

    def failed(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


@dataclass
class Bench:
    """What the setup made, for the run and the cleanup."""

    client: Client
    deployment: Deployment
    user: User
    token: str
    ticket_ids: list[int]
    host: str


class Command(BenchCommand):
    help = (
        "Run N governed actions (API → worker → gate → db.update on a PostgreSQL helpdesk) on a bench client "
        "and print throughput, latency percentiles and the gate's and the audit trail's share. Creates a "
        "real schema and database: refuses to run with DEBUG off unless --force."
    )

    default_prefix = "abench"
    keep_help = "Keep the bench client and its helpdesk database (default: remove them)."

    def add_arguments(self, parser):
        parser.add_argument("--actions", type=int, default=2000, help="How many actions (default 2000).")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=16,
            help="Client threads, actions in flight and worker slots (default 16).",
        )
        parser.add_argument(
            "--pool",
            choices=["prefork", "threads"],
            default="prefork",
            help="Celery worker pool (default prefork: one worker, --concurrency child processes).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="Worker processes sharing --concurrency (default: 1 for prefork, 2 for threads).",
        )
        parser.add_argument(
            "--api",
            choices=["http", "inprocess"],
            default="http",
            help="http: a gunicorn server (default); inprocess: Django's WSGI handler in this process.",
        )
        parser.add_argument("--api-workers", type=int, default=2, help="gunicorn workers (default 2).")
        parser.add_argument(
            "--warmup",
            type=int,
            default=None,
            help="Actions run before the timed run and left out of it (default: 2 × --concurrency).",
        )
        parser.add_argument("--tickets", type=int, default=500, help="Tickets in the helpdesk (default 500).")
        parser.add_argument(
            "--timeout", type=int, default=900, help="Seconds the timed run may take (default 900)."
        )
        parser.add_argument(
            "--audit-samples",
            type=int,
            default=200,
            help="Audit appends timed after the run (default 200).",
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="No subprocesses: requests and task bodies run in this thread, one at a time (tests).",
        )
        parser.add_argument("--keep", action="store_true", help=self.keep_help)
        parser.add_argument(
            "--prefix",
            default=self.default_prefix,
            help=f"Slug of the bench partner and prefix of the client slug (default {self.default_prefix}).",
        )
        parser.add_argument("--force", action="store_true", help="Run even though DEBUG is off.")

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        # One line per request from httpx would drown the figures.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        prefix = self.checked_prefix(clients=1, prefix=options["prefix"], force=options["force"])
        for name in ("actions", "concurrency", "tickets", "api_workers", "timeout"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["warmup"] is None:
            options["warmup"] = 0 if options["inline"] else 2 * options["concurrency"]
        if min(options["audit_samples"], options["workers"], options["warmup"]) < 0:
            raise CommandError("--audit-samples, --workers and --warmup cannot be negative.")
        if options["inline"]:
            options["api"] = "inprocess"
        if not options["workers"]:
            options["workers"] = 1 if options["pool"] == "prefork" else 2

        to_public()
        began = time.perf_counter()
        version = self._bench_version(prefix)
        partner, created_partner = self._bench_partner(prefix)
        created: list[int] = []
        bench: Bench | None = None
        helpdesk: str | None = None
        failure: str | None = None
        try:
            client = self._client(partner, prefix, created)
            helpdesk = helpdesk_database_name(client.slug)
            bench = self._setup(client, version, options["tickets"])
            mode = "inline" if options["inline"] else f"pool={options['pool']} workers={options['workers']}"
            concurrency = 1 if options["inline"] else options["concurrency"]
            self.stdout.write(
                f"setup: seconds={time.perf_counter() - began:.1f} tickets={len(bench.ticket_ids)} {mode} "
                f"concurrency={concurrency} warmup={options['warmup']} "
                f"api={options['api']}"
            )
            failure = self._run(bench, options)
        finally:
            to_public()
            if options["keep"]:
                self.stdout.write(
                    f"kept: client={bench.client.slug if bench else '-'} helpdesk={helpdesk or '-'} "
                    f"partner={partner.slug} variant={version.variant.key}"
                )
            else:
                self._cleanup(partner, created, helpdesk, drop_partner=created_partner)
        if failure:
            raise CommandError(failure)

    # --- setup (not timed) ---------------------------------------------------------------------

    def _bench_partner(self, prefix: str) -> tuple[Partner, bool]:
        partner = Partner.objects.filter(slug=prefix).first()
        if partner is not None:
            if not partner.is_active:
                raise CommandError(f"Partner {prefix!r} exists but is inactive.")
            return partner, False
        partner = tenancy.partner_create(
            name=f"Benchmark ({prefix})", slug=prefix, contact_email=f"{prefix}@bench.invalid", actor=None
        )
        return partner, True

    def _bench_version(self, prefix: str) -> AgentVersion:
        """The permanent bench variant's latest published version, publishing a new one when the ITSM
        spec or the pack's latest version changed since (versions are immutable, never deleted)."""
        parent = AgentVariant.objects.filter(key=PARENT_VARIANT).first()
        parent_version = factory_selectors.latest_published(parent) if parent else None
        pack = factory_selectors.policy_pack_get(POLICY_PACK)
        pack_version = factory_selectors.policy_pack_latest(pack) if pack else None
        if parent is None or parent_version is None or pack_version is None:
            raise CommandError(
                f"The bench builds on the seeded '{PARENT_VARIANT}' agent and the '{POLICY_PACK}' policy "
                "pack: run `manage.py seed_factory` first."
            )
        spec = bench_spec()
        key = f"{prefix}-itsm"
        variant = AgentVariant.objects.filter(key=key).first()
        if variant is None:
            template = AgentTemplate.objects.get(pk=parent.template_id)
            variant = factory_services.variant_create(
                template=template,
                key=key,
                name=f"Benchmark ITSM agent ({prefix})",
                domain=parent.domain,
                description="Benchmark agent of bench_actions: the ITSM spec plus one db.update workflow.",
                spec=spec,
                parent=parent,
                base_version=parent_version,
                changelog="Benchmark agent.",
                actor=None,
            )
        latest = factory_selectors.latest_published(variant)
        if latest is None or latest.spec != spec or latest.policy_pack_version_id != pack_version.pk:
            latest = factory_services.version_save_and_publish(
                variant=variant,
                spec=spec,
                version=factory_services.next_minor(latest),
                changelog="Benchmark agent: the current ITSM spec and policy pack.",
                actor=None,
            )
        return latest

    def _client(self, partner: Partner, prefix: str, created: list[int]) -> Client:
        # Continue after clients an earlier `--keep` run left behind, so slugs never collide.
        number = Client.objects.filter(slug__startswith=f"{prefix}-").count() + 1
        while Client.objects.filter(slug=f"{prefix}-{number:04d}").exists():
            number += 1
        slug = f"{prefix}-{number:04d}"
        client = tenancy.client_create(
            partner=partner, name=f"Runtime bench {slug}", slug=slug, actor=None, schedule=False
        )
        created.append(client.pk)
        client = tenancy.client_provision(client_id=client.pk)
        to_public()
        if client.status != Client.Status.READY:
            raise CommandError(f"Client {slug} is {client.status}: {client.provisioning_error}")
        return client

    def _runner(self, client: Client) -> User:
        """The permanent bench user (no password, no vendor role), made a client admin of the bench client.

        Kept between runs like the bench variant: a user cannot be deleted from the public schema while
        client schemas may reference it. Its membership goes with the client.
        """
        email = f"runner@{client.partner.slug}.bench.invalid"
        user = User.objects.filter(email=email).first() or User.objects.create_user(
            email, full_name="Bench runner"
        )
        ClientMembership.objects.create(user=user, client=client, role=ClientRole.CLIENT_ADMIN)
        return user

    def _setup(self, client: Client, version: AgentVersion, tickets: int) -> Bench:
        domain = f"{client.slug}.test"
        client.own_domains = [domain]
        client.save(update_fields=["own_domains"])
        user = self._runner(client)
        token, _ = Token.objects.get_or_create(user=user)

        name = helpdesk_database_name(client.slug)
        _drop_database(name)  # left over from a run that died before its cleanup
        helpdesk_create(slug=client.slug, domain=domain)
        ticket_ids = _fill_tickets(name, tickets)

        deployment = deployment_services.deployment_create(
            client=client, variant=version.variant, version=version, name="Bench agent", actor=user
        )
        deployment_services.deployment_submit(client=client, deployment=deployment, actor=None)
        deployment_services.deployment_approve(client=client, deployment=deployment, actor=user)
        deployment = deployment_services.deployment_deploy(client=client, deployment=deployment, actor=None)
        db = settings.DATABASES["default"]
        source = connector_services.data_source_create(
            client=client,
            name="Helpdesk (PostgreSQL)",
            key="helpdesk",
            engine="postgresql",
            host=db.get("HOST") or "127.0.0.1",
            port=int(db.get("PORT") or 5432),
            database=name,
            username=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or "",
            actor=user,
        )
        connector_services.field_mapping_save(
            client=client, deployment=deployment, data_source=source, yaml_text=MAPPING, actor=user
        )
        to_public()
        host = Domain.objects.get(tenant=client, is_primary=True).domain
        return Bench(client, deployment, user, token.key, ticket_ids, host)

    # --- the timed run ------------------------------------------------------------------------

    def _run(self, bench: Bench, options: dict) -> str | None:
        """Start the processes, submit every action, wait for them, stop the processes, report.

        Returns why the run failed (after its figures are printed), or None.
        """
        processes: list[_Process] = []
        submissions = Submissions()
        cpu = _CpuMeter()
        try:
            if options["inline"]:
                began = timezone.now()
                cpu.start(processes)
                self._submit_inline(bench, options["actions"], submissions)
                cpu.stop(processes)
            else:
                processes = self._start_workers(options)
                base_url = None
                if options["api"] == "http":
                    server, base_url = self._start_api(options["api_workers"], bench.host)
                    processes.append(server)
                _wait_ready(processes, bench.host, base_url, timeout=90)
                if options["warmup"]:
                    # Every worker process imports, connects and compiles once; not what is measured.
                    warmup = Submissions(phase="warmup")
                    self._submit_threads(bench, options, base_url, warmup, options["warmup"])
                    if warmup.errors:
                        raise CommandError(f"The warm-up failed: {'; '.join(warmup.errors[:3])}")
                began = timezone.now()
                cpu.start(processes)
                self._submit_threads(bench, options, base_url, submissions, options["actions"])
                cpu.stop(processes)
        finally:
            for process in processes:
                process.stop()
        to_public()
        figures = _figures(bench.client, submissions.task_ids, began)
        audit = _audit_probe(bench.client, options["audit_samples"])
        self._report(figures, submissions, audit, cpu.line(figures.executed))
        executed, expected = figures.executed, options["actions"]
        if executed == expected:
            return None
        details = "; ".join([*submissions.errors[:3], *figures.problems[:3]]) or "no details"
        return f"Only {executed} of {expected} actions were executed: {details}"

    def _submit_inline(self, bench: Bench, actions: int, submissions: Submissions) -> None:
        """One request at a time through the WSGI handler; each task's worker body run in this thread."""
        api = _InProcessApi(bench)
        conf = advance_task.app.conf
        eager = conf.task_always_eager
        # What the API enqueues runs here when its transaction commits, instead of waiting in Redis for a
        # worker that is not there (inside a test's transaction nothing commits: the loop below runs them).
        conf.task_always_eager = True
        try:
            for index in range(actions):
                api.submit(index, bench, submissions)
        finally:
            conf.task_always_eager = eager
        to_public()
        schema = bench.client.schema_name
        with tenant_context(bench.client):
            unfinished = list(
                Task.objects.filter(pk__in=submissions.task_ids)
                .exclude(status__in=Task.FINISHED)
                .values_list("pk", flat=True)
            )
        for task_id in unfinished:
            # The worker's task body, in this process; the header names the schema it runs in.
            advance_task.apply(args=[task_id], headers={"_schema_name": schema})
            to_public()

    def _submit_threads(
        self, bench: Bench, options: dict, base_url: str | None, submissions: Submissions, actions: int
    ) -> None:
        """`--concurrency` client threads; a submitted action holds its slot until its task finished."""
        concurrency = options["concurrency"]
        deadline = time.monotonic() + options["timeout"]
        slots = threading.BoundedSemaphore(concurrency)
        numbers = itertools.count()
        numbers_lock = threading.Lock()
        done = threading.Event()
        timed_out = threading.Event()

        def client_thread() -> None:
            api = _HttpApi(base_url, bench) if base_url else _InProcessApi(bench)
            try:
                while True:
                    with numbers_lock:
                        index = next(numbers)
                    if index >= actions:
                        return
                    if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                        timed_out.set()
                        return
                    if not api.submit(index, bench, submissions):
                        slots.release()
            finally:
                api.close()

        def monitor() -> None:
            # One count every POLL_SECONDS frees the slots of tasks that finished since. Plain SQL on one
            # cursor: the load generator should take as little of the machine as it can.
            seen = baseline
            count = f"SELECT count(*) FROM {Task._meta.db_table} WHERE status = ANY(%s)"  # noqa: S608
            try:
                with tenant_context(bench.client), connection.cursor() as cursor:
                    while not done.is_set():
                        cursor.execute(count, [list(Task.FINISHED)])
                        (finished,) = cursor.fetchone()
                        for _ in range(finished - seen):
                            with contextlib.suppress(ValueError):
                                slots.release()
                        seen = finished
                        if time.monotonic() > deadline:
                            timed_out.set()
                            return
                        time.sleep(POLL_SECONDS)
            finally:
                connection.close()

        with tenant_context(bench.client):
            # Tasks of the warm-up finished before this phase began.
            baseline = Task.objects.filter(status__in=Task.FINISHED).count()
        watcher = threading.Thread(target=monitor, name="bench-monitor", daemon=True)
        watcher.start()
        clients = [
            threading.Thread(target=client_thread, name=f"bench-client-{n}", daemon=True)
            for n in range(concurrency)
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(max(0.0, deadline - time.monotonic()) + 30)
        with tenant_context(bench.client):
            while time.monotonic() < deadline and not timed_out.is_set():
                unfinished = (
                    Task.objects.filter(pk__in=submissions.task_ids).exclude(status__in=Task.FINISHED).count()
                )
                if not unfinished:
                    break
                time.sleep(0.1)
        done.set()
        watcher.join(5)
        if timed_out.is_set() or time.monotonic() >= deadline:
            submissions.failed(f"the run did not finish within --timeout {options['timeout']} s")

    def _start_workers(self, options: dict) -> list[_Process]:
        count, pool = options["workers"], options["pool"]
        per_worker = max(1, -(-options["concurrency"] // count))
        processes = []
        for number in range(count):
            node = f"{options['prefix']}{number}-{os.getpid()}@%h"
            command = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                pool,
                "-c",
                str(per_worker),
                "-l",
                "warning",
                "-n",
                node,
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ]
            processes.append(_Process.start(f"worker {number}", command, kind="worker", node=node))
        return processes

    def _start_api(self, workers: int, host: str) -> tuple[_Process, str]:
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        return _Process.start("api", command, kind="api"), f"http://127.0.0.1:{port}"

    # --- report ---------------------------------------------------------------------------------

    def _report(self, figures: Figures, submissions: Submissions, audit: list[float], cpu: str) -> None:
        f, api = figures, submissions.request_ms

        def p(values: list[float], pct: float) -> float:
            return percentile(values, pct)

        self.stdout.write(
            f"actions: executed={f.executed} failed={f.failed} seconds={f.seconds:.1f} "
            f"throughput={f.throughput:.1f}/s"
        )
        self.stdout.write(
            f"latency: p50={p(f.latency, 50):.1f}ms p95={p(f.latency, 95):.1f}ms "
            f"p99={p(f.latency, 99):.1f}ms max={max(f.latency, default=0):.1f}ms"
        )
        self.stdout.write(
            f"phases: api_p50={p(api, 50):.1f}ms api_p99={p(api, 99):.1f}ms "
            f"queue_p50={p(f.queue, 50):.1f}ms queue_p95={p(f.queue, 95):.1f}ms "
            f"decide_p50={p(f.decide, 50):.1f}ms "
            f"tool_p50={p(f.tool, 50):.1f}ms tool_p95={p(f.tool, 95):.1f}ms "
            f"api_errors={len(submissions.errors)}"
        )
        self.stdout.write(
            f"gate: engine_p50={p(f.engine_us, 50):.0f}us engine_p99={p(f.engine_us, 99):.0f}us "
            f"decide_p50={p(f.decide, 50):.1f}ms decide_p95={p(f.decide, 95):.1f}ms "
            f"share={_share(f.decide, f.latency):.1f}%"
        )
        self.stdout.write(
            f"audit_append: samples={len(audit)} p50={p(audit, 50):.2f}ms p99={p(audit, 99):.2f}ms"
        )
        self.stdout.write(
            f"audit_wait: p50={p(f.audit_wait, 50):.1f}ms p95={p(f.audit_wait, 95):.1f}ms "
            f"share={_share(f.audit_wait, f.latency):.1f}%"
        )
        self.stdout.write(cpu)
        met = {
            "throughput>=100/s": f.throughput >= TARGETS["throughput"],
            "p95<=150ms": bool(f.latency) and p(f.latency, 95) <= TARGETS["p95_ms"],
            "audit_append_p99<=5ms": bool(audit) and p(audit, 99) <= TARGETS["audit_p99_ms"],
        }
        self.stdout.write(
            "targets: " + " ".join(f"{name}:{'met' if ok else 'missed'}" for name, ok in met.items())
        )

    # --- cleanup ------------------------------------------------------------------------------

    def _cleanup(
        self,
        partner: Partner,
        client_ids: list[int],
        helpdesk: str | None,
        *,
        drop_partner: bool,
    ) -> None:
        """Remove what this run made; the bench variant and user, and the audit trail of removals stay."""
        try:
            dropped = remove_bench_clients(client_ids, partner=partner if drop_partner else None)
        finally:
            if helpdesk:
                _drop_database(helpdesk)
        self.stdout.write(f"cleanup: dropped_schemas={dropped} helpdesk={'dropped' if helpdesk else '-'}")


# --- API clients ----------------------------------------------------------------------------------


def _task_request(index: int, bench: Bench) -> dict:
    ticket = bench.ticket_ids[index % len(bench.ticket_ids)]
    status = STATUSES[(index // len(bench.ticket_ids) + index) % len(STATUSES)]
    return {
        "deployment": bench.deployment.pk,
        "workflow": WORKFLOW,
        "inputs": {"ticket_id": ticket, "status": status},
    }


class _HttpApi:
    """POST /api/v1/tasks over HTTP on the client's host, as an API caller with a token would."""

    def __init__(self, base_url: str, bench: Bench):
        self.http = httpx.Client(
            base_url=base_url,
            timeout=60,
            headers={
                "Host": bench.host,
                "Authorization": f"Token {bench.token}",
                # The server sits behind TLS termination in production; with DEBUG off it insists on https.
                "X-Forwarded-Proto": "https",
            },
        )

    def submit(self, index: int, bench: Bench, submissions: Submissions) -> bool:
        started = time.perf_counter()
        try:
            response = self.http.post(
                "/api/v1/tasks",
                json=_task_request(index, bench),
                headers={"Idempotency-Key": f"bench-{submissions.phase}-{index}"},
            )
        except httpx.HTTPError as exc:
            submissions.failed(f"request {index}: {exc!r}")
            return False
        if response.status_code != 201:
            submissions.failed(f"request {index}: HTTP {response.status_code} {response.text[:200]}")
            return False
        submissions.ok(response.json()["id"], (time.perf_counter() - started) * 1000)
        return True

    def close(self) -> None:
        self.http.close()


class _InProcessApi:
    """The same request through Django's WSGI handler in this process: no socket, same middleware, views."""

    def __init__(self, bench: Bench):
        self.wsgi = WsgiClient(
            HTTP_HOST=bench.host,
            HTTP_AUTHORIZATION=f"Token {bench.token}",
            HTTP_X_FORWARDED_PROTO="https",
            raise_request_exception=False,
        )

    def submit(self, index: int, bench: Bench, submissions: Submissions) -> bool:
        started = time.perf_counter()
        response = self.wsgi.post(
            "/api/v1/tasks",
            data=json.dumps(_task_request(index, bench)),
            content_type="application/json",
            headers={"Idempotency-Key": f"bench-{submissions.phase}-{index}"},
        )
        if response.status_code != 201:
            submissions.failed(f"request {index}: HTTP {response.status_code} {response.content[:200]!r}")
            return False
        submissions.ok(response.json()["id"], (time.perf_counter() - started) * 1000)
        return True

    def close(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            connection.close()


# --- subprocesses ---------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    """This process's environment, pointed at exactly the database and Redis this command uses."""
    db = settings.DATABASES["default"]
    user = urllib.parse.quote(str(db.get("USER") or "postgres"))
    password = db.get("PASSWORD") or ""
    credentials = f"{user}:{urllib.parse.quote(str(password))}" if password else user
    url = f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        REDIS_URL=settings.CELERY_BROKER_URL,
        TEST_REDIS_URL=settings.CELERY_BROKER_URL,
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE") or "config.settings.base",
    )
    return env


@dataclass
class _Process:
    """A worker or API server started by this command (in its own process group), with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: str
    kind: str
    node: str = ""

    @classmethod
    def start(cls, name: str, command: list[str], *, kind: str, node: str = "") -> _Process:
        log = tempfile.NamedTemporaryFile(prefix=f"bench_actions_{kind}_", suffix=".log", delete=False)  # noqa: SIM115
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            cwd=settings.BASE_DIR,
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return cls(name, popen, log.name, kind, node.replace("%h", socket.gethostname()))

    def log_tail(self, lines: int = 15) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def stop(self) -> None:
        """Warm shutdown of the process group this command started; killed if it takes too long."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)


def _session_cpu_seconds(session: int) -> float | None:
    """CPU seconds used by the processes of one session (and their children that exited), from /proc."""
    if not os.path.isdir("/proc"):
        return None
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, session, …, utime, stime, cutime, cstime.
        if len(fields) > 14 and int(fields[3]) == session:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPU time of the workers, the API server and this process over the timed run: what an action costs
    in Python whatever else the machine runs (PostgreSQL's own time is not in it)."""

    def __init__(self) -> None:
        self.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        self.used: dict[str, float | None] = {}

    def _sample(self, processes: list[_Process]) -> dict[str, float | None]:
        sample: dict[str, float | None] = {"client": time.process_time()}
        for process in processes:
            used = _session_cpu_seconds(process.popen.pid)
            previous = sample.get(process.kind, 0.0)
            sample[process.kind] = None if used is None or previous is None else previous + used
        return sample

    def start(self, processes: list[_Process]) -> None:
        self.used = self._sample(processes)

    def stop(self, processes: list[_Process]) -> None:
        end = self._sample(processes)
        self.used = {
            kind: None if value is None or self.used.get(kind) is None else value - (self.used[kind] or 0.0)
            for kind, value in end.items()
        }

    def line(self, executed: int) -> str:
        parts = [f"{kind}={value:.1f}s" for kind, value in self.used.items() if value is not None]
        total = sum(value for value in self.used.values() if value is not None)
        per_action = 1000 * total / executed if executed else 0.0
        return f"cpu: {' '.join(parts)} per_action={per_action:.1f}ms load_before={self.load:.1f}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(processes: list[_Process], host: str, base_url: str | None, *, timeout: float) -> None:
    """Until every worker answers a ping and the API server answers a request."""
    deadline = time.monotonic() + timeout
    waiting = {p.node for p in processes if p.kind == "worker"}
    api_ready = base_url is None
    while waiting or not api_ready:
        for process in processes:
            if process.popen.poll() is not None:
                raise CommandError(f"The {process.name} process exited at start:\n{process.log_tail()}")
        if waiting:
            replies = advance_task.app.control.ping(destination=sorted(waiting), timeout=0.5) or []
            for reply in replies:
                waiting -= set(reply)
        if not api_ready and base_url:
            with contextlib.suppress(httpx.HTTPError):
                api_ready = (
                    httpx.get(f"{base_url}/api/v1/me", headers={"Host": host}, timeout=2).status_code < 500
                )
        if time.monotonic() > deadline:
            raise CommandError(f"Not ready after {timeout:.0f} s: {', '.join(sorted(waiting)) or 'the API'}.")
        time.sleep(0.2)


# --- helpdesk database ----------------------------------------------------------------------------


def _drop_database(name: str) -> None:
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as admin:
        # FORCE: workers' connection pools may still hold connections to it.
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _fill_tickets(name: str, count: int) -> list[int]:
    """Top the demo's helpdesk up to `count` tickets; returns their ids."""
    with psycopg.connect(_server_dsn(name)) as db:
        (existing,) = db.execute("SELECT count(*) FROM hd_tkt").fetchone() or (0,)
        now = timezone.now()
        rows = [
            (f"BEN-{n:05d}", f"Benchmark ticket {n}", "open", "P3", "bench", 1, now, now)
            for n in range(existing + 1, count + 1)
        ]
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO hd_tkt (tkt_ref, subj, stat_cd, prio_cd, cat_cd, req_usr_id, crt_ts, upd_ts)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        ids = [row[0] for row in db.execute("SELECT tkt_id FROM hd_tkt ORDER BY tkt_id LIMIT %s", [count])]
    return ids


# --- figures --------------------------------------------------------------------------------------


@dataclass
class Figures:
    executed: int = 0
    failed: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    latency: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    decide: list[float] = field(default_factory=list)
    engine_us: list[float] = field(default_factory=list)
    tool: list[float] = field(default_factory=list)
    audit_wait: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _share(part: list[float], whole: list[float]) -> float:
    total = sum(whole)
    return 100 * sum(part) / total if total else 0.0


def _figures(client: Client, task_ids: list[int], began: datetime) -> Figures:
    """Read the run's tasks, steps, decisions and audit events back and compute the figures."""
    figures = Figures()
    with tenant_context(client):
        tasks = {task.pk: task for task in Task.objects.filter(pk__in=task_ids)}
        steps = list(Step.objects.filter(task_id__in=task_ids).select_related("decision"))
        events = {
            (event.trace_id, event.kind): event.created_at
            for event in AuditEvent.objects.filter(
                trace_id__in=[t.trace_id for t in tasks.values()],
                kind__in=["decision", "tool.executed", "task.finished"],
            ).only("trace_id", "kind", "created_at")
        }
    to_public()
    for task in tasks.values():
        if task.status != Task.Status.COMPLETED:
            figures.problems.append(f"task {task.pk} {task.status}: {task.outcome[:150]}")
    last = max((t.finished_at for t in tasks.values() if t.finished_at), default=None)
    for step in steps:
        task = tasks[step.task_id]
        if step.status != Step.Status.EXECUTED:
            continue
        figures.executed += 1
        figures.latency.append(_ms(task.created_at, step.finished_at) or 0.0)
        figures.queue.append(_ms(task.created_at, task.started_at) or 0.0)
        figures.tool.append(step.duration_ms or 0.0)
        if step.decision is not None:
            figures.decide.append(_ms(step.created_at, step.decision.created_at) or 0.0)
            figures.engine_us.append(step.decision.elapsed_us)
        waits = [
            _ms(step.decision.created_at if step.decision else None, events.get((task.trace_id, "decision"))),
            _ms(step.finished_at, events.get((task.trace_id, "tool.executed"))),
            _ms(task.finished_at, events.get((task.trace_id, "task.finished"))),
        ]
        figures.audit_wait.append(sum(w for w in waits if w is not None))
    figures.failed = len(task_ids) - figures.executed
    if last is not None:
        figures.seconds = max((last - began).total_seconds(), 1e-6)
        figures.throughput = figures.executed / figures.seconds
    return figures


def _audit_probe(client: Client, samples: int) -> list[float]:
    """Time `samples` appends to the client's trail in this process, each in its own transaction."""
    timings = []
    for n in range(samples):
        started = time.perf_counter()
        audit_append_client(
            client=client, kind=PROBE_KIND, actor="bench", subject="Audit append probe", data={"n": n}
        )
        timings.append((time.perf_counter() - started) * 1000)
    to_public()
    return timings
