#!/usr/bin/env bash
# Real client libraries (openai v6, ollama) used by Go tests through node
# scripts in test/clients. Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null 2>&1; then
	apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --prefix test/clients --no-audit --no-fund
