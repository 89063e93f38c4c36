#!/usr/bin/env bash
# apt lists are needed before any apt-get install; refresh them once.
set -euo pipefail
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -720 2>/dev/null | head -1)" ]; then
	apt-get update -qq
fi
