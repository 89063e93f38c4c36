package cli

import "github.com/llmo/llmo/internal/config"

// Keys of the shared .env file that only docker-compose.yml reads. They are
// registered so that llmo's strict .env check accepts them.
func init() {
	config.RegisterKeys("MODELS_DIR", "MODEL_MEMORY", "LLMO_IMAGE", "REDIS_MAXMEMORY", "EDGE_PORT",
		"PROMETHEUS_PORT", "ALERTMANAGER_PORT", "GRAFANA_PORT")
}
