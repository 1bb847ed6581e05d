"""Engines for data sources: one cached per data source, with its connect and statement timeouts.

Keyed by client schema and pk (the same pk exists in every client schema) and rebuilt when
the source's connection settings change. Pools are small: agents make short calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pymysql  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.types import TypeEngine

from apps.core.db import tenant_connection

from ..errors import ClientDatabaseError

if TYPE_CHECKING:
    from ..models import DataSource

CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT = 15
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "sqlite": "sqlite+pysqlite"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


@dataclass
class Handle:
    """An engine for one data source and what was learnt about its tables (column names and types)."""

    engine: Engine
    version: tuple
    columns: dict[str, dict[str, TypeEngine]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_engines: dict[tuple[str, int], Handle] = {}
_engines_lock = threading.Lock()


def timeouts(source: DataSource) -> tuple[int, int]:
    options = source.options or {}
    return int(options.get("connect_timeout") or CONNECT_TIMEOUT), int(
        options.get("statement_timeout") or STATEMENT_TIMEOUT
    )


def password_of(source: DataSource) -> str | None:
    """The source's password: from its environment variable when it names one (the client's own worker)."""
    if source.secret_env_var:
        value = os.environ.get(source.secret_env_var)
        if value is None:
            raise ClientDatabaseError(
                f"The password of {source.name} is read from the environment variable "
                f"{source.secret_env_var}, which this worker does not have: its operations run on the "
                "client's own worker.",
                transient=False,
                kind="missing_secret",
            )
        return value
    return source.password or None


def _url(source: DataSource, password: str | None) -> URL:
    if source.engine == "sqlite":
        # URI mode "rw": a missing file is an error, not a new empty database.
        return URL.create(
            DRIVERS["sqlite"], database=f"file:{quote(source.database)}", query={"mode": "rw", "uri": "true"}
        )
    return URL.create(
        DRIVERS[source.engine],
        username=source.username or None,
        password=password,
        host=source.host,
        port=source.port or DEFAULT_PORTS[source.engine],
        database=source.database,
    )


def _create_engine(source: DataSource, password: str | None) -> Engine:
    connect_timeout, statement_timeout = timeouts(source)
    options = source.options or {}
    connect_args: dict[str, Any]
    if source.engine == "postgresql":
        connect_args = {
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout * 1000}",
            "application_name": "triplane",
        }
        if options.get("sslmode"):
            connect_args["sslmode"] = options["sslmode"]
    elif source.engine == "mysql":
        connect_args = {
            "connect_timeout": connect_timeout,
            # The socket gives up a little after the server's own statement timeout would have fired.
            "read_timeout": statement_timeout + 5,
            "write_timeout": statement_timeout + 5,
            "charset": "utf8mb4",
        }
    else:
        connect_args = {"timeout": connect_timeout}
    engine = sa.create_engine(
        _url(source, password),
        connect_args=connect_args,
        pool_size=2,
        max_overflow=3,
        pool_timeout=connect_timeout,
        pool_recycle=1800,
        pool_pre_ping=True,
    )
    if source.engine == "mysql":

        @event.listens_for(engine, "do_connect")
        def _handshake(dialect, _record, cargs, cparams):
            # PyMySQL reads the server's greeting with its read timeout: use the connect timeout for
            # that, so a server that accepts and never answers is reported as such, quickly.
            cparams = {**cparams, "read_timeout": connect_timeout}
            try:
                dbapi_connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] == 2013 and "timed out" in str(exc):
                    raise pymysql.err.OperationalError(
                        2003, f"Can't connect to MySQL server on {source.host!r} (timed out)"
                    ) from None
                raise
            dbapi_connection._read_timeout = statement_timeout + 5  # queries: PyMySQL reads it per packet
            return dbapi_connection

        @event.listens_for(engine, "connect")
        def _statement_timeout(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            try:
                for statement in (
                    f"SET SESSION max_statement_time = {int(statement_timeout)}",  # MariaDB
                    f"SET SESSION max_execution_time = {int(statement_timeout) * 1000}",  # MySQL
                ):
                    try:
                        cursor.execute(statement)
                    except pymysql.err.Error:  # the other server's variable: try the next
                        continue
                    break
            finally:
                cursor.close()

    return engine


def handle_for(source: DataSource) -> Handle:
    """The cached engine of `source` in the current client schema; rebuilt after the source changed."""
    password = password_of(source)
    schema = getattr(source, "_client_schema", None) or tenant_connection().schema_name
    key = (schema, int(source.pk))
    # Any change to how it connects makes a new engine (a save changes updated_at; the settings are
    # compared too, so an engine never outlives them however the row changed).
    version = (
        source.updated_at.isoformat() if source.updated_at else "",
        source.engine,
        source.host,
        source.port,
        source.database,
        source.username,
        hashlib.sha256((password or "").encode()).hexdigest(),
        json.dumps(source.options or {}, sort_keys=True),
    )
    with _engines_lock:
        handle = _engines.get(key)
        if handle is not None and handle.version == version:
            return handle
        if handle is not None:
            handle.engine.dispose()
        handle = Handle(engine=_create_engine(source, password), version=version)
        _engines[key] = handle
        return handle


def dispose_engine(source: DataSource) -> None:
    """Close the cached engine of one data source (after it was deleted)."""
    schema = getattr(source, "_client_schema", None) or tenant_connection().schema_name
    with _engines_lock:
        handle = _engines.pop((schema, int(source.pk)), None)
    if handle is not None:
        handle.engine.dispose()


def dispose_engines() -> None:
    """Close every cached engine (tests, and data sources that were deleted)."""
    with _engines_lock:
        for handle in _engines.values():
            handle.engine.dispose()
        _engines.clear()
