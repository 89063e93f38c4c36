package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/auth"
	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/dashboard"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gateway/proxy"
	"github.com/llmo/llmo/internal/ollama"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/respcache"
)

// Layers is the configuration of the layers that other packages provide
// (auth and quotas, the response cache). It is embedded in Config so that
// their flags are the gateway's flags.
type Layers struct {
	auth.Config
	CacheTTL          time.Duration `flag:"cache-ttl" env:"LLMO_CACHE_TTL" default:"1h" help:"response cache entry lifetime"`
	CacheMemoryBytes  int64         `flag:"cache-memory-bytes" env:"LLMO_CACHE_MEMORY_BYTES" default:"268435456" help:"size of the in-process cache when --cache memory"`
	SemanticThreshold float64       `flag:"semantic-threshold" env:"LLMO_SEMANTIC_THRESHOLD" default:"0.95" help:"cosine similarity a semantic cache hit needs"`
}

// Validate checks the layers' configuration.
func (l *Layers) Validate() error {
	if err := l.Config.Validate(); err != nil {
		return err
	}
	if l.CacheTTL <= 0 || l.CacheMemoryBytes <= 0 {
		return fmt.Errorf("--cache-ttl and --cache-memory-bytes must be positive")
	}
	if l.SemanticThreshold <= 0 || l.SemanticThreshold > 1 {
		return fmt.Errorf("--semantic-threshold must be in (0, 1]")
	}
	return nil
}

// layers are the composed middlewares.
type layers struct {
	auth        func(http.Handler) http.Handler
	admin       func(http.Handler) http.Handler
	cache       func(http.Handler) http.Handler
	cacheHealth func(context.Context) error         // nil: no cache
	ollama      func(v1 http.Handler) http.Handler  // nil: no Ollama API
	dashboard   func(api http.Handler) http.Handler // nil: no dashboard
	close       func()
}

func identity(h http.Handler) http.Handler { return h }

func (g *Gateway) buildLayers(ctx context.Context) (*layers, error) {
	l := &layers{auth: identity, admin: identity, cache: identity, close: func() {},
		ollama: ollama.NewHandler, dashboard: dashboard.Handler}
	a, err := auth.New(g.cfg.Layers.Config, g.srv.Registry, g.log)
	if err != nil {
		return nil, err
	}
	l.auth, l.admin = a.Middleware, a.RequireAdmin

	store, err := g.cacheStore()
	if err != nil {
		return nil, err
	}
	if store != nil {
		rc, err := respcache.New(respcache.Config{
			TTL: g.cfg.CacheTTL, SemanticThreshold: g.cfg.SemanticThreshold,
			ModelDigest: g.reg.Digest, Embed: g.embed,
		}, store, g.srv.Registry, g.log)
		if err != nil {
			return nil, err
		}
		l.cache, l.cacheHealth = rc.Middleware, rc.Health
		l.close = func() { _ = rc.Close() }
	}
	return l, nil
}

// cacheStore opens the store --cache names.
func (g *Gateway) cacheStore() (cache.Store, error) {
	u := g.cfg.CacheURL
	switch {
	case u == "":
		return nil, nil
	case u == "memory":
		return cache.NewMemory(g.cfg.CacheMemoryBytes), nil
	case strings.HasPrefix(u, "redis://") || strings.HasPrefix(u, "rediss://"):
		return cache.NewRedis(u)
	case strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"):
		return cache.NewClient(strings.TrimRight(u, "/"), 0), nil
	}
	return nil, fmt.Errorf("--cache %q: want http(s)://HOST:PORT, redis://..., memory, or nothing", u)
}

// embed asks the model tier for an embedding, for the semantic cache. It
// goes through the proxy (routing, retries) but not through auth or the
// cache, and its usage is not billed to the request that triggered it.
func (g *Gateway) embed(ctx context.Context, model, text string) ([]float32, error) {
	body, _ := json.Marshal(map[string]string{"model": model, "input": text})
	req, err := proxy.Parse(proxy.Embedding, body, 0)
	if err != nil {
		return nil, err
	}
	ctx, _ = reqinfo.WithMeter(ctx) // a meter of its own: not the client's usage
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/embeddings", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	w := &bufferWriter{header: http.Header{}}
	if err := g.proxy.Forward(w, hr, req); err != nil {
		return nil, err
	}
	if w.code != http.StatusOK {
		return nil, errs.E(errs.BadGateway, "embedding for the semantic cache: upstream answered %d", w.code)
	}
	var res struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.buf.Bytes(), &res); err != nil || len(res.Data) == 0 {
		return nil, errs.Wrap(errs.BadGateway, err, "embedding for the semantic cache: malformed answer")
	}
	return res.Data[0].Embedding, nil
}

// bufferWriter is an in-memory http.ResponseWriter.
type bufferWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *bufferWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.Write(p)
}
