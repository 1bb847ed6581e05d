"""Exactly once under failure: a real Celery worker process is killed mid-task and another one finishes it.

The demo's helpdesk (PostgreSQL) ticket row is locked from the test, so the worker's `db.update`
blocks inside its transaction; the worker is killed with SIGKILL right there. Its transaction dies
with it (nothing committed), the task lock goes with its connection, and a second worker — handed
the task by the sweep beat runs every minute — resumes at the interrupted step. Every tool of the
workflow took effect exactly once.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.audit.services import audit_verify
from apps.deployments.models import Deployment
from apps.runtime import services
from apps.runtime.management.commands.seed_runtime_demo import _server_dsn, helpdesk_database_name
from apps.runtime.models import Step, Task
from apps.tenancy.models import Client

ROOT = Path(__file__).resolve().parents[2]


def _worker() -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "TEST_REDIS_URL": settings.REDIS_URL,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            "solo",
            "-l",
            "warning",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _kill(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def test_a_worker_killed_mid_update_is_resumed_and_each_tool_runs_once(demo_data):
    from config.celery import app

    app.control.purge()
    globex = Client.objects.get(slug="globex")
    with tenant_context(globex):
        deployment = Deployment.objects.get(status=Deployment.Status.DEPLOYED, variant__key="itsm")
    helpdesk = helpdesk_database_name("globex")
    with psycopg.connect(_server_dsn(helpdesk)) as db:
        (ticket_id,) = db.execute("SELECT tkt_id FROM hd_tkt WHERE tkt_ref = 'INC-1007'").fetchone()

    locker = psycopg.connect(_server_dsn(helpdesk))
    first = second = None
    try:
        locker.execute("SELECT 1 FROM hd_tkt WHERE tkt_id = %s FOR UPDATE", [ticket_id])
        first = _worker()
        task = services.task_create(
            client=globex,
            deployment=deployment,
            workflow="resolve_ticket",
            inputs={"ticket_id": str(ticket_id), "resolution": "Remounted the share read-write."},
            source=Task.Source.API,
            actor=None,
        )

        def resolve_step():
            with tenant_context(globex):
                return Step.objects.filter(task=task, key="resolve", status=Step.Status.EXECUTING).first()

        _wait(resolve_step, 60, "the worker to start the update")
        time.sleep(0.5)  # the UPDATE is now waiting on the row lock
        _kill(first)
        locker.rollback()
        with psycopg.connect(_server_dsn(helpdesk)) as db:
            assert db.execute("SELECT stat_cd FROM hd_tkt WHERE tkt_id = %s", [ticket_id]).fetchone() == (
                "open",
            )

        second = _worker()
        assert services.tasks_resume_stalled(client=globex, older_than=timedelta(0)) == 1

        def finished():
            with tenant_context(globex):
                current = Task.objects.get(pk=task.pk)
                return current if current.is_finished else None

        done = _wait(finished, 90, "the second worker to finish the task")
        with tenant_context(globex):
            assert done.status == Task.Status.COMPLETED, done.outcome
            resolve = Step.objects.get(task=task, key="resolve")
            assert resolve.status == Step.Status.EXECUTED and resolve.attempts == 2
            executed = AuditEvent.objects.filter(trace_id=task.trace_id, kind="tool.executed")
            assert executed.count() == Step.objects.filter(task=task).count() == 5
            assert audit_verify().ok
        with psycopg.connect(_server_dsn(helpdesk)) as db:
            assert db.execute("SELECT stat_cd FROM hd_tkt WHERE tkt_id = %s", [ticket_id]).fetchone() == (
                "resolved",
            )
            notes = db.execute(
                "SELECT count(*) FROM hd_tkt_note WHERE tkt_id = %s AND note_txt = %s",
                [ticket_id, "Remounted the share read-write."],
            ).fetchone()
            assert notes == (1,)
    finally:
        locker.close()
        for worker in (first, second):
            if worker is not None:
                _kill(worker)
        app.control.purge()
