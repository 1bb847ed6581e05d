#!/usr/bin/env bash
# Make sure the system Chromium that the Playwright tests drive exists
# (tests launch /usr/bin/chromium directly; no `playwright install`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

# Debian ships a real `chromium` package. On Ubuntu it is a snap wrapper that
# does not run in containers/CI; there, install Chromium from another source
# so that /usr/bin/chromium exists.
apt_install chromium
[ -x "$CHROMIUM" ] || die "$CHROMIUM still missing after installing the chromium package"
