#!/usr/bin/env bash
# Compares the monolith (llmo up --monolith) with the microservices
# (llmo up) on this machine: start-up time to a servable model, resident
# memory of all llmo processes, and latency at the same load (wrk).
#
#   scripts/compare-modes.sh [MODEL] [CONNECTIONS] [DURATION]
#
# Requests are non-deterministic (temperature 1), so the response cache does
# not serve them and both modes do the same model work.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-../shared/models/stories260K.gguf}"
conns="${2:-4}"
dur="${3:-20s}"
port=19500
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
make -s build
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"MODEL_ID","prompt":"Once upon a time","max_tokens":16,"temperature":1}'
LUA

rss_kb() { # total VmRSS of every llmo process under this run
	local total=0
	for p in $(pgrep -f "bin/llmo (up|serve)" || true); do
		v=$(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0)
		total=$((total + v))
	done
	echo $total
}

run_mode() {
	local name="$1"; shift
	local data; data=$(mktemp -d)
	local log="$data/up.log"
	local t0; t0=$(date +%s.%N)
	LLMO_AUTH=off bin/llmo up --port $port --dashboard-port 0 --model "$model" --data-dir "$data" "$@" >"$log" 2>&1 &
	local pid=$!
	for _ in $(seq 1 600); do grep -q "llmo is up" "$log" && break; sleep 0.1; done
	local t1; t1=$(date +%s.%N)
	local id; id=$(curl -s localhost:$port/v1/models | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
	sed -i "s/MODEL_ID/$id/; s/\"model\":\"[^\"]*\"/\"model\":\"$id\"/" "$lua"
	wrk -t1 -c1 -d3s -s "$lua" http://127.0.0.1:$port/v1/completions >/dev/null # warm-up
	local idle; idle=$(rss_kb)
	local out; out=$(wrk -t2 -c"$conns" -d"$dur" --latency -s "$lua" http://127.0.0.1:$port/v1/completions)
	local loaded; loaded=$(rss_kb)
	kill -INT $pid; wait $pid 2>/dev/null || true
	printf '%s\tstartup_s=%.2f\trss_idle_mb=%d\trss_loaded_mb=%d\t' "$name" "$(echo "$t1 - $t0" | bc)" $((idle / 1024)) $((loaded / 1024))
	echo "$out" | awk '/Requests\/sec/{printf "req_s=%s\t", $2} /^ +50%/{printf "p50=%s\t", $2} /^ +99%/{printf "p99=%s\t", $2} /Non-2xx/{printf "non2xx=%s\t", $4}'
	echo
	rm -rf "$data"
}

echo "model=$model connections=$conns duration=$dur cores=$(nproc)"
run_mode monolith --monolith
run_mode microservices --replicas 1
run_mode microservices-2 --replicas 2
rm -f "$lua"
