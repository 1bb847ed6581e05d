"""Browser tests: headless system Chromium against the live server, a real Celery worker on Redis.

Every test here is transactional (the live server and the worker thread have
their own database connections, so they only see committed rows) with
`available_apps` set to every installed app: the flush after each test then
uses `TRUNCATE … CASCADE`, which client-schema tables referencing public tables
need. pytest-django runs transactional tests after the others, so wiping the
session-wide `world` rows here harms nobody.
"""

import os
import threading
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections

from tests.redis_state import forget_counters

# Playwright's sync API runs an event loop in the test thread; the ORM is used beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

E2E_DIR = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps dialling out on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_PASSWORD = "triplane-demo"  # seed_demo's default


def _installed_app_names() -> list[str]:
    from django.apps import apps

    return [app_config.name for app_config in apps.get_app_configs()]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # tryfirst, and registered after pytest-django: runs before pytest-django sorts the
    # tests, so it sees these as transactional and orders them last.
    available_apps = _installed_app_names()
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.django_db(transaction=True, available_apps=available_apps))


# --- Browser ------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Drive the system Chromium (no `playwright install`), headless and offline.

    Keeps pytest-playwright's command-line options (--slowmo, --browser-channel).
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test` (it installs chromium) or apt-get install -y chromium"
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def screenshot(pytestconfig):
    """`screenshot(page, "vendor-home")` → <output dir>/screenshots/vendor-home.png (full page)."""
    directory = Path(pytestconfig.getoption("--output")).absolute() / "screenshots"

    def take(page, name: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def host_url(live_server):
    """`host_url("acme.localhost")` → http://acme.localhost:<port> on the live server.

    Chromium resolves every *.localhost name to loopback, so client hosts need no DNS.
    """
    port = live_server.url.rsplit(":", 1)[1]
    return lambda host: f"http://{host}:{port}"


# --- Demo data ----------------------------------------------------------------


def _client_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'client\_%'")
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def demo_data():
    """`seed_demo`: vendor admin, partners northwind/bluepeak, clients acme/globex/initech (ready);
    Globex with its helpdesk database (dropped before and after).

    Logins: admin@triplane.local (vendor), admin@acme.test (Acme's client admin), password
    `triplane-demo`. Afterwards every client schema created during the test is dropped
    (the rows go with the transactional flush), so the next test starts clean.
    """
    connection.set_schema_to_public()
    before = _client_schemas()
    _drop_helpdesk_databases()
    forget_counters()
    call_command("seed_demo", stdout=StringIO())
    mail.outbox.clear()  # the demo's own tasks mailed people; tests count their own mail
    yield DEMO_PASSWORD
    connection.set_schema_to_public()
    created = _client_schemas() - before - {"public", settings.TENANT_BASE_SCHEMA}
    with connection.cursor() as cursor:
        for schema in sorted(created):
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _drop_helpdesk_databases()


def _drop_helpdesk_databases() -> None:
    """The demo helpdesk databases seed_demo makes beside the test database (seed_runtime_demo)."""
    from apps.connectors.clientdb import dispose_engines
    from apps.runtime.management.commands.seed_runtime_demo import helpdesk_database_name

    dispose_engines()  # pooled connections to a database about to go
    name = helpdesk_database_name("globex")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Celery worker --------------------------------------------------------------


@dataclass(frozen=True)
class TaskRun:
    name: str
    args: tuple
    state: str
    result: object
    thread: str


@pytest.fixture
def celery_worker():
    """A real Celery worker (solo pool) in a thread of this process, on the test Redis broker.

    It uses the test database through its own connection. Yields the list of task runs
    it has finished (`TaskRun`), so a test can check the worker really ran its task.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from config.celery import app

    assert app.conf.broker_url == settings.CELERY_BROKER_URL, (
        "Celery is not configured from the test settings"
    )
    # The worker must not take over the root logger (pytest's log capture lives there).
    hijack = app.conf.worker_hijack_root_logger
    app.conf.worker_hijack_root_logger = False
    app.control.purge()  # nothing left over from an earlier run

    test_thread = threading.current_thread()
    runs: list[TaskRun] = []

    def record(sender=None, task=None, args=None, retval=None, state=None, **kwargs):
        runs.append(TaskRun(task.name, tuple(args or ()), state, retval, threading.current_thread().name))
        if threading.current_thread() is not test_thread:
            # Like Celery's Django fixup: no connection stays open in the worker thread
            # (an open one would block the flush and dropping the test database).
            connections.close_all()

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ):
            yield runs
    finally:
        task_postrun.disconnect(record)
        app.conf.worker_hijack_root_logger = hijack
        connection.set_schema_to_public()
