package gateway

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/gateway/balance"
	"github.com/llmo/llmo/internal/gateway/upstream"
	"github.com/llmo/llmo/internal/service"
)

// Config is `llmo serve gateway`'s configuration.
type Config struct {
	service.Common
	Layers

	Port          int           `flag:"port" env:"API_PORT" default:"8000" help:"HTTP port of the public API"`
	DashboardPort int           `flag:"dashboard-port" env:"DASHBOARD_PORT" default:"8080" help:"HTTP port of the web dashboard (0 disables it)"`
	Replicas      []string      `flag:"replica" env:"LLMO_REPLICAS" help:"model replica base URL (repeatable); any OpenAI-compatible server"`
	ReplicaDNS    []string      `flag:"replica-dns" env:"LLMO_REPLICA_DNS" help:"NAME:PORT resolved to one replica per address, re-resolved periodically (a Kubernetes headless Service)"`
	DNSInterval   time.Duration `flag:"dns-interval" env:"LLMO_DNS_INTERVAL" default:"10s" help:"how often --replica-dns names are re-resolved"`
	ConfigFile    string        `flag:"config" env:"LLMO_GATEWAY_CONFIG" help:"YAML file listing replicas (hot-reloaded on change; see docs/gateway.md)"`
	CacheURL      string        `flag:"cache" env:"LLMO_CACHE_URL" help:"response cache: http(s)://cache-service, redis://..., memory, or empty for none"`
	StorageURL    string        `flag:"storage" env:"LLMO_STORAGE" help:"storage service URL, reported by /api/health"`
	CORSOrigins   []string      `flag:"cors-origin" env:"LLMO_CORS_ORIGINS" help:"origin allowed to call the API from a browser (repeatable; * for any)"`

	Balancer    string `flag:"balancer" env:"LLMO_BALANCER" default:"least-loaded" help:"load balancing: least-loaded, prefix or round-robin"`
	PrefixChars int    `flag:"prefix-chars" env:"LLMO_PREFIX_CHARS" default:"256" help:"prompt bytes hashed for prefix affinity"`

	HealthInterval    time.Duration `flag:"health-interval" env:"LLMO_HEALTH_INTERVAL" default:"1s" help:"active /ready check and /metrics scrape period per replica"`
	EjectAfter        int           `flag:"eject-after" env:"LLMO_EJECT_AFTER" default:"3" help:"consecutive failures that eject a replica"`
	EjectTime         time.Duration `flag:"eject-time" env:"LLMO_EJECT_TIME" default:"5s" help:"base ejection time (doubles on repeats, up to 8x)"`
	ConnectTimeout    time.Duration `flag:"connect-timeout" env:"LLMO_CONNECT_TIMEOUT" default:"2s" help:"upstream TCP connect timeout"`
	FirstByteTimeout  time.Duration `flag:"first-byte-timeout" env:"LLMO_FIRST_BYTE_TIMEOUT" default:"120s" help:"time allowed until upstream response headers"`
	StreamIdleTimeout time.Duration `flag:"stream-idle-timeout" env:"LLMO_STREAM_IDLE_TIMEOUT" default:"60s" help:"longest silence allowed inside a stream"`
	TotalTimeout      time.Duration `flag:"total-timeout" env:"LLMO_TOTAL_TIMEOUT" default:"10m" help:"time allowed for a whole request"`
	MaxRetries        int           `flag:"max-retries" env:"LLMO_MAX_RETRIES" default:"2" help:"retries after the first attempt (before the first byte only)"`
	RetryBudget       float64       `flag:"retry-budget" env:"LLMO_RETRY_BUDGET" default:"0.2" help:"retries allowed per request on average, besides 10/s always allowed"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if err := c.Layers.Validate(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 || c.DashboardPort < 0 || c.DashboardPort > 65535 {
		return fmt.Errorf("--port and --dashboard-port must be 0..65535")
	}
	if _, err := balance.New[*upstream.Replica](c.Balancer); err != nil {
		return fmt.Errorf("--balancer: %w", err)
	}
	for _, r := range c.Replicas {
		if _, _, err := upstream.NormalizeURL(r); err != nil {
			return fmt.Errorf("--replica: %w", err)
		}
	}
	for _, d := range c.ReplicaDNS {
		host, port, err := net.SplitHostPort(d)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("--replica-dns %q: want NAME:PORT", d)
		}
	}
	for _, o := range c.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return fmt.Errorf("--cors-origin %q: want * or an origin such as https://app.example.com", o)
		}
	}
	if c.PrefixChars < 1 || c.PrefixChars > 1<<20 {
		return fmt.Errorf("--prefix-chars must be 1..1048576")
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		return fmt.Errorf("--max-retries must be 0..10")
	}
	if c.RetryBudget < 0 || c.RetryBudget > 10 {
		return fmt.Errorf("--retry-budget must be 0..10")
	}
	if c.EjectAfter < 1 {
		return fmt.Errorf("--eject-after must be at least 1")
	}
	for name, d := range map[string]time.Duration{"--health-interval": c.HealthInterval, "--eject-time": c.EjectTime,
		"--connect-timeout": c.ConnectTimeout, "--first-byte-timeout": c.FirstByteTimeout,
		"--stream-idle-timeout": c.StreamIdleTimeout, "--total-timeout": c.TotalTimeout, "--dns-interval": c.DNSInterval} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	return nil
}
