// Package service is the HTTP framework every llmo service runs on: typed
// common config, timeouts, body limits, request ids, access logs, metrics,
// /health, /ready, /metrics, error envelopes and graceful drain.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/telemetry"
)

// Common is the configuration every service shares. Services embed it in
// their own Config.
type Common struct {
	Host              string        `flag:"host" env:"LLMO_HOST" default:"127.0.0.1" help:"address to listen on (0.0.0.0 for all interfaces)"`
	LogFormat         string        `flag:"log-format" env:"LOG_FORMAT" default:"text" help:"log format: text or json"`
	LogLevel          string        `flag:"log-level" env:"LOG_LEVEL" default:"info" help:"log level: debug, info, warn or error"`
	DrainTimeout      time.Duration `flag:"drain-timeout" env:"DRAIN_TIMEOUT" default:"30s" help:"how long in-flight requests may run after SIGTERM"`
	MaxBodyBytes      int64         `flag:"max-body-bytes" env:"MAX_BODY_BYTES" default:"8388608" help:"largest request body accepted (413 above it)"`
	ReadHeaderTimeout time.Duration `flag:"read-header-timeout" env:"READ_HEADER_TIMEOUT" default:"10s" help:"time allowed to send request headers (slowloris guard)"`
	IdleTimeout       time.Duration `flag:"idle-timeout" env:"IDLE_TIMEOUT" default:"120s" help:"keep-alive idle timeout"`
	TLSCert           string        `flag:"tls-cert" env:"TLS_CERT" help:"TLS certificate file (PEM); serves HTTPS with --tls-key"`
	TLSKey            string        `flag:"tls-key" env:"TLS_KEY" help:"TLS private key file (PEM)"`
	OTLPEndpoint      string        `flag:"otlp-endpoint" env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP/HTTP endpoint for traces; tracing is off when empty"`
}

// Validate checks the shared fields.
func (c *Common) Validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("--max-body-bytes must be positive")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	return nil
}

// Check is a named probe run by /health or /ready. It returns nil when all
// is well and otherwise an error whose text is the reason shown.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server is one llmo service's HTTP server.
type Server struct {
	Name     string
	Log      *slog.Logger
	Registry *prometheus.Registry
	Mux      *http.ServeMux
	common   Common

	draining  atomic.Bool
	notReady  atomic.Pointer[string] // reason the service is not ready; nil = ready
	mu        sync.Mutex
	ready     []Check
	health    []Check
	onDrain   []func()
	metrics   *httpMetrics
	handler   http.Handler
	inflight  sync.WaitGroup
	srvMu     sync.Mutex
	httpSrv   *http.Server
	boundAddr atomic.Pointer[string]

	traceShutdown func(context.Context) error // flushes spans; nil without tracing
}

// New builds a Server. It starts "not ready: starting" until SetReady is
// called; services that have nothing to warm up call SetReady at once.
func New(name string, c Common, log *slog.Logger, reg *prometheus.Registry) *Server {
	if reg == nil {
		reg = telemetry.NewRegistry()
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{Name: name, Log: log.With("service", name), Registry: reg, Mux: http.NewServeMux(), common: c}
	s.metrics = newHTTPMetrics(reg)
	s.SetNotReady("starting")
	s.Mux.HandleFunc("GET /health", s.serveHealth)
	s.Mux.HandleFunc("GET /ready", s.serveReady)
	s.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	var h http.Handler = s.Mux
	if c.OTLPEndpoint != "" {
		// Each server has its own provider, so services sharing a process
		// keep their names. Inside wrap so the span sees the request id
		// and, after the mux has routed, takes the route template as its name.
		tp, err := telemetry.NewTracerProvider(context.Background(), c.OTLPEndpoint, "llmo-"+name)
		if err != nil {
			s.Log.Warn("tracing disabled", "err", err)
		} else {
			telemetry.SetGlobalOnce(tp)
			s.traceShutdown = tp.Shutdown
			h = telemetry.TraceHandler(h, name, tp)
		}
	}
	s.handler = s.wrap(h)
	return s
}

// Handler is the full handler chain, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Common is the shared config the server was built with.
func (s *Server) Common() Common { return s.common }

// SetReady marks the service ready.
func (s *Server) SetReady() { s.notReady.Store(nil) }

// SetNotReady marks the service not ready, with a reason for /ready.
func (s *Server) SetNotReady(reason string) { s.notReady.Store(&reason) }

// Draining reports whether shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// AddReadyCheck adds a probe that /ready runs.
func (s *Server) AddReadyCheck(name string, fn func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = append(s.ready, Check{name, fn})
}

// AddHealthCheck adds a probe that /health runs. Keep these cheap and about
// liveness only (a wedged loop), never about dependencies.
func (s *Server) AddHealthCheck(name string, fn func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = append(s.health, Check{name, fn})
}

// OnDrain registers fn to run when shutdown begins, before the listener
// closes (for example to stop admitting new sequences).
func (s *Server) OnDrain(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDrain = append(s.onDrain, fn)
}

// Addr is the address the server listens on once Serve has started.
func (s *Server) Addr() string {
	if p := s.boundAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// ListenAndServe listens on host:port and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.common.Host, fmt.Sprint(port)))
	if err != nil {
		return fmt.Errorf("%s: listen: %w", s.Name, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then drains: it marks the service
// not ready, runs the OnDrain hooks, stops accepting connections and waits
// up to DrainTimeout for in-flight requests. A clean drain returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().String()
	s.boundAddr.Store(&addr)
	if s.traceShutdown != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.traceShutdown(sctx) // flush buffered spans
		}()
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.common.ReadHeaderTimeout,
		IdleTimeout:       s.common.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.srvMu.Lock()
	s.httpSrv = srv
	s.srvMu.Unlock()
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.common.TLSCert != "" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(ln, s.common.TLSCert, s.common.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	scheme := "http"
	if s.common.TLSCert != "" {
		scheme = "https"
	}
	s.Log.Info("listening", "addr", scheme+"://"+addr)
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("%s: serve: %w", s.Name, err)
	case <-ctx.Done():
	}
	return s.drain(srv)
}

func (s *Server) drain(srv *http.Server) error {
	s.draining.Store(true)
	s.SetNotReady("draining")
	s.mu.Lock()
	hooks := append([]func(){}, s.onDrain...)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	s.Log.Info("draining", "timeout", s.common.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), s.common.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(dctx)
	if err != nil {
		s.Log.Warn("drain timed out; closing remaining connections", "err", err)
		_ = srv.Close()
	}
	// Shutdown does not wait for hijacked or detached work; handlers that
	// outlive their connection register in inflight.
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-dctx.Done():
	}
	s.Log.Info("stopped")
	return nil
}

func init() { config.Register(Common{}) }
