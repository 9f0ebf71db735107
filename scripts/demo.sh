#!/usr/bin/env bash
# Runs the gateway with its own Redis and demo tokens, sends it a few real-looking tickets from
# the three hotlines, shows where each one went, then has a partner hotline system sign a ticket
# and shows the callbacks it got back (through an outage of its own), and keeps serving until
# Ctrl-C.
#   scripts/demo.sh          build (release), run, send demo traffic, keep serving
#   scripts/demo.sh --once   the same, then stop (used by the test command as a smoke test)
# PROFILE=debug uses a debug build (faster to compile). PORT=8080 by default; the partner
# simulator listens on SIM_PORT, by default PORT + 10 (8090, as config/demo.toml's callback_url).
set -euo pipefail
cd "$(dirname "$0")/.."

once=false
[ "${1:-}" = "--once" ] && once=true
profile="${PROFILE:-release}"
port="${PORT:-8080}"
base="http://127.0.0.1:${port}"
sim_port="${SIM_PORT:-$((port + 10))}"
sim_base="http://127.0.0.1:${sim_port}"
# The demo partner's shared secret: public, like the demo tokens (config/demo.toml).
export HOTLINE_DEMO_PARTNER_SECRET="${HOTLINE_DEMO_PARTNER_SECRET:-demo-12345-platform-public-secret-never-deploy}"

scripts/ensure-redis.sh
scripts/ensure-postgres.sh
command -v curl >/dev/null 2>&1 || { echo "error: curl is needed for the demo traffic (apt-get install curl)" >&2; exit 1; }

# The partner simulator is built with the gateway package selected too, as the crash fault test
# builds the load generator, so both share their dependencies' builds.
if [ "$profile" = "release" ]; then
  cargo build --release --quiet
  cargo build --release --quiet -p hotline-gateway -p load-tests --bin partner-sim
  bin=target/release/hotline-gateway; sim=target/release/partner-sim
else
  cargo build --quiet
  cargo build --quiet -p hotline-gateway -p load-tests --bin partner-sim
  bin=target/debug/hotline-gateway; sim=target/debug/partner-sim
fi

log="var/demo-gateway.log"
sim_log="var/demo-partner-sim.log"
mkdir -p var
# config/demo.toml sends the demo partner's callbacks to port 8090; another SIM_PORT gets a copy
# of it that says so.
config=config/demo.toml
if [ "$sim_port" != 8090 ]; then
  config="var/demo-${port}.toml"
  sed "s#http://127.0.0.1:8090/callbacks#${sim_base}/callbacks#" config/demo.toml >"$config"
fi

gw=""; sim_pid=""
stop() {
  [ -n "$gw" ] && { kill -TERM "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; }
  [ -n "$sim_pid" ] && { kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
  return 0
}
trap stop EXIT
trap 'exit 130' INT TERM

"$sim" --listen "127.0.0.1:${sim_port}" --key-id demo-12345 --secret-env HOTLINE_DEMO_PARTNER_SECRET \
  >"$sim_log" 2>"var/demo-partner-sim.err" &
sim_pid=$!
HOTLINE__HTTP__LISTEN="127.0.0.1:${port}" "$bin" serve --config "$config" 2>"$log" &
gw=$!

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "$sim_base/control/mode" --data-binary ok 2>/dev/null && break
  kill -0 "$sim_pid" 2>/dev/null || { echo "error: the partner simulator exited:" >&2; cat var/demo-partner-sim.err >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null -X POST "$sim_base/control/mode" --data-binary ok ||
  { echo "error: the partner simulator did not answer on $sim_base; see var/demo-partner-sim.err" >&2; exit 1; }

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
echo "hotline-gateway is running at $base (Redis data in var/redis, its case archive's PostgreSQL in var/postgres, log in $log)"
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
echo "Partner callbacks (事件反馈): the 12345 platform signs a ticket (HMAC, no token) and its own"
echo "system, the partner simulator at $sim_base, hears back; it goes down for a moment."
# Waits until the simulator has printed a line matching $1 (at most 15 s).
wait_sim() {
  for _ in $(seq 1 150); do grep -q -- "$1" "$sim_log" && return 0; sleep 0.1; done
  echo "error: the partner simulator never got: $1; its log:" >&2; cat "$sim_log" var/demo-partner-sim.err >&2; exit 1
}
signed_body='{"source":"12345","external_id":"SQ-'"$run"'","received_at":"'"$now"'","channel":"app",
  "transfer":"automatic","caller":{"name":"刘女士","phone":"13905178866"},
  "region":{"code":"320812","town":"南闸街道"},"title":"装修公司拖欠工资",
  "text":"来电人反映在某装修公司做木工，公司拖欠两个月工资一万二千元，多次讨要无果，希望调解员帮忙协调。",
  "people_involved":1,"tags":["欠薪"]}'
printf '%s' "$signed_body" >var/demo-signed-ticket.json
# x-hotline-key, -timestamp, -nonce, -signature-version: 2 and -signature over the method, the
# path and exactly the bytes sent.
"$sim" sign --key-id demo-12345 --secret-env HOTLINE_DEMO_PARTNER_SECRET \
  --method POST --path /v1/tickets --body-file var/demo-signed-ticket.json >var/demo-signed-ticket.headers
out=$(curl -sS -X POST "$base/v1/tickets" -H 'content-type: application/json' \
      -H @var/demo-signed-ticket.headers --data-binary @var/demo-signed-ticket.json)
sid=$(printf '%s' "$out" | field id || true)
[ -n "$sid" ] || { echo "error: the signed ticket was refused: $out" >&2; exit 1; }
echo "  signed ticket SQ-$run -> $sid ($(printf '%s' "$out" | field queue || true))"
wait_sim "ticket_id=$sid event=ticket.accepted .* answered=200"
curl -fsS -o /dev/null -X POST "$sim_base/control/mode" --data-binary fail:503
echo "  the partner's system fails (partner-sim answers 503); mediator 王调解员 takes the ticket"
claim=$(curl -sS -X POST "$base/v1/agents/m-320812-01/claim" -H 'authorization: Bearer demo-mediator' \
        -H 'content-type: application/json' --data-binary '{}')
lease=$(printf '%s' "$claim" | field lease_id || true)
[ -n "$lease" ] || { echo "error: the mediator could not claim the ticket: $claim" >&2; exit 1; }
claimed=$(printf '%s' "$claim" | field id || true)
[ "$claimed" = "$sid" ] || { echo "error: the mediator claimed $claimed, left by an interrupted demo; remove var/redis to start afresh" >&2; exit 1; }
curl -fsS -o /dev/null -X POST "$base/v1/tickets/$sid/accept" -H 'authorization: Bearer demo-mediator' \
  -H 'content-type: application/json' --data-binary '{"lease_id":"'"$lease"'"}'
wait_sim "ticket_id=$sid event=ticket.assigned .* answered=503"
curl -fsS -o /dev/null -X POST "$sim_base/control/mode" --data-binary ok
echo "  the partner's system is back; the mediator resolves the ticket"
curl -fsS -o /dev/null -X POST "$base/v1/tickets/$sid/resolve" -H 'authorization: Bearer demo-mediator' \
  -H 'content-type: application/json' --data-binary '{"outcome":"mediated","summary":"双方达成协议，工资分两次结清"}'
wait_sim "ticket_id=$sid event=ticket.resolved .* answered=200"
echo "  callbacks the partner received (signatures verified; a failed one is retried, same delivery_id):"
printf '    %-18s %-16s %-8s %-10s %s\n' event ticket attempt signature answered
grep -- "ticket_id=$sid " "$sim_log" | sed 's/[a-z_]*=//g' |
  awk '{printf "    %-18s %-16s %-8s %-10s %s\n", $3, $2, $5, $6, $7}'
echo
echo "Case archive (一案一卷): the follow-up call closes the loop; config/demo.toml archives ended"
echo "tickets 5 s after they end (a day by default), into the gateway's own PostgreSQL."
curl -fsS -o /dev/null -X POST "$base/v1/tickets/$sid/follow_up" -H 'authorization: Bearer demo-supervisor' \
  -H 'content-type: application/json' --data-binary '{"satisfaction":5,"note":"回访：当事人满意"}'
pg_port="${HOTLINE__ARCHIVE__LOCAL__PORT:-6391}"
archived=""
for _ in $(seq 1 300); do
  archived=$(psql -qtA -h 127.0.0.1 -p "$pg_port" -U hotline hotline \
    -c "SELECT id || '  ' || status || '  ' || category || '  ' || jsonb_array_length(history) || ' events' FROM cases WHERE id = '$sid'" 2>/dev/null || true)
  [ -n "$archived" ] && break
  sleep 0.1
done
[ -n "$archived" ] || { echo "error: $sid did not reach the case archive within 30 s; see $log" >&2; exit 1; }
echo "  in PostgreSQL:   $archived"
read_back=$(curl -fsS "$base/v1/tickets/$sid" -H 'authorization: Bearer demo-supervisor')
echo "  read by the API: $sid $(printf '%s' "$read_back" | field status) (no longer in Redis; read from the archive, same body)"
echo
echo "Where to look (demo tokens are public; see config/demo.toml):"
echo "  queues:    curl -s $base/v1/queues -H 'authorization: Bearer demo-supervisor'"
echo "  a ticket:  curl -s $base/v1/tickets/<id> -H 'authorization: Bearer demo-supervisor'"
echo "  metrics:   curl -s $base/metrics | grep ^hotline_"
echo "  API:       $base/openapi.json"
echo "  callbacks: tail -f $sim_log   (partner simulator; make it fail: curl -d fail:503 $sim_base/control/mode)"
echo
curl -sS "$base/v1/queues" -H 'authorization: Bearer demo-supervisor' | tr '{' '\n' | grep -o '"name":"[^"]*","kind":"[^"]*","county":"[^"]*","depth":[0-9]*' | sed 's/"//g; s/,/  /g' | sed 's/^/  /'
echo
if $once; then
  echo "(--once: stopping)"
  exit 0
fi
echo "Serving until Ctrl-C."
wait "$gw"
