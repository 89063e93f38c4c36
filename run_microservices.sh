#!/usr/bin/env bash
# Docker Compose front end, as in the original design:
#   ./run_microservices.sh build            build the llmo image
#   ./run_microservices.sh run [profile..]  start the stack (profiles: edge, monitoring)
#   ./run_microservices.sh test             run the e2e suite against the running stack
#   ./run_microservices.sh stop             stop and remove the containers
#   ./run_microservices.sh logs [service]   follow logs
#   ./run_microservices.sh status           containers and llmo's own view (llmo status)
set -euo pipefail
cd "$(dirname "$0")"

compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose "$@"
	elif command -v docker-compose >/dev/null 2>&1; then
		docker-compose "$@"
	else
		echo "error: neither 'docker compose' nor 'docker-compose' is installed" >&2
		exit 1
	fi
}

need_engine() {
	if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
		cat >&2 <<'MSG'
error: no Docker engine is running here, so the Compose stack cannot start.
Run the same services as local processes instead:
    make run          # builds llmo and runs `llmo up` (gateway, cache, storage, model replicas)
MSG
		exit 1
	fi
}

api_port() { echo "${API_PORT:-$(grep -s '^API_PORT=' .env | cut -d= -f2 | cut -d' ' -f1)}"; }

cmd="${1:-}"
shift || true
case "$cmd" in
build)
	need_engine
	compose build "$@"
	;;
run)
	need_engine
	mkdir -p models
	if [ -z "$(ls models/*.gguf 2>/dev/null)" ] && [ -z "${MODEL_PATH:-}" ]; then
		echo "note: put a GGUF model at ./models/model.gguf (or set MODEL_PATH)" >&2
	fi
	args=()
	for p in "$@"; do args+=(--profile "$p"); done
	compose "${args[@]}" up -d
	echo "gateway: http://localhost:$(api_port || true)"
	;;
test)
	port="$(api_port)"
	port="${port:-8000}"
	LLMO_E2E_URL="http://127.0.0.1:${port}" go test -count=1 -run 'TestRunningStack' ./internal/e2e/...
	;;
stop)
	need_engine
	compose --profile edge --profile monitoring down "$@"
	;;
logs)
	need_engine
	compose logs -f "$@"
	;;
status)
	need_engine
	compose ps
	port="$(api_port)"
	if command -v llmo >/dev/null 2>&1; then llmo status --gateway "http://127.0.0.1:${port:-8000}" || true
	elif [ -x bin/llmo ]; then bin/llmo status --gateway "http://127.0.0.1:${port:-8000}" || true; fi
	;;
*)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	[ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || { echo "unknown command: $cmd" >&2; exit 2; }
	;;
esac
