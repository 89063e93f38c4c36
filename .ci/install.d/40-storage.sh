#!/usr/bin/env bash
# Tools the storage tests drive: crane and versitygw (go install), skopeo and
# docker-registry (CNCF Distribution, the reference registry) from Debian.
set -euo pipefail
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
gobin="$(go env GOPATH)/bin"
[ -x "$gobin/crane" ] || go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
[ -x "$gobin/versitygw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
