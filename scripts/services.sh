#!/usr/bin/env bash
# Make PostgreSQL and Redis reachable for development and tests
# (ARCHITECTURE.md, "Running it").
#
#   scripts/services.sh [start]   ensure both servers; write the URLs to use into .var/env
#   scripts/services.sh stop      stop the project-local servers under .var/ (data is kept)
#   scripts/services.sh status    show the URLs in .var/env and whether they answer
#   . scripts/services.sh         like start, and also export DATABASE_URL/REDIS_URL here
#
# The wanted URLs come from the environment, then .env, then the settings'
# defaults. If that server answers we use it (creating the database when it is
# missing). If not, we start project-local servers under .var/ from the
# installed PostgreSQL/Redis binaries, installing the Debian packages first when
# they are missing and we are root. Either way .var/env ends up naming the
# servers to use; the Makefile sources it before every Django/Celery command.

# Sourced: do the work in a child bash so `set -e`/`exit` cannot end the
# caller's shell, then export the result into it.
if (return 0 2>/dev/null); then
  if bash "${BASH_SOURCE[0]}" start; then
    set -a
    # shellcheck disable=SC1091
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.var/env"
    set +a
  else
    return 1
  fi
  return 0
fi

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

VAR=$ROOT/.var
PG_DATA=$VAR/pg
PG_SOCKETS=$VAR/pg-socket
REDIS_DIR=$VAR/redis
ENV_FILE=$VAR/env
# Same defaults as config/settings/base.py.
DEFAULT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/triplane
DEFAULT_REDIS_URL=redis://127.0.0.1:6379/0
# The virtualenv's Python has psycopg, so the database check connects the way Django does.
PY=${PYTHON:-$ROOT/.venv/bin/python}

# wanted NAME DEFAULT — sets WANTED (the URL) and EXPLICIT (1 when it came
# from the environment or .env rather than the default).
wanted() {
  WANTED=${!1:-}
  [ -n "$WANTED" ] || WANTED=$(dotenv_get "$1")
  if [ -n "$WANTED" ]; then EXPLICIT=1; else WANTED=$2; EXPLICIT=0; fi
}

mask() { sed -E 's#//([^:/@]*):[^@]*@#//\1:***@#' <<<"$1"; }

# --- PostgreSQL --------------------------------------------------------------

# pg_answers HOST PORT — a PostgreSQL server accepts connections there.
pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q ${1:+-h "$1"} -p "$2" -t 3
  else
    tcp_open "${1:-127.0.0.1}" "$2"
  fi
}

# ensure_db URL — the database in URL exists (created if missing).
# Returns 0 ready, 2 unreachable, 3 the server refused us (reason on stderr).
# psql is quick to start; without it, the virtualenv's psycopg does the same.
ensure_db() {
  if ! command -v psql >/dev/null 2>&1; then
    if [ -x "$PY" ] && "$PY" -c 'import psycopg' 2>/dev/null; then
      "$PY" "$ROOT/scripts/pg_ensure_db.py" "$1"
      return
    fi
    warn "neither psql nor the virtualenv's psycopg (make venv) is available; not checking that the database exists"
    return 0
  fi
  local url="postgresql://${1#*://}" err base query name
  err=$(psql "$url" -Atqc 'select 1' 2>&1 >/dev/null) && return 0
  case $err in
    *"database \""*"\" does not exist"*) ;;  # (not 'role ... does not exist')
    *"Connection refused"* | *"could not connect"* | *"timeout expired"*) return 2 ;;
    *) printf '%s\n' "$err" >&2; return 3 ;;
  esac
  base=${url%%\?*}
  query=${url#"$base"}
  name=$("$HOST_PY" -c 'import sys, urllib.parse as u; print(u.unquote(sys.argv[1]))' "${base##*/}")
  printf 'CREATE DATABASE :"db";\n' |
    psql "${base%/*}/postgres$query" -q -v ON_ERROR_STOP=1 -v db="$name" >/dev/null || return 3
  log "created database $name"
}

# pg_bindir — directory with initdb/pg_ctl; prefers the major version that
# created .var/pg, else the newest installed (Debian keeps them per version).
pg_bindir() {
  local version dir
  if [ -s "$PG_DATA/PG_VERSION" ]; then
    version=$(cat "$PG_DATA/PG_VERSION")
    dir=/usr/lib/postgresql/$version/bin
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
    die "$PG_DATA was created by PostgreSQL $version, which is not installed.
       Install postgresql-$version, or delete $PG_DATA (local development data) to start afresh."
  fi
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  dir=$(command -v initdb 2>/dev/null) && { dirname "$dir"; return; }  # non-Debian layouts
  return 1
}

# PostgreSQL refuses to run as root. As root we run it as an unprivileged user
# (postgres when the package created one, else nobody) that owns .var/pg.
pg_runas() {
  PG_USER_PREFIX=()
  if is_root; then
    local user=postgres
    id -u "$user" >/dev/null 2>&1 || user=nobody
    PG_USER_PREFIX=(runuser -u "$user" --)
    PG_OS_USER=$user
  fi
}

# start_local_pg — start (creating on first use) the server in .var/pg; prints its port.
start_local_pg() {
  local bindir port
  bindir=$(pg_bindir) || { apt_install postgresql; bindir=$(pg_bindir) || die "PostgreSQL binaries not found after installing"; }
  pg_runas
  mkdir -p "$PG_DATA" "$PG_SOCKETS"
  if is_root; then
    chmod go+x "$VAR"  # the server user must be able to reach .var/pg
    chown "$PG_OS_USER:" "$PG_DATA" "$PG_SOCKETS"
    runuser -u "$PG_OS_USER" -- test -w "$PG_DATA" ||
      die "user $PG_OS_USER cannot reach $PG_DATA (a parent directory is not searchable by others).
       Move the checkout somewhere like /srv or your home with o+x, or run make as a normal user."
  fi
  chmod 700 "$PG_DATA"

  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    port=$(free_port 5433)
    log "creating a local PostgreSQL cluster in .var/pg (port $port, trust auth)"
    if ! "${PG_USER_PREFIX[@]}" "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=trust \
      --encoding=UTF8 --no-locale >"$VAR/pg-initdb.log" 2>&1; then
      cat "$VAR/pg-initdb.log" >&2
      find "$PG_DATA" -mindepth 1 -delete  # a half-made cluster would block the next initdb
      die "initdb failed (log above)"
    fi
    # A unix socket path must fit in ~107 bytes; if ours would not, stay TCP-only.
    local sockets=$PG_SOCKETS
    [ $((${#sockets} + 20)) -lt 107 ] || sockets=
    cat >>"$PG_DATA/postgresql.conf" <<CONF

# --- Added by scripts/services.sh: a throwaway development server -----------
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockets'
# Development data only: trade crash safety for speed (tests create databases often).
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
  fi

  port=$(sed -nE 's/^port = ([0-9]+).*/\1/p' "$PG_DATA/postgresql.conf" | tail -n 1)
  if ! "${PG_USER_PREFIX[@]}" "$bindir/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "starting local PostgreSQL on 127.0.0.1:$port"
    if ! "${PG_USER_PREFIX[@]}" "$bindir/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null; then
      tail -n 20 "$PG_DATA/server.log" >&2 || true
      die "local PostgreSQL did not start (log: .var/pg/server.log)"
    fi
  fi
  echo "$port"
}

stop_local_pg() {
  [ -s "$PG_DATA/PG_VERSION" ] || return 0
  local bindir
  bindir=$(pg_bindir) || return 0
  pg_runas
  if "${PG_USER_PREFIX[@]}" "$bindir/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "stopping local PostgreSQL"
    "${PG_USER_PREFIX[@]}" "$bindir/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi
}

# --- Redis --------------------------------------------------------------------

# redis_ping HOST PORT [USER] [PASSWORD] — speaks the Redis protocol over
# bash's /dev/tcp, so no client needs installing. Returns 0 on PONG, 3 when the
# server answers but refuses us (auth), 1 when nothing answers.
redis_ping() {
  # shellcheck disable=SC2016  # the script expands its own $0..$3
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    if [ -n "$3" ]; then
      printf "AUTH %s\r\n" "${2:+$2 }$3" >&3
      IFS= read -r reply <&3 || exit 1
    fi
    printf "PING\r\n" >&3
    IFS= read -r reply <&3 || exit 1
    case $reply in +PONG*) exit 0 ;; -*) exit 3 ;; *) exit 1 ;; esac
  ' "$1" "$2" "${3:-}" "${4:-}" 2>/dev/null
}

# start_local_redis — start (creating on first use) the server in .var/redis; prints its port.
start_local_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p "$REDIS_DIR"
  local port i
  # The port is chosen once and remembered, so the URL in .var/env stays stable.
  [ -s "$REDIS_DIR/port" ] || free_port 6380 >"$REDIS_DIR/port"
  port=$(cat "$REDIS_DIR/port")
  if ! redis_ping 127.0.0.1 "$port"; then
    log "starting local Redis on 127.0.0.1:$port"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$REDIS_DIR" \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" >/dev/null
    for i in $(seq 50); do
      redis_ping 127.0.0.1 "$port" && break
      [ "$i" -lt 50 ] || { tail -n 20 "$REDIS_DIR/redis.log" >&2 || true; die "local Redis did not start (log: .var/redis/redis.log)"; }
      sleep 0.2
    done
  fi
  echo "$port"
}

stop_local_redis() {
  local pid
  [ -s "$REDIS_DIR/redis.pid" ] || return 0
  pid=$(cat "$REDIS_DIR/redis.pid")
  # Only signal the pid if it still is a redis-server (pids get reused).
  if grep -q redis "/proc/$pid/comm" 2>/dev/null; then
    log "stopping local Redis"
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

# --- Commands -------------------------------------------------------------------

cmd_start() {
  mkdir -p "$VAR"
  local database_url redis_url rc port local_pg="" local_redis=""

  wanted DATABASE_URL "$DEFAULT_DATABASE_URL"
  eval "$(parse_url "$WANTED" DB)"
  case $DB_SCHEME in postgres | postgresql | pgsql | postgis) ;; *) die "DATABASE_URL must be a postgres:// URL, got $(mask "$WANTED")" ;; esac
  database_url=
  if pg_answers "$DB_HOST" "${DB_PORT:-5432}"; then
    rc=0
    ensure_db "$WANTED" || rc=$?
    case $rc in
      0) database_url=$WANTED ;;
      2) log "PostgreSQL at ${DB_HOST:-socket}:${DB_PORT:-5432} went away" ;;
      *)
        [ "$EXPLICIT" = 0 ] ||
          die "PostgreSQL at ${DB_HOST:-socket}:${DB_PORT:-5432} answers but refused DATABASE_URL=$(mask "$WANTED") (reason above). Fix DATABASE_URL in your environment or .env."
        # Typically a distribution cluster that wants a password: keep out of its way.
        warn "PostgreSQL at ${DB_HOST:-socket}:${DB_PORT:-5432} does not accept the default login; using a project-local server instead"
        ;;
    esac
  else
    log "no PostgreSQL answers at ${DB_HOST:-socket}:${DB_PORT:-5432}; using a project-local server"
  fi
  if [ -z "$database_url" ]; then
    port=$(start_local_pg)
    database_url="postgres://postgres@127.0.0.1:$port/${DB_NAME:-triplane}"
    rc=0
    ensure_db "$database_url" || rc=$?
    [ "$rc" = 0 ] || die "the local PostgreSQL on port $port is not usable (log: .var/pg/server.log)"
    local_pg=" (local server, .var/pg)"
  fi

  wanted REDIS_URL "$DEFAULT_REDIS_URL"
  eval "$(parse_url "$WANTED" RD)"
  redis_url=
  if [ "$RD_SCHEME" != redis ]; then
    # rediss:// (TLS) or unix://: cannot probe with bash; trust the configuration.
    redis_url=$WANTED
  else
    rc=0
    redis_ping "${RD_HOST:-127.0.0.1}" "${RD_PORT:-6379}" "$RD_USER" "$RD_PASSWORD" || rc=$?
    case $rc in
      0) redis_url=$WANTED ;;
      3)
        [ "$EXPLICIT" = 0 ] ||
          die "Redis at ${RD_HOST}:${RD_PORT:-6379} answers but refused REDIS_URL=$(mask "$WANTED"). Fix REDIS_URL in your environment or .env."
        warn "Redis at ${RD_HOST}:${RD_PORT:-6379} wants a password; using a project-local server instead"
        ;;
      *) log "no Redis answers at ${RD_HOST:-127.0.0.1}:${RD_PORT:-6379}; using a project-local server" ;;
    esac
  fi
  if [ -z "$redis_url" ]; then
    port=$(start_local_redis)
    redis_url="redis://127.0.0.1:$port/${RD_NAME:-0}"
    local_redis=" (local server, .var/redis)"
  fi

  # Write atomically: a concurrent make must never source a half-written file.
  {
    echo "# Written by scripts/services.sh: the servers this checkout uses. Regenerated on every run."
    printf 'DATABASE_URL=%q\n' "$database_url"
    printf 'REDIS_URL=%q\n' "$redis_url"
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
  log "PostgreSQL: $(mask "$database_url")$local_pg"
  log "Redis:      $(mask "$redis_url")$local_redis"
}

cmd_stop() {
  stop_local_pg
  stop_local_redis
  rm -f "$ENV_FILE"  # its URLs may point at the servers just stopped
}

cmd_status() {
  if [ ! -f "$ENV_FILE" ]; then
    echo "no .var/env yet: run scripts/services.sh"
    return 0
  fi
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  eval "$(parse_url "$DATABASE_URL" DB)"
  eval "$(parse_url "$REDIS_URL" RD)"
  local pg=down rd=down
  pg_answers "$DB_HOST" "${DB_PORT:-5432}" && pg=up
  redis_ping "${RD_HOST:-127.0.0.1}" "${RD_PORT:-6379}" "$RD_USER" "$RD_PASSWORD" && rd=up
  echo "DATABASE_URL=$(mask "$DATABASE_URL")  [$pg]"
  echo "REDIS_URL=$(mask "$REDIS_URL")  [$rd]"
}

case ${1:-start} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "usage: scripts/services.sh [start|stop|status]" ;;
esac
