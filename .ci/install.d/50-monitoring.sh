#!/usr/bin/env bash
# Monitoring tests: Prometheus (prometheus, promtool), Alertmanager (amtool)
# and Chromium for the dashboard UI test, all from Debian's packages.
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's packages may start the daemons where an init system runs; the
# tests start their own Prometheus on free ports.
promtool --version | head -1
