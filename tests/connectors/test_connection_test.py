"""`data_source_test` against real servers and loopback stand-ins: each failure is named (unreachable,
authentication failed, permission denied, database does not exist, timeout), never with a stack trace or
the password, and the outcome is kept on the data source."""

import os
from collections.abc import Iterator

import psycopg
import pytest
from django_tenants.utils import tenant_context
from psycopg import sql

from apps.connectors import clientdb, services
from apps.connectors.models import DataSource
from tests.connectors.conftest import (
    MYSQL_HOST,
    MYSQL_PORT,
    FakePostgresRefusingPassword,
    SilentServer,
    free_port,
    make_sqlite,
    mysql_admin,
    pg_dsn,
    reset_postgresql,
    server_db,
)
from tests.connectors.test_services import ITSM_MAPPING
from tests.matrix.base import a_deployment

PASSWORD = "Sup3r-secret-pw"
NO_TRACE = ("Traceback", 'File "', "sqlalche.me", "psycopg.", "pymysql.", "Error(")


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    clientdb.dispose_engines()


def create(world, engine: str, **values) -> DataSource:
    defaults = {"name": f"Test {engine}", "key": f"test-{engine}", "engine": engine}
    return services.data_source_create(client=world.client_a, actor=None, **{**defaults, **values})


def check(world, source, *expected: str, ok: bool = False) -> str:
    result, message = services.data_source_test(client=world.client_a, source=source)
    assert result is ok, message
    for fragment in expected:
        assert fragment in message, message
    assert PASSWORD not in message
    assert not any(marker in message for marker in NO_TRACE), message
    with tenant_context(world.client_a):
        stored = DataSource.objects.get(pk=source.pk)
    assert stored.last_test_status == ("ok" if ok else "failed")
    assert stored.last_test_message == message
    assert stored.last_tested_at is not None
    return message


def pg(**values) -> dict:
    db = server_db()
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "username": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
        **values,
    }


def my(**values) -> dict:
    return {"host": MYSQL_HOST, "port": MYSQL_PORT, "username": "root", "password": "", **values}


# --- PostgreSQL -----------------------------------------------------------------------------------------


def test_postgresql_ok_reads_every_mapped_table(world, pg_client_db):
    reset_postgresql(pg_client_db)
    source = create(world, "postgresql", **pg(database=pg_client_db))
    check(world, source, "Connected to PostgreSQL", f"/{pg_client_db}", ok=True)
    services.field_mapping_save(
        client=world.client_a,
        deployment=a_deployment(world),
        data_source=source,
        yaml_text=ITSM_MAPPING,
        actor=None,
    )
    check(world, source, "The mapped tables can be read (2 entities of Matrix agent)", ok=True)


def test_postgresql_unreachable_port(world):
    port = free_port()
    source = create(world, "postgresql", **pg(port=port, database="anything", password=PASSWORD))
    check(world, source, f"Cannot reach the database server at 127.0.0.1:{port}", "refused", "Check the host")


def test_postgresql_unknown_host(world):
    source = create(world, "postgresql", **pg(host="no-such-host.invalid", database="anything"))
    check(world, source, "Cannot reach the database server at no-such-host.invalid")


def test_postgresql_wrong_password(world):
    server = FakePostgresRefusingPassword()
    try:
        source = create(
            world,
            "postgresql",
            host="127.0.0.1",
            port=server.port,
            database="helpdesk",
            username="helpdesk",
            password=PASSWORD,
        )
        check(world, source, "Authentication failed", "“helpdesk”", "password authentication failed")
        assert server.passwords == [PASSWORD.encode()]  # the password did go to the server, and only there
    finally:
        server.close()


def test_postgresql_unknown_role_is_an_authentication_failure(world):
    source = create(world, "postgresql", **pg(username="nobody_here_h2", database="postgres"))
    check(world, source, "Authentication failed", "“nobody_here_h2”")


def test_postgresql_unknown_database(world):
    source = create(world, "postgresql", **pg(database="no_such_database_h2"))
    check(world, source, "The database “no_such_database_h2” does not exist on 127.0.0.1:")


@pytest.fixture
def pg_reader_without_select(pg_client_db) -> Iterator[str]:
    """A login role that may connect to the client database but not read its tables."""
    role = f"{pg_client_db}_noselect"
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role
    clientdb.dispose_engines()
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}").format(
                sql.Literal(role)
            )
        )
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_postgresql_permission_denied_on_a_mapped_table(world, pg_client_db, pg_reader_without_select):
    reset_postgresql(pg_client_db)
    source = create(world, "postgresql", **pg(database=pg_client_db, username=pg_reader_without_select))
    check(world, source, "Connected", ok=True)  # connecting is allowed
    services.field_mapping_save(
        client=world.client_a,
        deployment=a_deployment(world),
        data_source=source,
        yaml_text=ITSM_MAPPING,
        actor=None,
    )
    check(
        world,
        source,
        f"Permission denied for user “{pg_reader_without_select}”",
        "permission denied for table",
    )


def test_postgresql_timeout(world):
    server = SilentServer()
    try:
        source = create(
            world,
            "postgresql",
            host="127.0.0.1",
            port=server.port,
            database="x",
            options={"connect_timeout": 2},
        )
        check(world, source, f"at 127.0.0.1:{server.port} did not answer within 2 seconds (timeout)")
    finally:
        server.close()


def test_a_missing_environment_variable_is_named(world, pg_client_db, monkeypatch):
    monkeypatch.delenv("H2_HELPDESK_PASSWORD", raising=False)
    source = create(world, "postgresql", **pg(database=pg_client_db, secret_env_var="H2_HELPDESK_PASSWORD"))
    check(world, source, "environment variable H2_HELPDESK_PASSWORD, which this worker does not have")
    monkeypatch.setenv("H2_HELPDESK_PASSWORD", "whatever-trust-ignores-it")
    check(world, source, "Connected to PostgreSQL", ok=True)
    assert os.environ["H2_HELPDESK_PASSWORD"]


# --- MariaDB --------------------------------------------------------------------------------------------


def test_mysql_ok(world, mysql_client_db):
    source = create(world, "mysql", **my(database=mysql_client_db))
    check(world, source, "Connected to MySQL/MariaDB", ok=True)


def test_mysql_wrong_password(world, mysql_client_db):
    source = create(world, "mysql", **my(database=mysql_client_db, password=PASSWORD))
    check(world, source, "Authentication failed", "refused user “root”", "Access denied")


def test_mysql_unreachable_port(world):
    port = free_port()
    source = create(world, "mysql", **my(port=port, database="x"))
    check(world, source, f"Cannot reach the database server at 127.0.0.1:{port}", "Connection refused")


def test_mysql_unknown_database(world):
    source = create(world, "mysql", **my(database="no_such_database_h2"))
    check(world, source, "The database “no_such_database_h2” does not exist on 127.0.0.1:")


@pytest.fixture
def mysql_user_without_grants(mysql_client_db) -> Iterator[str]:
    user = "h2_noperm"
    admin = mysql_admin()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", [PASSWORD])
    yield user
    clientdb.dispose_engines()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    admin.close()


def test_mysql_permission_denied(world, mysql_client_db, mysql_user_without_grants):
    source = create(
        world, "mysql", **my(database=mysql_client_db, username=mysql_user_without_grants, password=PASSWORD)
    )
    check(world, source, f"Permission denied for user “{mysql_user_without_grants}”")


def test_mysql_timeout(world):
    server = SilentServer()
    try:
        source = create(
            world, "mysql", host="127.0.0.1", port=server.port, database="x", options={"connect_timeout": 1}
        )
        check(world, source, f"at 127.0.0.1:{server.port} did not answer within 1 second (timeout)")
    finally:
        server.close()


# --- SQLite ---------------------------------------------------------------------------------------------


def test_sqlite_ok_missing_file_and_not_a_database(world, tmp_path):
    path = tmp_path / "helpdesk.sqlite3"
    make_sqlite(path)
    check(world, create(world, "sqlite", database=str(path)), "Connected to SQLite", ok=True)
    missing = tmp_path / "missing.sqlite3"
    check(
        world,
        create(world, "sqlite", key="missing", database=str(missing)),
        f"The SQLite file {missing} does not exist or cannot be opened",
    )
    assert not missing.exists()  # the test did not create it
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database at all " * 100)
    check(
        world, create(world, "sqlite", key="junk", database=str(junk)), "does not exist or cannot be opened"
    )
