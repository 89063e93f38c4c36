#!/usr/bin/env bash
# Latency of a response-cache hit against a miss through the whole stack
# (gateway -> cache service -> model replica), for the memory and the Redis
# backend of the cache service. Needs wrk and redis-server.
#
#   scripts/cache-latency.sh [MODEL] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-../shared/models/synth-15m-q8_0.gguf}"
dur="${2:-8s}"
port=19600 rport=16399
id=$(basename "$model" .gguf)
make -s build
hit=$(mktemp --suffix=.lua) miss=$(mktemp --suffix=.lua)
cat >"$hit" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"$id","prompt":"Once upon a time","max_tokens":16,"temperature":0}'
LUA
# Deterministic (cacheable) but unique prompts: every request is a miss.
cat >"$miss" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"model":"$id","prompt":"Once upon a time ' .. n .. math.random(1e9) .. '","max_tokens":16,"temperature":0}')
end
LUA
redis-server --port $rport --save '' --appendonly no --daemonize yes >/dev/null
trap 'redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true; rm -f "$hit" "$miss"' EXIT

measure() {
	local name=$1; shift
	local d; d=$(mktemp -d)
	LLMO_AUTH=off bin/llmo up --port $port --dashboard-port 0 --replicas 1 --model "$model" --data-dir "$d" "$@" >"$d/log" 2>&1 &
	local pid=$!
	for _ in $(seq 1 300); do grep -q "llmo is up" "$d/log" && break; sleep 0.2; done
	wrk -t1 -c1 -d1s -s "$hit" http://127.0.0.1:$port/v1/completions >/dev/null # fill
	printf '%s hit:  ' "$name"; wrk -t1 -c1 -d"$dur" --latency -s "$hit" http://127.0.0.1:$port/v1/completions | awk '/^ +50%/{printf "p50=%s ", $2} /^ +99%/{printf "p99=%s\n", $2}'
	printf '%s miss: ' "$name"; wrk -t1 -c1 -d"$dur" --latency -s "$miss" http://127.0.0.1:$port/v1/completions | awk '/^ +50%/{printf "p50=%s ", $2} /^ +99%/{printf "p99=%s\n", $2}'
	kill -INT $pid; wait $pid 2>/dev/null || true
	rm -rf "$d"
}
measure memory
measure redis --redis redis://127.0.0.1:$rport/0
