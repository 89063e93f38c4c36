package gateway

import (
	"context"
	"net/http"
)

// Layers is the configuration of the layers that other packages provide
// (auth and quotas, the response cache). It is embedded in Config so that
// their flags are the gateway's flags.
type Layers struct{}

// Validate checks the layers' configuration.
func (l *Layers) Validate() error { return nil }

// layers are the composed middlewares. Each is the identity until its
// package exists.
type layers struct {
	auth        func(http.Handler) http.Handler
	admin       func(http.Handler) http.Handler
	cache       func(http.Handler) http.Handler
	cacheHealth func(context.Context) error        // nil: no cache
	ollama      func(v1 http.Handler) http.Handler // nil: no Ollama API
	dashboard   func(api http.Handler) http.Handler
}

func identity(h http.Handler) http.Handler { return h }

func (g *Gateway) buildLayers(ctx context.Context) (*layers, error) {
	l := &layers{auth: identity, admin: identity, cache: identity}
	if g.cfg.CacheURL != "" {
		g.log.Warn("response cache package not built into this binary yet; serving without a cache", "cache", g.cfg.CacheURL)
	}
	return l, nil
}
