#!/usr/bin/env bash
# Development runner (what a Procfile + honcho would do): the web server, a
# Celery worker and Celery beat in one terminal, each line prefixed with its
# name. Ctrl-C (or any one of them dying) stops all three.
# `make run` prepares everything first; this script only starts processes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

PORT=${PORT:-8000}
BIN=$ROOT/.venv/bin
[ -x "$BIN/python" ] || die "no virtualenv: run make venv"
# The servers chosen by scripts/services.sh (possibly project-local ones).
if [ -f .var/env ]; then set -a; . .var/env; set +a; fi
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base}
export PYTHONUNBUFFERED=1  # so prefixed log lines appear as they happen
# Links in e-mails sent by the worker (approval requests) point at this server.
export PUBLIC_URL_PORT=${PUBLIC_URL_PORT:-$PORT}

tcp_open 127.0.0.1 "$PORT" && die "port $PORT is already in use (another make run?). Use: make run PORT=8001"

names=() pids=()
# start NAME COMMAND... — each process gets its own session (setsid) so that we
# can signal its whole tree (runserver's autoreloader has a child) and so that
# Ctrl-C reaches only this script, which then stops everyone in order.
start() {
  local name=$1
  shift
  # The prefixing sed ignores Ctrl-C, so it keeps relaying the shutdown logs.
  setsid "$@" </dev/null > >(trap '' INT; exec sed -u "s/^/$(printf '%-7s|' "$name") /") 2>&1 &
  names+=("$name")
  pids+=("$!")
}

stopping=
stop_all() {
  [ -z "$stopping" ] || return 0
  stopping=1
  local pid i
  printf '\n==> stopping web, worker and beat\n' >&2
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  # Celery's warm shutdown lets running tasks finish; give up after 15 s.
  for i in $(seq 150); do
    local alive=
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -n "$alive" ] || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
# A requested stop is a normal end: exit 0 so make does not report an error.
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# Loopback only: the development server runs with DEBUG on.
start web "$BIN/python" manage.py runserver "127.0.0.1:$PORT"
start worker "$BIN/celery" -A config worker -l info
# Keep beat's schedule state out of the source tree.
start beat "$BIN/celery" -A config beat -l info --schedule "$ROOT/.var/celerybeat-schedule"

# Print the URLs once the web server accepts connections, so they are not
# buried under the startup logs; then wait until one of the processes exits.
banner_shown=
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      rc=0
      wait "${pids[$i]}" || rc=$?
      warn "${names[$i]} exited (status $rc); stopping the others"
      exit 1
    fi
  done
  if [ -z "$banner_shown" ] && tcp_open 127.0.0.1 "$PORT"; then
    banner_shown=1
    cat >&2 <<BANNER

  Triplane is running (Ctrl-C stops web, worker and beat):
    super-admin portal   http://localhost:$PORT/vendor/
    management portal    http://localhost:$PORT/partner/
    client dashboard     http://acme.localhost:$PORT/
    Django admin         http://localhost:$PORT/admin/
    API docs             http://localhost:$PORT/api/docs/
  Demo logins: printed by seed_demo above.

BANNER
  fi
  sleep 1
done
