#!/usr/bin/env bash
# The cache tests start a real redis-server on a free loopback port.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
	apt-get install -y -qq redis-server
fi
