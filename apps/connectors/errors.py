"""What went wrong with a client database, in words a partner engineer can act on.

`classify` turns a driver error (psycopg, PyMySQL, sqlite3, as SQLAlchemy wraps
them) into a ClientDatabaseError with a clear message, a `kind` and whether
retrying may help (`transient`). Messages name the host, port, database and
user, and at most the first line of the server's own explanation — never a stack
trace, a statement's parameters or the password.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING

import psycopg
import pymysql  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from .models import DataSource

__all__ = ["ClientDatabaseError", "classify"]

# Kinds, and whether a retry may succeed.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
CONNECTION_LOST = "connection_lost"
BUSY = "busy"
AUTH = "auth"
PERMISSION = "permission"
NO_DATABASE = "no_database"
MISSING_SECRET = "missing_secret"
MAPPING = "mapping"
CONSTRAINT = "constraint"
READ_ONLY = "read_only"
INVALID = "invalid"
ERROR = "error"
TRANSIENT_KINDS = frozenset({UNREACHABLE, TIMEOUT, CONNECTION_LOST, BUSY})


class ClientDatabaseError(Exception):
    """A client-database operation failed; `message` is for people, `transient` says a retry may help.

    Transient: the server is unreachable, a timeout, a lost connection, a deadlock or lock wait.
    Not transient: an unknown entity or field, a bad value, a constraint violation, a permission or
    authentication refusal, a mapping that names a missing table or column.
    """

    def __init__(self, message: str, *, transient: bool = False, kind: str = ERROR):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.kind = kind


def _error(kind: str, message: str) -> ClientDatabaseError:
    return ClientDatabaseError(message, transient=kind in TRANSIENT_KINDS, kind=kind)


def _detail(text: str, source: DataSource, password: str | None) -> str:
    """The first meaningful line of a server message, without the password, at most 200 characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    line = re.sub(r"^(connection failed|connection to server at [^:]+ failed|FATAL|ERROR):\s*", "", line)
    line = re.sub(r"^connection to server at \"[^\"]*\" \([^)]*\), port \d+ failed:\s*", "", line)
    line = re.sub(r"^connection to server at \"[^\"]*\", port \d+ failed:\s*", "", line)
    line = re.sub(r"^(FATAL|ERROR):\s*", "", line)
    for secret in (password, source.password if source.password else None):
        if secret:
            line = line.replace(secret, "***")
    return line[:200].rstrip()


def _where(source: DataSource) -> str:
    if source.engine == "sqlite":
        return f"the SQLite file {source.database}"
    return f"{source.host}:{source.port}" if source.port else source.host


def _who(source: DataSource) -> str:
    return f"“{source.username}”" if source.username else "the configured user"


def _seconds(count: int) -> str:
    return f"{count} second{'' if count == 1 else 's'}"


def _messages(source: DataSource, timeout: int, statement_timeout: int) -> dict[str, str]:
    where, who = _where(source), _who(source)
    secret = f" (read from the environment variable {source.secret_env_var})" if source.secret_env_var else ""
    return {
        UNREACHABLE: f"Cannot reach the database server at {where}",
        TIMEOUT: f"The database server at {where} did not answer within {_seconds(timeout)} (timeout)",
        "statement_timeout": (
            f"The query took longer than {_seconds(statement_timeout)} and was stopped (timeout)"
        ),
        CONNECTION_LOST: "The connection to the database was lost; the operation can be retried",
        BUSY: "The database is busy (a lock or a deadlock); the operation can be retried",
        AUTH: f"Authentication failed: {where} refused user {who} with the password given{secret}",
        PERMISSION: f"Permission denied for user {who} in {source.database}",
        NO_DATABASE: (
            f"The SQLite file {source.database} does not exist or cannot be opened"
            if source.engine == "sqlite"
            else f"The database “{source.database}” does not exist on {where}"
        ),
        MAPPING: "The field mapping names a table or column the database does not have",
        CONSTRAINT: "The database refused the change: a constraint was violated",
        READ_ONLY: "The database refused a write: the operation runs read-only",
        INVALID: "The database refused a value",
        ERROR: "The database answered with an error",
    }


def classify(
    exc: BaseException,
    source: DataSource,
    *,
    password: str | None = None,
    timeout: int = 5,
    statement_timeout: int = 15,
) -> ClientDatabaseError:
    """The ClientDatabaseError for a driver or SQLAlchemy error raised while using `source`."""
    if isinstance(exc, ClientDatabaseError):
        return exc
    messages = _messages(source, timeout, statement_timeout)
    if isinstance(exc, sa_exc.NoSuchTableError):
        return _error(MAPPING, f"{messages[MAPPING]}: no table “{exc}” (or {_who(source)} cannot see it).")
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no free connection in time
        return _error(BUSY, "Too many operations are using this data source at once; retry in a moment.")
    original: BaseException = getattr(exc, "orig", None) or exc
    if isinstance(original, psycopg.Error):
        kind, detail = _postgresql(original)
    elif isinstance(original, pymysql.err.Error):
        kind, detail = _mysql(original)
    elif isinstance(original, sqlite3.Error):
        kind, detail = _sqlite(original)
    elif isinstance(original, OSError | ConnectionError):
        kind, detail = UNREACHABLE, str(original)
    else:
        kind, detail = ERROR, type(original).__name__
    if kind == ERROR and getattr(exc, "connection_invalidated", False):
        kind = CONNECTION_LOST
    headline = messages["statement_timeout" if kind == "statement_timeout" else kind]
    kind = TIMEOUT if kind == "statement_timeout" else kind
    detail = _detail(detail, source, password)
    message = f"{headline} ({detail})." if detail else f"{headline}."
    if kind == UNREACHABLE:
        message += " Check the host and port, and that the server accepts connections from Triplane."
    return _error(kind, message)


# --- PostgreSQL (psycopg 3) -------------------------------------------------------------------------


_PG_CONNECT = (
    ("password authentication failed", AUTH),
    ("authentication failed", AUTH),
    ("no password supplied", AUTH),
    ('role "', AUTH),  # role "x" does not exist
    ("does not exist", NO_DATABASE),  # database "x" does not exist
    ("no pg_hba.conf entry", PERMISSION),
    ("permission denied", PERMISSION),
    ("connect privilege", PERMISSION),
    ("timeout expired", TIMEOUT),
    ("timed out", TIMEOUT),
    ("connection refused", UNREACHABLE),
    ("could not translate host name", UNREACHABLE),
    ("name or service not known", UNREACHABLE),
    ("failed to resolve host", UNREACHABLE),
    ("no route to host", UNREACHABLE),
    ("network is unreachable", UNREACHABLE),
    ("could not connect", UNREACHABLE),
    ("server closed the connection", CONNECTION_LOST),
    ("terminating connection", CONNECTION_LOST),
    ("consuming input failed", CONNECTION_LOST),
    ("the connection is closed", CONNECTION_LOST),
    ("the connection is lost", CONNECTION_LOST),
    ("too many clients", BUSY),
    ("too many connections", BUSY),
)


def _postgresql(error: psycopg.Error) -> tuple[str, str]:
    state = getattr(error, "sqlstate", None) or ""
    diag = getattr(error, "diag", None)
    primary = (getattr(diag, "message_primary", None) if diag is not None else None) or str(error)
    if state:
        if state == "57014":  # query_canceled: statement_timeout
            return "statement_timeout", ""
        if state in ("28P01", "28000"):
            return AUTH, primary
        if state == "3D000":
            return NO_DATABASE, ""
        if state == "42501":
            return PERMISSION, primary
        if state == "25006":
            return READ_ONLY, ""
        if state in ("42P01", "42703", "3F000"):
            return MAPPING, primary
        if state.startswith("23"):
            return CONSTRAINT, primary
        if state.startswith("22") or state == "42804":
            return INVALID, primary
        if state in ("40001", "40P01", "55P03", "53300") or state.startswith("53"):
            return BUSY, primary
        if state.startswith("08") or state.startswith("57P"):
            return CONNECTION_LOST, primary
    text = str(error).lower()
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        for needle, kind in _PG_CONNECT:
            if needle in text:
                return kind, "" if kind in (TIMEOUT, NO_DATABASE) else str(error)
    return ERROR, primary


# --- MySQL / MariaDB (PyMySQL) ----------------------------------------------------------------------

_MYSQL_CODES = {
    1045: AUTH,
    1044: PERMISSION,
    1142: PERMISSION,
    1143: PERMISSION,
    1227: PERMISSION,
    1370: PERMISSION,
    1049: NO_DATABASE,
    2003: UNREACHABLE,
    2005: UNREACHABLE,
    2006: CONNECTION_LOST,
    2013: CONNECTION_LOST,
    2014: CONNECTION_LOST,
    2055: CONNECTION_LOST,
    1040: BUSY,
    1205: BUSY,
    1213: BUSY,
    1969: "statement_timeout",  # MariaDB: max_statement_time exceeded
    3024: "statement_timeout",  # MySQL: max_execution_time exceeded
    1317: "statement_timeout",
    1792: READ_ONLY,
    1146: MAPPING,
    1054: MAPPING,
    1062: CONSTRAINT,
    1048: CONSTRAINT,
    1364: CONSTRAINT,
    1451: CONSTRAINT,
    1452: CONSTRAINT,
    3819: CONSTRAINT,
    4025: CONSTRAINT,
    1264: INVALID,
    1265: INVALID,
    1292: INVALID,
    1366: INVALID,
    1406: INVALID,
}


def _mysql(error: pymysql.err.Error) -> tuple[str, str]:
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    kind = _MYSQL_CODES.get(code or 0)
    if kind in (UNREACHABLE, CONNECTION_LOST) and "timed out" in text.lower():
        return TIMEOUT if kind == UNREACHABLE else "statement_timeout", ""
    if kind == UNREACHABLE:
        # "Can't connect to MySQL server on 'h' ([Errno 111] Connection refused)": keep the reason.
        reason = re.search(r"\(([^()]*(?:\([^()]*\))?[^()]*)\)\s*$", text)
        return kind, re.sub(r"^\[Errno -?\d+\]\s*", "", reason.group(1)) if reason else text
    if kind is not None:
        return kind, "" if kind in (NO_DATABASE, "statement_timeout", READ_ONLY) else text
    if isinstance(error, pymysql.err.IntegrityError):
        return CONSTRAINT, text
    if isinstance(error, pymysql.err.DataError):
        return INVALID, text
    return ERROR, text


# --- SQLite -----------------------------------------------------------------------------------------


def _sqlite(error: sqlite3.Error) -> tuple[str, str]:
    text = str(error)
    lowered = text.lower()
    if isinstance(error, sqlite3.IntegrityError):
        return CONSTRAINT, text
    if "unable to open database" in lowered or "not a database" in lowered:
        return NO_DATABASE, "" if "unable to open" in lowered else text
    if "readonly database" in lowered or "read-only" in lowered:
        return READ_ONLY, ""
    if "no such table" in lowered or "no such column" in lowered:
        return MAPPING, text
    if "locked" in lowered or "busy" in lowered:
        return BUSY, text
    if "interrupted" in lowered:
        return "statement_timeout", ""
    if "access permission denied" in lowered or "authorization denied" in lowered:
        return PERMISSION, text
    if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError | sqlite3.DataError):
        return INVALID, text
    return ERROR, text
