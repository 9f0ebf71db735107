#!/usr/bin/env bash
# Runs the gateway with its own Redis and demo tokens, sends it a few real-looking tickets from
# the three hotlines, shows where each one went, and keeps serving until Ctrl-C.
#   scripts/demo.sh          build (release), run, send demo traffic, keep serving
#   scripts/demo.sh --once   the same, then stop (used by the test command as a smoke test)
# PROFILE=debug uses a debug build (faster to compile). PORT=8080 by default.
set -euo pipefail
cd "$(dirname "$0")/.."

once=false
[ "${1:-}" = "--once" ] && once=true
profile="${PROFILE:-release}"
port="${PORT:-8080}"
base="http://127.0.0.1:${port}"

scripts/ensure-redis.sh
command -v curl >/dev/null 2>&1 || { echo "error: curl is needed for the demo traffic (apt-get install curl)" >&2; exit 1; }

if [ "$profile" = "release" ]; then cargo build --release --quiet; bin=target/release/hotline-gateway
else cargo build --quiet; bin=target/debug/hotline-gateway; fi

log="var/demo-gateway.log"
mkdir -p var
HOTLINE__HTTP__LISTEN="127.0.0.1:${port}" "$bin" serve --config config/demo.toml 2>"$log" &
gw=$!
stop() { kill -TERM "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; }
trap stop EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$gw" 2>/dev/null || { echo "error: the gateway exited; its log:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "error: the gateway did not become ready; see $log" >&2; exit 1; }

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
run=$(date +%s)
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

echo
echo "hotline-gateway is running at $base (Redis data in var/redis, log in $log)"
echo
printf '%-8s %-18s %-20s %-15s %-8s %s\n' source ticket service category level queue
n=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  n=$((n + 1))
  body=${line//__NOW__/$now}
  body=${body//__RUN__/$run}
  src=$(printf '%s' "$body" | field source)
  out=$(curl -sS -X POST "$base/v1/tickets" -H 'authorization: Bearer demo-partner' \
        -H 'content-type: application/json' --data-binary "$body")
  id=$(printf '%s' "$out" | field id || true)
  [ -n "$id" ] || { echo "error: demo ticket $n was refused: $out" >&2; exit 1; }
  printf '%-8s %-18s %-20s %-15s %-8s %s\n' "$src" "$id" \
    "$(printf '%s' "$out" | field service)" "$(printf '%s' "$out" | field category)" \
    "$(printf '%s' "$out" | field warning_level)" "$(printf '%s' "$out" | field queue || true)"
  [ "$n" -eq 1 ] && first="$body"
done < scripts/demo-tickets.jsonl

code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/v1/tickets" -H 'authorization: Bearer demo-partner' \
       -H 'content-type: application/json' --data-binary "$first")
echo
[ "$code" = 200 ] || { echo "error: a retry of the first ticket got HTTP $code, expected 200" >&2; exit 1; }
echo "A partner retrying the first transfer gets HTTP $code and the same ticket (never a second one)."
echo
echo "Live transfer (人工转接): an operator passes two callers with legal questions to the duty lawyer."
curl -fsS -X POST "$base/v1/agents/l-320831-01/heartbeat" -H 'authorization: Bearer demo-lawyer' >/dev/null
for k in 1 2; do
  live_body='{"source":"12345","external_id":"LIVE-'"$run"'-'"$k"'","received_at":"'"$now"'","channel":"phone",
    "transfer":"one_click","region":{"code":"320831","town":"城关镇"},"title":"咨询劳动合同",
    "text":"我想咨询一下，公司没有和我签劳动合同，已经干了八个月，现在要辞退我，请问能不能要求双倍工资？","live":true}'
  out=$(curl -sS -X POST "$base/v1/tickets" -H 'authorization: Bearer demo-operator' \
        -H 'content-type: application/json' --data-binary "$live_body")
  msg=$(printf '%s' "$out" | grep -o '"message":"[^"]*"' | head -1 | cut -d'"' -f4)
  [ -n "$msg" ] || { echo "error: live transfer $k got no answer: $out" >&2; exit 1; }
  echo "  caller $k ($(printf '%s' "$out" | field id)): $msg"
done
echo
echo "Where to look (demo tokens are public; see config/demo.toml):"
echo "  queues:    curl -s $base/v1/queues -H 'authorization: Bearer demo-supervisor'"
echo "  a ticket:  curl -s $base/v1/tickets/<id> -H 'authorization: Bearer demo-supervisor'"
echo "  metrics:   curl -s $base/metrics | grep ^hotline_"
echo "  API:       $base/openapi.json"
echo
curl -sS "$base/v1/queues" -H 'authorization: Bearer demo-supervisor' | tr '{' '\n' | grep -o '"name":"[^"]*","kind":"[^"]*","county":"[^"]*","depth":[0-9]*' | sed 's/"//g; s/,/  /g' | sed 's/^/  /'
echo
if $once; then
  echo "(--once: stopping)"
  exit 0
fi
echo "Serving until Ctrl-C."
wait "$gw"
