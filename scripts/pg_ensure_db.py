"""Make sure the database named in a PostgreSQL URL exists; create it if not.

Called by scripts/services.sh with the virtualenv's Python (psycopg), so the
check connects exactly the way Django will. Usage: pg_ensure_db.py URL

Exit status: 0 database ready, 2 server unreachable, 3 the server answered but
refused us (authentication, permissions, ...), with the reason on stderr.
"""

import socket
import sys
import urllib.parse

import psycopg
from psycopg import sql


def libpq_url(url: str) -> str:
    # django-environ also accepts pgsql:// and postgis://; libpq only postgres(ql)://.
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(("postgresql", *parts[1:]))


def reachable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or parts.hostname.startswith("/"):
        return True  # unix socket: libpq's own error decides
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), timeout=3).close()
    except OSError:
        return False
    return True


def main(url: str) -> int:
    url = libpq_url(url)
    dbname = urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/")) or "postgres"
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return 0
    except psycopg.OperationalError as exc:
        if not reachable(url):
            return 2
        if f'database "{dbname}" does not exist' not in str(exc):
            print(str(exc).strip(), file=sys.stderr)
            return 3
    # The server answers but the database is missing: create it from the
    # maintenance database (CREATE DATABASE cannot run inside a transaction).
    for maintenance in ("postgres", "template1"):
        try:
            with psycopg.connect(url, dbname=maintenance, connect_timeout=3, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            print(f"created database {dbname!r}", file=sys.stderr)
            return 0
        except psycopg.errors.DuplicateDatabase:
            return 0  # created concurrently
        except psycopg.OperationalError:
            continue  # maintenance database missing or not allowed: try the next
        except psycopg.Error as exc:
            print(f"cannot create database {dbname!r}: {exc}".strip(), file=sys.stderr)
            return 3
    print(f"cannot create database {dbname!r}: no usable maintenance database", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
