#!/usr/bin/env bash
# Runs every check: formatting, lints, unit and integration tests (which start their own
# redis-server on free ports), and the README's run command once as a smoke test.
# Installs redis-server first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-redis.sh
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== the README's run command, once (debug build, its own ports and data)"
rm -rf var/smoke-redis var/smoke-postgres
PROFILE=debug PORT="${SMOKE_PORT:-18080}" \
  HOTLINE__REDIS__LOCAL__PORT="${SMOKE_REDIS_PORT:-16390}" HOTLINE__REDIS__LOCAL__DIR=var/smoke-redis \
  HOTLINE__ARCHIVE__LOCAL__PORT="${SMOKE_PG_PORT:-16391}" HOTLINE__ARCHIVE__LOCAL__DIR=var/smoke-postgres \
  scripts/demo.sh --once
echo "== load-test smoke run: a few seconds; fails on any lost or duplicated ticket, asserts no speed"
cargo build --quiet -p hotline-gateway
cargo run --quiet -p load-tests -- --scenario steady --duration 3 --gateway-bin target/debug/hotline-gateway >/dev/null
cargo run --quiet -p load-tests -- --scenario work --duration 2 --backlog 300 --gateway-bin target/debug/hotline-gateway >/dev/null
echo "== the OpenAPI document validated, then the API fuzzed from it (schemathesis): no 5xx,"
echo "   nothing off the schema, every operation reached"
mkdir -p var
scripts/fuzz.sh >var/fuzz.log 2>&1 || { tail -80 var/fuzz.log; exit 1; }
grep -E "generated" var/fuzz.log | tail -1
cat var/fuzz-coverage.txt
echo "all checks passed"
