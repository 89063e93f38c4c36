package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// Config is `llmo serve cache`'s configuration.
type Config struct {
	service.Common
	Port          int           `flag:"port" env:"CACHE_PORT" default:"8002" help:"HTTP port of the cache service"`
	Redis         string        `flag:"redis" env:"REDIS_URL" help:"Redis URL (redis://host:6379/0); the memory backend is used when empty"`
	MaxBytes      int64         `flag:"max-bytes" env:"CACHE_MAX_BYTES" default:"268435456" help:"size bound of the memory backend in bytes (keys + values)"`
	MaxValueBytes int64         `flag:"max-value-bytes" env:"CACHE_MAX_VALUE_BYTES" default:"4194304" help:"largest value accepted by PUT (413 above it)"`
	DefaultTTL    time.Duration `flag:"ttl" env:"CACHE_TTL" default:"24h" help:"TTL of entries stored without one"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port %d: out of range", c.Port)
	}
	if c.MaxBytes < 1<<10 {
		return fmt.Errorf("--max-bytes %d: want at least 1024", c.MaxBytes)
	}
	if c.MaxValueBytes <= 0 || c.MaxValueBytes > c.MaxBodyBytes {
		return fmt.Errorf("--max-value-bytes %d: want 1..--max-body-bytes (%d)", c.MaxValueBytes, c.MaxBodyBytes)
	}
	if c.DefaultTTL <= 0 {
		return fmt.Errorf("--ttl must be positive")
	}
	if c.Redis != "" && !strings.HasPrefix(c.Redis, "redis://") && !strings.HasPrefix(c.Redis, "rediss://") && !strings.HasPrefix(c.Redis, "unix://") {
		return fmt.Errorf("--redis %q: want redis://host:port[/db]", c.Redis)
	}
	return nil
}

func init() { config.Register(Config{}) }

// Backend is a Store that also has a semantic index (Memory and Redis).
type Backend interface {
	Store
	SemanticIndex
}

// OpenBackend returns the Redis backend when cfg.Redis is set, else memory.
// close releases it.
func OpenBackend(ctx context.Context, cfg Config) (b Backend, close func() error, err error) {
	if cfg.Redis == "" {
		m := NewMemoryStore(cfg.MaxBytes)
		return m, m.Close, nil
	}
	r, err := NewRedisStore(cfg.Redis)
	if err != nil {
		return nil, nil, err
	}
	return r, r.Close, nil
}

// NewServer builds the cache service on b. The caller runs srv.Serve or
// srv.ListenAndServe.
func NewServer(cfg Config, b Backend, log *slog.Logger, reg *prometheus.Registry) *service.Server {
	srv := service.New("cache", cfg.Common, log, reg)
	api := NewAPI(b, b, APIOptions{MaxValueBytes: cfg.MaxValueBytes, DefaultTTL: cfg.DefaultTTL}, srv.Registry)
	api.Register(srv.Mux)
	srv.AddReadyCheck("backend", func(ctx context.Context) error {
		_, err := b.Stats(ctx)
		return err
	})
	srv.SetReady()
	return srv
}

// Run serves the cache service until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	b, closeFn, err := OpenBackend(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	if r, ok := b.(*Redis); ok {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := r.Ping(pctx); err != nil {
			log.Warn("redis is not answering yet; the cache reports not ready until it does", "err", err)
		}
		cancel()
	}
	srv := NewServer(cfg, b, log, nil)
	backend := "memory"
	if cfg.Redis != "" {
		backend = "redis"
	}
	srv.Log.Info("cache backend", "backend", backend, "max_bytes", cfg.MaxBytes)
	return srv.ListenAndServe(ctx, cfg.Port)
}

// APIOptions tune the HTTP API.
type APIOptions struct {
	MaxValueBytes int64         // 0 means DefaultMaxValueBytes
	DefaultTTL    time.Duration // 0 means DefaultTTL
}

// API is the cache service's HTTP API:
//
//	GET    /v1/cache/stats             -> Stats
//	GET    /v1/cache/{ns}/{key}        -> 200 value | 404
//	PUT    /v1/cache/{ns}/{key}?ttl=1h -> 204 (or header X-Cache-TTL: 3600)
//	DELETE /v1/cache/{ns}/{key}        -> 204
//	DELETE /v1/cache/{ns}              -> 204 (flush the namespace)
//	PUT    /v1/semantic/{ns}           {"bucket","id","text","vector","ttl_s"} -> 204
//	POST   /v1/semantic/{ns}/search    {"bucket","vector","k","min_score"} -> {"matches":[...]}
type API struct {
	store Store
	idx   SemanticIndex
	opt   APIOptions
	m     *apiMetrics
}

// NewAPI returns the API over store and idx, registering its metrics in reg.
func NewAPI(store Store, idx SemanticIndex, opt APIOptions, reg prometheus.Registerer) *API {
	if opt.MaxValueBytes <= 0 {
		opt.MaxValueBytes = DefaultMaxValueBytes
	}
	if opt.DefaultTTL <= 0 {
		opt.DefaultTTL = DefaultTTL
	}
	return &API{store: store, idx: idx, opt: opt, m: newAPIMetrics(reg, store)}
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/cache/stats", a.stats)
	mux.HandleFunc("GET /v1/cache/{ns}/{key}", a.get)
	mux.HandleFunc("PUT /v1/cache/{ns}/{key}", a.put)
	mux.HandleFunc("DELETE /v1/cache/{ns}/{key}", a.del)
	mux.HandleFunc("DELETE /v1/cache/{ns}", a.flush)
	mux.HandleFunc("PUT /v1/semantic/{ns}", a.semAdd)
	mux.HandleFunc("POST /v1/semantic/{ns}/search", a.semSearch)
}

// fail records and writes err.
func (a *API) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.TooLarge, errs.UnsupportedMedia, errs.NotFound:
		a.m.requests.WithLabelValues(op, "invalid").Inc()
	case errs.Canceled:
		a.m.requests.WithLabelValues(op, "canceled").Inc()
	default:
		a.m.requests.WithLabelValues(op, "error").Inc()
		a.m.errors.WithLabelValues(op).Inc()
	}
	service.WriteError(w, r, err)
}

func (a *API) ok(op, result string) { a.m.requests.WithLabelValues(op, result).Inc() }

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	st, err := a.store.Stats(r.Context())
	if err != nil {
		a.fail(w, r, "stats", err)
		return
	}
	a.ok("stats", "ok")
	service.WriteJSON(w, http.StatusOK, st)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	b, ok, err := a.store.Get(r.Context(), r.PathValue("ns"), r.PathValue("key"))
	if err != nil {
		a.fail(w, r, "get", err)
		return
	}
	if !ok {
		a.ok("get", "miss")
		service.WriteError(w, r, errs.E(errs.NotFound, "no such key"))
		return
	}
	a.ok("get", "hit")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// parseTTL reads a TTL from the ttl query parameter or the X-Cache-TTL
// header: integer seconds or a Go duration ("90s", "1h"), 1s..30 days.
func parseTTL(r *http.Request, def time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get("ttl")
	if s == "" {
		s = r.Header.Get("X-Cache-TTL")
	}
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil || n > 30*24*3600 {
			return 0, errs.Param("ttl", "ttl %q: want seconds or a duration such as 90s or 1h", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < time.Millisecond || d > 30*24*time.Hour {
		return 0, errs.Param("ttl", "ttl %q: want between 1ms and 30 days", s)
	}
	return d, nil
}

func (a *API) put(w http.ResponseWriter, r *http.Request) {
	ns, key := r.PathValue("ns"), r.PathValue("key")
	if err := validNSKey(ns, key); err != nil {
		a.fail(w, r, "set", err)
		return
	}
	ttl, err := parseTTL(r, a.opt.DefaultTTL)
	if err != nil {
		a.fail(w, r, "set", err)
		return
	}
	if r.ContentLength > a.opt.MaxValueBytes {
		a.fail(w, r, "set", errs.E(errs.TooLarge, "value is %d bytes; the limit is %d", r.ContentLength, a.opt.MaxValueBytes))
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opt.MaxValueBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errs.E(errs.TooLarge, "value exceeds the limit of %d bytes", a.opt.MaxValueBytes)
		} else if r.Context().Err() != nil {
			err = errs.Wrap(errs.Canceled, err, "request canceled")
		} else {
			err = errs.Wrap(errs.Invalid, err, "could not read the value")
		}
		a.fail(w, r, "set", err)
		return
	}
	if err := a.store.Set(r.Context(), ns, key, b, ttl); err != nil {
		a.fail(w, r, "set", err)
		return
	}
	a.ok("set", "ok")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) del(w http.ResponseWriter, r *http.Request) {
	if err := a.store.Delete(r.Context(), r.PathValue("ns"), r.PathValue("key")); err != nil {
		a.fail(w, r, "delete", err)
		return
	}
	a.ok("delete", "ok")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) flush(w http.ResponseWriter, r *http.Request) {
	if err := a.store.Flush(r.Context(), r.PathValue("ns")); err != nil {
		a.fail(w, r, "flush", err)
		return
	}
	a.ok("flush", "ok")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) semAdd(w http.ResponseWriter, r *http.Request) {
	if a.idx == nil {
		a.fail(w, r, "semantic_add", errs.E(errs.NotImplemented, "this cache has no semantic index"))
		return
	}
	var req semanticPut
	if err := service.DecodeJSON(r, &req); err != nil {
		a.fail(w, r, "semantic_add", err)
		return
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > 30*24*3600 {
		a.fail(w, r, "semantic_add", errs.Param("ttl_s", "ttl_s must be between 0 and 30 days"))
		return
	}
	ttl := time.Duration(req.TTLSeconds * float64(time.Second))
	if ttl <= 0 {
		ttl = a.opt.DefaultTTL
	}
	if err := a.idx.Add(r.Context(), r.PathValue("ns"), req.Bucket, req.SemanticEntry, ttl); err != nil {
		a.fail(w, r, "semantic_add", err)
		return
	}
	a.ok("semantic_add", "ok")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) semSearch(w http.ResponseWriter, r *http.Request) {
	if a.idx == nil {
		a.fail(w, r, "semantic_search", errs.E(errs.NotImplemented, "this cache has no semantic index"))
		return
	}
	var req semanticSearch
	if err := service.DecodeJSON(r, &req); err != nil {
		a.fail(w, r, "semantic_search", err)
		return
	}
	if req.MinScore < -1 || req.MinScore > 1 {
		a.fail(w, r, "semantic_search", errs.Param("min_score", "min_score must be between -1 and 1"))
		return
	}
	m, err := a.idx.Search(r.Context(), r.PathValue("ns"), req.Bucket, req.Vector, req.K, req.MinScore)
	if err != nil {
		a.fail(w, r, "semantic_search", err)
		return
	}
	result := "miss"
	if len(m) > 0 {
		result = "hit"
	}
	a.ok("semantic_search", result)
	if m == nil {
		m = []SemanticMatch{}
	}
	service.WriteJSON(w, http.StatusOK, semanticResult{Matches: m})
}

// apiMetrics are the cache service's metrics (CONTRACTS.md names).
type apiMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer, store Store) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_cache_requests_total",
			Help: "Cache service operations by op (get, set, delete, flush, stats, semantic_add, semantic_search) and result (hit, miss, ok, invalid, error, canceled).",
		}, []string{"op", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_cache_errors_total",
			Help: "Cache service operations that failed because of the backend, by op.",
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.errors, &statsCollector{store: store})
	}
	return m
}

// statsCollector turns one Stats call per scrape into the size gauges and
// the eviction counter.
type statsCollector struct{ store Store }

var (
	descBytes     = prometheus.NewDesc("llmo_cache_bytes", "Bytes held by the cache backend (memory: keys+values; redis: used_memory).", nil, nil)
	descEntries   = prometheus.NewDesc("llmo_cache_entries", "Entries held by the cache backend.", nil, nil)
	descEvictions = prometheus.NewDesc("llmo_cache_evictions_total", "Entries evicted to stay within the size bound.", nil, nil)
	descMaxBytes  = prometheus.NewDesc("llmo_cache_max_bytes", "Size bound of the cache backend (0 = unbounded).", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBytes
	ch <- descEntries
	ch <- descEvictions
	ch <- descMaxBytes
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.store.Stats(ctx)
	if err != nil {
		return // a scrape must not fail because the backend is down; the gauges go stale
	}
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.Entries))
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(descMaxBytes, prometheus.GaugeValue, float64(st.MaxBytes))
}
