#!/usr/bin/env bash
# Validates the served OpenAPI document with openapi-spec-validator, then fuzzes the HTTP API from
# it with schemathesis (both from PyPI, pinned, installed into var/fuzz-venv, never into the
# system): thousands of generated requests in every phase (examples, coverage, fuzzing, and
# stateful sequences that follow the document's links from a new ticket to its reads and
# actions). The run fails on any 5xx, any response that breaks the documented schema, an
# undocumented status code or content type, and on any operation that was never reached: the
# table of what each operation answered is printed (scripts/fuzz_report.py) and kept in
# var/fuzz-coverage.txt. The gateway runs with the demo settings on its own ports and data;
# scripts/fuzz.toml says which demo token fuzzes which operation.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
PORT="${FUZZ_PORT:-18180}"
REDIS_PORT="${FUZZ_REDIS_PORT:-16490}"
PG_PORT="${FUZZ_PG_PORT:-16491}"
venv=var/fuzz-venv
installed() { "$venv/bin/pip" show "$1" 2>/dev/null | grep -qx "Version: $2"; }
if ! installed schemathesis "$SCHEMATHESIS_VERSION" \
  || ! installed openapi-spec-validator "$OPENAPI_SPEC_VALIDATOR_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
fi

cargo build --quiet -p hotline-gateway
rm -rf var/fuzz-redis var/fuzz-postgres
log=var/fuzz-gateway.log
# config/demo.toml's signed partner reads its (public demo) secret from this variable.
HOTLINE_DEMO_PARTNER_SECRET="${HOTLINE_DEMO_PARTNER_SECRET:-demo-12345-platform-public-secret-never-deploy}" \
HOTLINE__HTTP__LISTEN="127.0.0.1:$PORT" HOTLINE__REDIS__LOCAL__PORT="$REDIS_PORT" \
  HOTLINE__REDIS__LOCAL__DIR=var/fuzz-redis HOTLINE__LOG__LEVEL=warn \
  HOTLINE__ARCHIVE__LOCAL__PORT="$PG_PORT" HOTLINE__ARCHIVE__LOCAL__DIR=var/fuzz-postgres \
  target/debug/hotline-gateway serve --config config/demo.toml >"$log" 2>&1 &
gw=$!
trap 'kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$gw" 2>/dev/null || { echo "error: the gateway exited; its log:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

# The document itself first: a valid OpenAPI 3.1 document (parameters where they belong,
# links and webhooks well formed, every $ref resolved), or the run fails before any request.
doc=var/fuzz-openapi.json
curl -fsS "http://127.0.0.1:$PORT/openapi.json" -o "$doc"
"$venv/bin/openapi-spec-validator" --validation-errors all "$doc"

# A fixed seed keeps runs comparable; --max-time bounds the run (fuzzing and stateful sequences
# repeat until it is spent). Every request is recorded in a HAR file for the coverage table.
har=var/fuzz-requests.har
rm -f "$har"
status=0
"$venv/bin/schemathesis" --config-file scripts/fuzz.toml run "http://127.0.0.1:$PORT/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples 10 --max-time 150 --seed 20261124 --no-color \
  --report har --report-har-path "$har" || status=$?

echo
echo "What each operation answered (requests made by schemathesis; $doc fetched above):"
python3 scripts/fuzz_report.py "$doc" "$har" --seen "GET /openapi.json 200" \
  | tee var/fuzz-coverage.txt || status=1
exit "$status"
