# Shared helpers for scripts/*.sh and .ci/run. Source it; do not execute it.
# shellcheck shell=bash

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# A Python for small helpers: the virtualenv's starts fastest (a pyenv shim
# costs ~0.3 s a call); any python3 does, the helpers only use the stdlib.
if [ -x "${ROOT:-.}/.venv/bin/python" ]; then HOST_PY=$ROOT/.venv/bin/python; else HOST_PY=python3; fi

# apt_install PKG... — install Debian packages, or explain what to install.
# Only root installs: we never call sudo behind the user's back.
_apt_updated=
apt_install() {
  if ! is_root; then
    die "missing system packages: $*
       Install them, then re-run:   sudo apt-get update && sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "missing $* and this is not a Debian/Ubuntu system (no apt-get); install them with your package manager."
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$_apt_updated" ]; then
    log "apt-get update"
    apt-get update -qq
    _apt_updated=1
  fi
  log "apt-get install $*"
  apt-get install -y -qq "$@"
}

# tcp_open HOST PORT — true when something accepts TCP connections there.
tcp_open() {
  # shellcheck disable=SC2016  # $0/$1 expand in the child bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# free_port START — first port >= START that nothing listens on (loopback).
free_port() {
  local p=$1
  while tcp_open 127.0.0.1 "$p"; do p=$((p + 1)); done
  echo "$p"
}

# parse_url URL PREFIX — print shell assignments PREFIX_SCHEME/_HOST/_PORT/_USER/
# _PASSWORD/_NAME (NAME is the path without the leading slash). Use with eval.
parse_url() {
  "$HOST_PY" - "$1" "$2" <<'PY'
import shlex, sys, urllib.parse as up
url, prefix = sys.argv[1:]
p = up.urlsplit(url)
values = {
    "SCHEME": p.scheme,
    "HOST": up.unquote(p.hostname or ""),
    "PORT": str(p.port or ""),
    "USER": up.unquote(p.username or ""),
    "PASSWORD": up.unquote(p.password or ""),
    "NAME": up.unquote(p.path.lstrip("/")),
}
for key, value in values.items():
    print(f"{prefix}_{key}={shlex.quote(value)}")
PY
}

# dotenv_get KEY — the value KEY has in the repo's .env (last one wins), if any.
# Mirrors what django-environ reads, for the simple KEY=value / KEY="value" forms.
dotenv_get() {
  local file="$ROOT/.env"
  [ -f "$file" ] || return 0
  sed -nE "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" "$file" |
    tail -n 1 | sed -E "s/[[:space:]]+\$//; s/^(['\"])(.*)\\1\$/\\2/"
}
