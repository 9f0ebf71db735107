#!/usr/bin/env bash
# Validates the served OpenAPI document with openapi-spec-validator, then fuzzes the HTTP API
# from it with schemathesis (both from PyPI, pinned, installed into var/fuzz-venv, never into the
# system): thousands of generated requests, and the
# run fails on any 5xx, any response that breaks the documented schema, an undocumented status
# code or content type. The gateway runs with the demo settings on its own ports and data.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
PORT="${FUZZ_PORT:-18180}"
REDIS_PORT="${FUZZ_REDIS_PORT:-16490}"
venv=var/fuzz-venv
if [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
fi

cargo build --quiet -p hotline-gateway
rm -rf var/fuzz-redis
log=var/fuzz-gateway.log
# config/demo.toml's signed partner reads its (public demo) secret from this variable.
HOTLINE_DEMO_PARTNER_SECRET="${HOTLINE_DEMO_PARTNER_SECRET:-demo-12345-platform-public-secret-never-deploy}" \
HOTLINE__HTTP__LISTEN="127.0.0.1:$PORT" HOTLINE__REDIS__LOCAL__PORT="$REDIS_PORT" \
  HOTLINE__REDIS__LOCAL__DIR=var/fuzz-redis HOTLINE__LOG__LEVEL=warn \
  target/debug/hotline-gateway serve --config config/demo.toml >"$log" 2>&1 &
gw=$!
trap 'kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$gw" 2>/dev/null || { echo "error: the gateway exited; its log:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

# The document itself first: a valid OpenAPI 3.1 document (parameters where they belong,
# webhooks, every $ref resolved), or the run fails before any request is generated.
curl -fsS "http://127.0.0.1:$PORT/openapi.json" -o var/fuzz-openapi.json
"$venv/bin/openapi-spec-validator" --validation-errors all var/fuzz-openapi.json

# demo-admin is a public demo token (config/demo.toml). A fixed seed keeps runs comparable.
"$venv/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  -H "Authorization: Bearer demo-admin" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples 10 --max-time 150 --seed 20261124 --no-color
