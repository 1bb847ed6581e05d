#!/usr/bin/env bash
# Make MariaDB reachable for the client-database tests (tests/connectors, tests/runtime):
# TEST_MYSQL_HOST:TEST_MYSQL_PORT (default 127.0.0.1:3306), user root with an empty password.
#
# If it answers, nothing is done. Otherwise, on this machine and as root, the Debian
# mariadb-server package is installed when missing, started, and its root account
# opened to TCP logins from loopback without a password (a throwaway test server).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

HOST=${TEST_MYSQL_HOST:-127.0.0.1}
PORT=${TEST_MYSQL_PORT:-3306}

tcp_open "$HOST" "$PORT" && exit 0
case $HOST in
  127.0.0.1 | localhost) ;;
  *) die "MariaDB at $HOST:$PORT does not answer (TEST_MYSQL_HOST/TEST_MYSQL_PORT)." ;;
esac
[ "$PORT" = 3306 ] || die "MariaDB at $HOST:$PORT does not answer; only the default port is started here."
is_root || die "MariaDB does not answer at 127.0.0.1:3306. Start one (user root, empty password), or run as root to install it."

command -v mariadbd >/dev/null 2>&1 || apt_install mariadb-server
log "starting MariaDB on 127.0.0.1:3306"
if ! { command -v service >/dev/null 2>&1 && service mariadb start >/dev/null 2>&1; }; then
  mkdir -p /run/mysqld
  chown mysql: /run/mysqld 2>/dev/null || true
  (setsid mariadbd-safe --user=mysql --bind-address=127.0.0.1 </dev/null >/dev/null 2>&1 &)
fi
for _ in $(seq 120); do
  tcp_open 127.0.0.1 3306 && break
  sleep 0.5
done
tcp_open 127.0.0.1 3306 || die "MariaDB did not start (see /var/log/mysql or journalctl)."
# Debian's root logs in through the unix socket only; tests log in over TCP without a password.
mariadb -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
log "MariaDB ready at 127.0.0.1:3306 (root, no password)"
