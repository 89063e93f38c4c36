#!/usr/bin/env bash
# Deployment checks: docker-compose (config validation only; no engine here),
# Ansible + ansible-lint, and helm (built from source with the Go toolchain).
set -euo pipefail
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v ansible-playbook >/dev/null || need+=(ansible)
command -v ansible-lint >/dev/null || need+=(ansible-lint)
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v helm >/dev/null && [ ! -x "$(go env GOPATH)/bin/helm" ]; then
	go install helm.sh/helm/v3/cmd/helm@v3.16.4
fi
