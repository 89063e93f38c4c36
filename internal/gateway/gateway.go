// Package gateway is llmo's front door: the OpenAI (and, through
// internal/ollama, Ollama) API over pools of model replicas. It composes the
// layers of CONTRACTS.md,
//
//	client -> CORS -> observe -> auth -> tap -> response cache -> proxy -> replica
//
// where observe parses the request once and records metrics, auth
// (internal/auth) admits it against keys and quotas, the response cache
// (internal/respcache) may answer it, and the proxy (gateway/proxy) routes
// it to a replica chosen by a balance policy (gateway/balance) among the
// replicas the registry (gateway/upstream) knows from flags, a config file
// and DNS (gateway/discovery) and self-registration.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/llmo/llmo/internal/gateway/discovery"
	"github.com/llmo/llmo/internal/gateway/proxy"
	"github.com/llmo/llmo/internal/gateway/stats"
	"github.com/llmo/llmo/internal/gateway/upstream"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// Gateway is a configured gateway service.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	srv    *service.Server
	reg    *upstream.Registry
	proxy  *proxy.Proxy
	ring   *stats.Ring
	layers *layers
	m      *metrics
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	v1     http.Handler // the in-process /v1 handler (auth, cache, proxy)
	dash   http.Handler // the dashboard handler, nil when there is none

	storageState atomic.Value // string: ok|down|disabled
	closeOnce    sync.Once
}

// New builds a gateway. Background work (health checks, discovery) runs
// until ctx ends or Close is called.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Gateway{cfg: cfg, log: log, start: time.Now(), ctx: ctx, cancel: cancel, ring: stats.New()}
	promReg := telemetry.NewRegistry()
	g.srv = service.New("gateway", cfg.Common, log, promReg)
	g.log = g.srv.Log
	g.reg = upstream.NewRegistry(ctx, upstream.Options{
		HealthInterval: cfg.HealthInterval, EjectAfter: cfg.EjectAfter, EjectTime: cfg.EjectTime, Log: g.log,
	})
	promReg.MustRegister(upstream.NewCollector(g.reg))
	var err error
	g.proxy, err = proxy.New(proxy.Config{
		Balancer: cfg.Balancer, PrefixChars: cfg.PrefixChars,
		ConnectTimeout: cfg.ConnectTimeout, FirstByteTimeout: cfg.FirstByteTimeout,
		StreamIdleTimeout: cfg.StreamIdleTimeout, TotalTimeout: cfg.TotalTimeout,
		MaxRetries: cfg.MaxRetries, RetryRatio: cfg.RetryBudget,
		Propagator: propagator(cfg.OTLPEndpoint),
	}, g.reg, g.ring, promReg, g.log)
	if err != nil {
		cancel()
		return nil, err
	}
	g.m = newMetrics(promReg)
	fail := func(err error) (*Gateway, error) { cancel(); g.proxy.Close(); return nil, err }

	static := make([]upstream.Entry, 0, len(cfg.Replicas))
	for _, u := range cfg.Replicas {
		static = append(static, upstream.Entry{URL: u})
	}
	if err := g.reg.Set(upstream.Static, static); err != nil {
		return fail(err)
	}
	if cfg.ConfigFile != "" {
		if err := discovery.WatchFile(ctx, cfg.ConfigFile, 2*time.Second, g.reg, g.log); err != nil {
			return fail(err)
		}
	}
	if len(cfg.ReplicaDNS) > 0 {
		discovery.WatchDNS(ctx, net.DefaultResolver, cfg.ReplicaDNS, cfg.DNSInterval, g.reg, g.log)
	}
	if g.layers, err = g.buildLayers(ctx); err != nil {
		return fail(err)
	}
	g.storageState.Store("disabled")
	if cfg.StorageURL != "" {
		g.storageState.Store("down")
		go g.watchStorage(ctx)
	}
	if len(cfg.Replicas)+len(cfg.ReplicaDNS) == 0 && cfg.ConfigFile == "" {
		g.log.Warn("no replicas configured; waiting for replicas to register at POST /admin/replicas")
	}
	g.routes()
	g.srv.SetReady()
	return g, nil
}

// propagator is the trace propagator for upstream requests when tracing is
// configured (the service framework then wraps the handler in a server
// span), nil otherwise.
func propagator(otlpEndpoint string) propagation.TextMapPropagator {
	if otlpEndpoint == "" {
		return nil
	}
	return telemetry.Propagator()
}

// Server is the gateway's HTTP server (API port).
func (g *Gateway) Server() *service.Server { return g.srv }

// Handler is the public API handler with the framework's middleware:
// /v1, /api, /admin, /health, /ready, /metrics.
func (g *Gateway) Handler() http.Handler { return g.srv.Handler() }

// Registry is the replica registry (for tests and the monolith).
func (g *Gateway) Registry() *upstream.Registry { return g.reg }

// Close stops background work and drops idle upstream connections.
func (g *Gateway) Close() {
	g.closeOnce.Do(func() {
		g.cancel()
		if g.layers != nil {
			g.layers.close()
		}
		g.proxy.Close()
	})
}

// ListenAndServe serves the API on cfg.Port and, when a dashboard is built
// in and cfg.DashboardPort is not 0, the dashboard on its own port, until
// ctx ends; then it drains.
func (g *Gateway) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(g.cfg.Host, fmt.Sprint(g.cfg.Port)))
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	var dln net.Listener
	if g.dash != nil && g.cfg.DashboardPort != 0 {
		if dln, err = net.Listen("tcp", net.JoinHostPort(g.cfg.Host, fmt.Sprint(g.cfg.DashboardPort))); err != nil {
			ln.Close()
			return fmt.Errorf("gateway: dashboard listen: %w", err)
		}
	}
	return g.Serve(ctx, ln, dln)
}

// Serve is ListenAndServe on given listeners; dln may be nil.
func (g *Gateway) Serve(ctx context.Context, ln, dln net.Listener) error {
	defer g.Close()
	if dln == nil {
		return g.srv.Serve(ctx, ln)
	}
	dsrv := service.New("dashboard", g.cfg.Common, g.log, nil)
	dsrv.Mux.Handle("/", g.dash)
	dsrv.SetReady()
	errc := make(chan error, 1)
	go func() { errc <- dsrv.Serve(ctx, dln) }()
	err := g.srv.Serve(ctx, ln)
	if derr := <-errc; err == nil {
		err = derr
	}
	return err
}

func (g *Gateway) watchStorage(ctx context.Context) {
	client := &http.Client{Timeout: 2 * time.Second}
	check := func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.StorageURL+"/health", nil)
		if err != nil {
			g.storageState.Store("down")
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			g.storageState.Store("down")
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			g.storageState.Store("ok")
		} else {
			g.storageState.Store("down")
		}
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
