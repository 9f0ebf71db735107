#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, postgres) are installed; installs Debian's
# `postgresql` package when they are missing. Used by both README commands and by CI, so a fresh
# machine needs nothing done by hand. The gateway and the tests run their own servers from these
# binaries (src/local_postgres.rs); the machine's own PostgreSQL service is not used, so the
# package is installed without starting it.
set -euo pipefail

have_initdb() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if have_initdb && { [ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1; }; then
  exit 0
fi
echo "PostgreSQL is not installed; installing Debian's postgresql package..." >&2
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "error: run as root or install sudo, or install PostgreSQL yourself (apt-get install postgresql)" >&2
      exit 1
    fi
  fi
  # A policy-rc.d that says "no" keeps the package's system service from being started, where
  # none is there already (it is restored afterwards); the service is not needed.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=true
  fi
  cleanup() { if $made_policy; then $SUDO rm -f "$policy"; fi; }
  trap cleanup EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
elif command -v brew >/dev/null 2>&1; then
  brew install postgresql
else
  echo "error: cannot install PostgreSQL here: install it yourself (initdb and postgres), or set archive.url (HOTLINE__ARCHIVE__URL)" >&2
  exit 1
fi
have_initdb || { echo "error: initdb still not found after install" >&2; exit 1; }
echo "installed: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || command -v initdb)" >&2
