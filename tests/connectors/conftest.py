"""Real client databases for the connector tests: PostgreSQL, MariaDB and SQLite with a helpdesk schema.

The schema uses a client's own names, not the canonical ones: `hd_tkt` with `tkt_id`, `subj`,
`stat_cd`…, and the description in a side table `hd_tkt_txt` joined on `tkt_ref_id`. The PostgreSQL
and MariaDB databases are throwaway databases named after the test database (`…_client`), created
once per session and dropped at its end; every test starts from the same rows.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pymysql
import pytest
from django.conf import settings
from django.utils import timezone
from psycopg import sql

from apps.connectors import clientdb
from apps.connectors.mapping import parse_mapping_yaml
from apps.connectors.models import DataSource

MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")

# The canonical data of the test agent (a deployment's pinned spec `data`).
DATA = [
    {
        "name": "ticket",
        "fields": [
            {"name": "id", "type": "string", "required": True},
            {"name": "reference", "type": "string", "required": True},
            {"name": "subject", "type": "string", "required": True},
            {"name": "description", "type": "text"},
            {"name": "status", "type": "string", "required": True},
            {"name": "priority", "type": "string"},
            {"name": "requester_id", "type": "reference"},
            {"name": "team_id", "type": "reference"},
            {"name": "created_at", "type": "datetime"},
            {"name": "due_date", "type": "date"},
            {"name": "cost", "type": "decimal"},
            {"name": "vip", "type": "boolean"},
        ],
    },
    {
        "name": "person",
        "fields": [
            {"name": "id", "type": "string", "required": True},
            {"name": "name", "type": "string", "required": True},
            {"name": "email", "type": "string", "classification": "confidential"},
        ],
    },
]

MAPPING_YAML = """\
entities:
  ticket:
    table: hd_tkt
    key: tkt_id
    fields:
      reference: tkt_ref
      subject: subj
      description: hd_tkt_txt.body
      status: stat_cd
      priority: prio_cd
      requester_id: req_usr_id
      team_id: null
      created_at: crt_ts
      due_date: due_dt
      cost: cost_amt
      vip: vip_flg
    joins:
      hd_tkt_txt: {column: tkt_ref_id, references: tkt_id}
  person:
    table: hd_usr
    key: usr_id
    fields:
      name: full_nm
      email: email_addr
"""

DDL = {
    "postgresql": [
        """CREATE TABLE hd_usr (usr_id serial PRIMARY KEY, full_nm varchar(120) NOT NULL,
            email_addr varchar(200))""",
        """CREATE TABLE hd_tkt (tkt_id serial PRIMARY KEY, tkt_ref varchar(20) NOT NULL UNIQUE,
            subj varchar(200) NOT NULL, stat_cd varchar(20) NOT NULL, prio_cd varchar(4),
            req_usr_id integer REFERENCES hd_usr(usr_id), crt_ts timestamptz, due_dt date,
            cost_amt numeric(10, 2), vip_flg boolean)""",
        """CREATE TABLE hd_tkt_txt (txt_id serial PRIMARY KEY,
            tkt_ref_id integer NOT NULL UNIQUE REFERENCES hd_tkt(tkt_id), body text)""",
    ],
    "mysql": [
        """CREATE TABLE hd_usr (usr_id INT AUTO_INCREMENT PRIMARY KEY, full_nm VARCHAR(120) NOT NULL,
            email_addr VARCHAR(200))""",
        """CREATE TABLE hd_tkt (tkt_id INT AUTO_INCREMENT PRIMARY KEY, tkt_ref VARCHAR(20) NOT NULL UNIQUE,
            subj VARCHAR(200) NOT NULL, stat_cd VARCHAR(20) NOT NULL, prio_cd VARCHAR(4),
            req_usr_id INT, crt_ts DATETIME, due_dt DATE, cost_amt DECIMAL(10, 2), vip_flg TINYINT(1),
            FOREIGN KEY (req_usr_id) REFERENCES hd_usr(usr_id))""",
        """CREATE TABLE hd_tkt_txt (txt_id INT AUTO_INCREMENT PRIMARY KEY, tkt_ref_id INT NOT NULL UNIQUE,
            body TEXT, FOREIGN KEY (tkt_ref_id) REFERENCES hd_tkt(tkt_id))""",
    ],
    "sqlite": [
        """CREATE TABLE hd_usr (usr_id INTEGER PRIMARY KEY AUTOINCREMENT, full_nm TEXT NOT NULL,
            email_addr TEXT)""",
        """CREATE TABLE hd_tkt (tkt_id INTEGER PRIMARY KEY AUTOINCREMENT, tkt_ref TEXT NOT NULL UNIQUE,
            subj TEXT NOT NULL, stat_cd TEXT NOT NULL, prio_cd TEXT,
            req_usr_id INTEGER REFERENCES hd_usr(usr_id),
            crt_ts TIMESTAMP, due_dt DATE, cost_amt NUMERIC(10, 2), vip_flg BOOLEAN)""",
        """CREATE TABLE hd_tkt_txt (txt_id INTEGER PRIMARY KEY AUTOINCREMENT,
            tkt_ref_id INTEGER NOT NULL UNIQUE REFERENCES hd_tkt(tkt_id), body TEXT)""",
    ],
}

PEOPLE = [("Dana Reyes", "dana@client.test"), ("Omar Haddad", "omar@client.test")]
# (reference, subject, status, priority, requester, due date, cost, vip, description or None)
TICKETS = [
    ("INC-1", "Email down", "open", "P1", 1, "2025-02-01", "120.50", True, "Outlook cannot connect."),
    ("INC-2", "Printer jams", "open", "P3", 2, "2025-02-03", "15.00", False, "Every second page."),
    ("INC-3", "VPN drops", "new", "P2", 1, None, None, False, None),  # no side-table row
    ("REQ-4", "New laptop 100%_sure", "new", "P4", 2, "2025-03-01", "999.99", False, "Starts Monday."),
    ("INC-5", "ERP login fails", "closed", "P1", 1, "2025-01-15", "0.10", True, "Invalid session."),
]
CREATED = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)


def server_db() -> dict:
    return settings.DATABASES["default"]


def pg_dsn(dbname: str, **overrides) -> str:
    db = server_db()
    params = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
        "dbname": dbname,
    }
    params.update(overrides)
    return psycopg.conninfo.make_conninfo(**params)


def client_db_name() -> str:
    """`<database>_client` (the same whether or not Django's test database is set up yet)."""
    return f"{str(server_db()['NAME']).removeprefix('test_')}_client"


def mysql_admin(database: str | None = None):
    try:
        return pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=MYSQL_USER,
            password=MYSQL_PASSWORD,
            database=database,
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:  # pragma: no cover - the machine has MariaDB
        pytest.fail(f"MariaDB is needed at {MYSQL_HOST}:{MYSQL_PORT} for the connector tests: {exc}")


@pytest.fixture(scope="session")
def pg_client_db() -> Iterator[str]:
    """A throwaway PostgreSQL database with the helpdesk schema (dropped at the end of the session)."""
    name = client_db_name()
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(pg_dsn(name)) as db:
        for statement in DDL["postgresql"]:
            db.execute(statement)
    yield name
    clientdb.dispose_engines()
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def mysql_client_db() -> Iterator[str]:
    """A throwaway MariaDB database with the helpdesk schema (dropped at the end of the session)."""
    name = client_db_name()
    admin = mysql_admin()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cursor.execute(f"USE `{name}`")
        for statement in DDL["mysql"]:
            cursor.execute(statement)
    yield name
    clientdb.dispose_engines()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


def _rows():
    for index, (ref, subject, status, priority, requester, due, cost, vip, text) in enumerate(TICKETS, 1):
        yield index, (ref, subject, status, priority, requester, CREATED, due, cost, vip), text


def _seed(execute: Callable[[str, tuple], None], placeholder: str) -> None:
    p = placeholder
    for name, email in PEOPLE:
        execute(f"INSERT INTO hd_usr (full_nm, email_addr) VALUES ({p}, {p})", (name, email))
    for index, row, text in _rows():
        execute(
            "INSERT INTO hd_tkt"
            " (tkt_ref, subj, stat_cd, prio_cd, req_usr_id, crt_ts, due_dt, cost_amt, vip_flg)"
            f" VALUES ({', '.join([p] * 9)})",
            row,
        )
        if text is not None:
            execute(f"INSERT INTO hd_tkt_txt (tkt_ref_id, body) VALUES ({p}, {p})", (index, text))


def reset_postgresql(name: str) -> None:
    with psycopg.connect(pg_dsn(name)) as db:
        db.execute("TRUNCATE hd_tkt_txt, hd_tkt, hd_usr RESTART IDENTITY CASCADE")
        _seed(lambda statement, params: db.execute(statement, params), "%s")


def reset_mysql(name: str) -> None:
    connection = mysql_admin(name)
    with connection.cursor() as cursor:
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in ("hd_tkt_txt", "hd_tkt", "hd_usr"):
            cursor.execute(f"TRUNCATE TABLE {table}")
        cursor.execute("SET FOREIGN_KEY_CHECKS = 1")

        def run(statement, params):
            params = tuple(p.replace(tzinfo=None) if isinstance(p, datetime) else p for p in params)
            cursor.execute(statement, params)

        _seed(run, "%s")
    connection.close()


def make_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    for statement in DDL["sqlite"]:
        db.execute(statement)

    def run(statement, params):
        params = tuple(p.strftime("%Y-%m-%d %H:%M:%S") if isinstance(p, datetime) else p for p in params)
        db.execute(statement, params)

    _seed(run, "?")
    db.commit()
    db.close()


def source_for(engine: str, database: str, *, pk: int = 1, **fields) -> DataSource:
    """An (unsaved) data source as the services would store it; pk and updated_at key the engine cache."""
    db = server_db()
    defaults = {
        "postgresql": {
            "host": db.get("HOST") or "127.0.0.1",
            "port": int(db.get("PORT") or 5432),
            "username": db.get("USER") or "postgres",
            "password": db.get("PASSWORD") or "",
        },
        "mysql": {"host": MYSQL_HOST, "port": MYSQL_PORT, "username": MYSQL_USER, "password": MYSQL_PASSWORD},
        "sqlite": {},
    }[engine]
    values = {
        "name": f"Helpdesk ({engine})",
        "key": f"helpdesk-{engine}",
        "engine": engine,
        "database": database,
        "row_limit": 500,
        **defaults,
        **fields,
    }
    source = DataSource(pk=pk, **values)
    source.updated_at = timezone.now()
    return source


def mapping_spec(text: str = MAPPING_YAML) -> dict:
    return parse_mapping_yaml(text, data=DATA)


@dataclass
class Helpdesk:
    """One engine's helpdesk database: its data source, the mapped client database, and raw SQL for checks."""

    engine: str
    source: DataSource
    db: clientdb.ClientDatabase
    raw: Callable[[str], list[tuple]]


@pytest.fixture
def sqlite_path(tmp_path) -> Path:
    path = tmp_path / "helpdesk.sqlite3"
    make_sqlite(path)
    return path


def _raw_postgresql(name: str) -> Callable[[str], list[tuple]]:
    def raw(statement: str) -> list[tuple]:
        with psycopg.connect(pg_dsn(name)) as db:
            cursor = db.execute(statement)
            return cursor.fetchall() if cursor.description else []

    return raw


def _raw_mysql(name: str) -> Callable[[str], list[tuple]]:
    def raw(statement: str) -> list[tuple]:
        connection = mysql_admin(name)
        with connection.cursor() as cursor:
            cursor.execute(statement)
            rows = list(cursor.fetchall())
        connection.close()
        return rows

    return raw


def _raw_sqlite(path: Path) -> Callable[[str], list[tuple]]:
    def raw(statement: str) -> list[tuple]:
        db = sqlite3.connect(path)
        try:
            return list(db.execute(statement).fetchall())
        finally:
            db.commit()
            db.close()

    return raw


_pk = iter(range(1000, 10**6))


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def helpdesk(request, tmp_path) -> Iterator[Helpdesk]:
    """The helpdesk database on each engine, freshly seeded, seen through the test mapping."""
    engine = request.param
    if engine == "postgresql":
        name = request.getfixturevalue("pg_client_db")
        reset_postgresql(name)
        source, raw = source_for(engine, name, pk=next(_pk)), _raw_postgresql(name)
    elif engine == "mysql":
        name = request.getfixturevalue("mysql_client_db")
        reset_mysql(name)
        source, raw = source_for(engine, name, pk=next(_pk)), _raw_mysql(name)
    else:
        path = tmp_path / "helpdesk.sqlite3"
        make_sqlite(path)
        source, raw = source_for(engine, str(path), pk=next(_pk)), _raw_sqlite(path)
    yield Helpdesk(engine, source, clientdb.client_database(source=source, mapping=mapping_spec()), raw)
    clientdb.dispose_engine(source)


# --- Loopback stand-ins for servers that misbehave ----------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SilentServer:
    """Accepts TCP connections on loopback and never answers (a server that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while self.sock.fileno() != -1:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.held.append(conn)

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


class FakePostgresRefusingPassword:
    """Speaks just enough of the PostgreSQL protocol to ask for a password and refuse it (28P01),
    as a server with password authentication does (the test server trusts every local user)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _serve(self):
        self.sock.settimeout(0.2)
        while self.sock.fileno() != -1:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                self._session(conn)
            except (ConnectionError, OSError):
                pass
            finally:
                conn.close()

    def _session(self, conn: socket.socket):
        conn.settimeout(5)
        while True:
            length = int.from_bytes(self._read(conn, 4), "big")
            body = self._read(conn, length - 4)
            code = int.from_bytes(body[:4], "big")
            if code in (80877103, 80877104):  # SSLRequest / GSSENCRequest: not offered
                conn.sendall(b"N")
                continue
            break  # the StartupMessage
        conn.sendall(b"R" + (8).to_bytes(4, "big") + (3).to_bytes(4, "big"))  # cleartext password, please
        kind = self._read(conn, 1)
        length = int.from_bytes(self._read(conn, 4), "big")
        payload = self._read(conn, length - 4)
        if kind == b"p":
            self.passwords.append(payload.rstrip(b"\0"))
        fields = b"".join(
            tag + value + b"\0"
            for tag, value in (
                (b"S", b"FATAL"),
                (b"V", b"FATAL"),
                (b"C", b"28P01"),
                (b"M", b'password authentication failed for user "helpdesk"'),
            )
        )
        message = fields + b"\0"
        conn.sendall(b"E" + (len(message) + 4).to_bytes(4, "big") + message)

    def close(self):
        self.sock.close()
