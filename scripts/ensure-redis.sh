#!/usr/bin/env bash
# Makes sure `redis-server` is installed; installs it from Debian/Ubuntu packages when missing.
# Used by both README commands and by CI, so a fresh machine needs nothing done by hand.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server is not installed; installing it..." >&2
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "error: run as root or install sudo, or install Redis yourself (apt-get install redis-server)" >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
elif command -v brew >/dev/null 2>&1; then
  brew install redis
else
  echo "error: cannot install Redis here: install redis-server yourself, or set redis.url (HOTLINE__REDIS__URL)" >&2
  exit 1
fi
command -v redis-server >/dev/null 2>&1 || { echo "error: redis-server still not found after install" >&2; exit 1; }
echo "installed: $(redis-server --version)" >&2
