#!/usr/bin/env bash
# Idle cost of counties (issue #16): a gateway and its Redis with N counties configured, each
# holding one ticket with nothing due for hours, measured for S seconds by the CPU time
# (utime + stime in /proc/<pid>/stat) of the gateway and of redis-server.
#
#   scripts/idle_counties.sh [BIN] [N] [S]      # defaults: target/debug/hotline-gateway 200 60
#   LEGACY=1 scripts/idle_counties.sh /tmp/old-gateway   # a build without [counties]
#   CALLBACKS=1 scripts/idle_counties.sh                 # plus a partner with callbacks (idle)
#
# Prints one line: counties, seconds, gateway CPU %, redis CPU %, Redis commands per second.
set -euo pipefail
BIN=${1:-target/debug/hotline-gateway}
N=${2:-200}
S=${3:-60}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port); gport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
rpid=$!
token=idle-bench-partner
digest=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
codes=$(seq 1 "$N" | awk '{ printf "32%04d\n", $1 }')
{
  printf '[http]\nlisten = "127.0.0.1:%s"\n\n[redis]\nurl = "redis://127.0.0.1:%s"\n\n' "$gport" "$rport"
  printf '[log]\nformat = "json"\nlevel = "warn"\n\n'
  printf '[[auth.tokens]]\nname = "partner"\nrole = "partner"\nsha256 = "%s"\nrate_per_second = 0\n\n' "$digest"
  if [ -n "${CALLBACKS:-}" ]; then
    printf '%s' 0123456789abcdef0123456789abcdef >"$dir/partner.secret"
    printf '[[auth.partners]]\nname = "callbacks"\nkey_id = "cb"\nsecret_file = "%s"\n' "$dir/partner.secret"
    printf 'callback_url = "http://127.0.0.1:9/callback"\n\n'
  fi
  if [ -z "${LEGACY:-}" ]; then
    printf '[counties]\n'
    for c in $codes; do printf '"%s" = "县%s"\n' "$c" "$c"; done
  fi
} >"$dir/gw.toml"
"$BIN" serve --config "$dir/gw.toml" >"$dir/gw.log" 2>&1 &
gpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gport/readyz" >/dev/null && break; sleep 0.2; done
i=0
for c in $codes; do
  i=$((i + 1))
  curl -sf -o /dev/null -H "authorization: Bearer $token" -H 'content-type: application/json' \
    "http://127.0.0.1:$gport/v1/tickets" -d "{\"source\":\"12345\",\"external_id\":\"IDLE-$i\",
     \"received_at\":\"$(date -u +%FT%TZ)\",\"channel\":\"phone\",\"transfer\":\"manual\",
     \"region\":{\"code\":\"$c\"},\"title\":\"邻里噪音\",\"text\":\"楼上邻居装修噪音很大，协商不成，希望调解。\"}"
done
sleep 10
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cmds() { redis-cli -p "$rport" info stats | awk -F: '/^total_commands_processed/ { print $2+0 }'; }
g0=$(cpu $gpid); r0=$(cpu $rpid); c0=$(cmds)
sleep "$S"
g1=$(cpu $gpid); r1=$(cpu $rpid); c1=$(cmds)
hz=$(getconf CLK_TCK)
awk -v n="$N" -v s="$S" -v g=$((g1 - g0)) -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN {
  printf "counties %d, %d s: gateway %.1f %% CPU, redis-server %.1f %% CPU, %.0f Redis commands/s\n",
    n, s, 100 * g / hz / s, 100 * r / hz / s, c / s }'
