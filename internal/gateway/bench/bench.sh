#!/usr/bin/env bash
# Proxy-overhead benchmark: the llmo gateway vs nginx and Caddy (Debian
# packages) proxying the same fast OpenAI-shaped upstream (fakeupstream),
# measured with wrk. Not run by `make test`.
#
#   internal/gateway/bench/bench.sh            # builds llmo and fakeupstream
#   LLMO_BIN=/path/to/llmo DURATION=10s CONNS=64 internal/gateway/bench/bench.sh
#   LLMO_BASE_BIN=/path/to/older/llmo ...   # adds an "llmo-base" row (A/B under the same load)
#
# Needs: apt-get install -y nginx caddy wrk
# Prints requests/s at CONNS connections, the proxy's CPU time per request
# during that run (user+system, from /proc; steadier than req/s when other
# work shares the machine), p50/p99 latency at LAT_CONNS (4) connections,
# and the latency each proxy adds over calling the upstream directly.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
LAT_CONNS=${LAT_CONNS:-4}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

for tool in nginx caddy wrk; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y nginx caddy wrk" >&2; exit 1; }
done

LLMO_BIN=${LLMO_BIN:-$WORK/llmo}
[ -x "$LLMO_BIN" ] || go build -o "$LLMO_BIN" ./cmd/llmo
go build -o "$WORK/fakeupstream" ./internal/gateway/bench/fakeupstream

UP=19100 GW=19200 NG=19300 CA=19400 GB=19500
"$WORK/fakeupstream" -addr 127.0.0.1:$UP -model fake & PIDS+=($!)
"$LLMO_BIN" serve gateway --port $GW --dashboard-port 0 --replica http://127.0.0.1:$UP \
  --auth off --log-level warn >"$WORK/gw.log" 2>&1 & PIDS+=($!)
declare -A PROC=([$UP]=${PIDS[0]} [$GW]=$!)
TARGETS="llmo:$GW nginx:$NG caddy:$CA"
if [ -n "${LLMO_BASE_BIN:-}" ]; then
  "$LLMO_BASE_BIN" serve gateway --port $GB --dashboard-port 0 --replica http://127.0.0.1:$UP \
    --auth off --log-level warn >"$WORK/gwb.log" 2>&1 & PIDS+=($!)
  PROC[$GB]=$!
  TARGETS="llmo-base:$GB llmo:$GW nginx:$NG caddy:$CA"
fi

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:$UP; keepalive 256; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' & PIDS+=($!)
PROC[$NG]=$!

cat >"$WORK/Caddyfile" <<CADDY
{
  admin off
  auto_https off
}
:$CA {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:$UP
}
CADDY
XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 & PIDS+=($!)
PROC[$CA]=$!

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"fake","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in five words."}],"max_tokens":16,"temperature":0}'
LUA

for port in "${!PROC[@]}"; do
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null -H 'Content-Type: application/json' -d '{"model":"fake","messages":[{"role":"user","content":"x"}]}' http://127.0.0.1:$port/v1/chat/completions; then break; fi
    sleep 0.1
  done
done

# ticks PID: CPU clock ticks (user+system) of PID and its children
# processes (nginx's workers).
ticks() {
  local t=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat)))
  done
  echo $t
}

# run PORT -> "rps cpu_us_per_req p50_ms p99_ms"
run() {
  local port=$1 pid=${PROC[$1]}
  wrk -t2 -c"$CONNS" -d2s -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null # warm-up
  local out rps n t0 t1 lat
  t0=$(ticks "$pid")
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/chat/completions")
  t1=$(ticks "$pid")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  lat=$(wrk -t1 -c"$LAT_CONNS" -d"$DURATION" --latency -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/chat/completions" |
    awk 'function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
         $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} END {printf "%.3f %.3f", p50, p99}')
  echo "$rps $(echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l) $lat"
}

echo "upstream: gwtest fakeupstream; wrk: $CONNS conns for req/s, $LAT_CONNS conns for latency; $DURATION each; $(nproc) CPUs"
read -r d_rps d_cpu d_p50 d_p99 < <(run $UP)
printf "%-10s %10s %11s %9s %9s %10s %10s\n" target "req/s" "cpu us/req" "p50 ms" "p99 ms" "+p50 ms" "+p99 ms"
printf "%-10s %10.0f %11s %9.3f %9.3f %10s %10s\n" direct "$d_rps" "($(printf %.0f "$d_cpu"))" "$d_p50" "$d_p99" - -
for t in $TARGETS; do
  name=${t%%:*} port=${t##*:}
  read -r rps cpu p50 p99 < <(run "$port")
  printf "%-10s %10.0f %11.0f %9.3f %9.3f %10.3f %10.3f\n" "$name" "$rps" "$cpu" "$p50" "$p99" \
    "$(echo "$p50 - $d_p50" | bc -l)" "$(echo "$p99 - $d_p99" | bc -l)"
done
echo "(direct's cpu us/req is the upstream's own; the proxies' figures are the proxy process alone)"
