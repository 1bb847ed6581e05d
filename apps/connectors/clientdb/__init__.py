"""Client-database access through a field mapping (SQLAlchemy Core).

Only the runtime's tools and the connectors app import this package (an import-linter contract).

The agents' db tools speak canonical names (`ticket.subject`); the field mapping
says which table and column hold each one in this client's database. This module
turns a canonical get/query/insert/update into SQL with SQLAlchemy Core:

- identifiers come only from the mapping (`table()` / `column()` objects, names
  checked against the mapping's identifier rule and the reflected table), values
  only as bound parameters: nothing a user or an agent types is formatted into SQL;
- reads run in read-only transactions (PostgreSQL `SET TRANSACTION READ ONLY`,
  MySQL/MariaDB `START TRANSACTION READ ONLY`, SQLite `PRAGMA query_only`), writes
  in one transaction; fields in side tables are LEFT JOINed for reads and written
  to the joined row (inserted after the main row when it does not exist yet);
- a query returns at most the data source's `row_limit` rows;
- engines are cached per data source (keyed by client schema, pk and last change), with a
  small pool, a 5-second connect timeout and a statement timeout where the engine has one
  (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`, MySQL `max_execution_time`;
  SQLite has only its busy timeout).

Values in results are JSON-ready: dates and datetimes as ISO 8601 strings, decimals
as strings (exact; no binary rounding of amounts), bytes as text, booleans stored as
0/1 as booleans when the canonical field is a boolean. Null-mapped fields are absent.
"""

from ..errors import ClientDatabaseError
from .database import KEY_FIELD, OPERATORS, ClientDatabase, client_database, open_for_deployment
from .engines import CONNECT_TIMEOUT, DEFAULT_PORTS, STATEMENT_TIMEOUT, dispose_engine, dispose_engines

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_PORTS",
    "KEY_FIELD",
    "OPERATORS",
    "STATEMENT_TIMEOUT",
    "ClientDatabase",
    "ClientDatabaseError",
    "client_database",
    "dispose_engine",
    "dispose_engines",
    "open_for_deployment",
]
