// Package monitoringtest holds the monitoring tests that need a running llmo
// stack: the Grafana dashboards and Prometheus rules are checked against the
// metrics real services export, a real Prometheus scrapes a real stack and
// fires the replica-down alert, and headless Chromium drives the gateway's
// dashboard. The configs under test live in deploy/monitoring.
package monitoringtest
