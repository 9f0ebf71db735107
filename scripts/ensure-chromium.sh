#!/usr/bin/env bash
# Makes sure the dashboard's browser test can run: Debian's `chromium` at /usr/bin/chromium (the
# test drives a real headless browser, and no browser build is downloaded from elsewhere because
# the network may be closed to everything but package registries), and the Node packages of
# tests/dashboard (playwright-core, pinned in its package-lock.json) installed with `npm ci`.
# Like scripts/ensure-redis.sh: a fresh machine and CI need nothing done by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium is not installed; installing Debian's package..." >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here: install Chromium yourself so that /usr/bin/chromium exists" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "error: run as root or install sudo, or install chromium yourself (apt-get install chromium)" >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  [ -x /usr/bin/chromium ] || { echo "error: /usr/bin/chromium still missing after install" >&2; exit 1; }
  echo "installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)" >&2
fi

if [ ! -d "$ROOT/tests/dashboard/node_modules/playwright-core" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is missing: install Node.js (apt-get install nodejs npm)" >&2; exit 1; }
  echo "installing the browser test's Node packages (npm ci)..." >&2
  # playwright-core never downloads a browser itself; the variable only makes that explicit.
  (cd "$ROOT/tests/dashboard" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
