# Monitoring: Prometheus config, rules and Alertmanager config checked and
# the alert rules unit-tested with Debian's promtool/amtool
# (.ci/install.d/50-monitoring.sh installs them). The Go side (dashboards,
# a real Prometheus against a running stack, the dashboard UI in Chromium)
# runs in `go test ./internal/monitoringtest/ ./internal/dashboard/`.
PROMTOOL ?= promtool
AMTOOL   ?= amtool
MONDIR   := deploy/monitoring

TEST_TARGETS += test-monitoring
.PHONY: test-monitoring
test-monitoring:
	$(PROMTOOL) check config $(MONDIR)/prometheus.yml
	$(PROMTOOL) check rules $(MONDIR)/rules/*.yml
	$(PROMTOOL) test rules $(MONDIR)/tests/*.yml
	$(AMTOOL) check-config $(MONDIR)/alertmanager.yml
