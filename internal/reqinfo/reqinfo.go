// Package reqinfo carries per-request facts between the gateway's layers
// (auth, quotas, Ollama translation, response cache, proxy) through the
// request context, so that no layer imports another.
package reqinfo

import (
	"context"
	"sync"
)

// Principal is the caller, as established by the auth layer.
type Principal struct {
	KeyName       string   // the API key's name ("anonymous" when auth is off)
	Namespace     string   // cache namespace; defaults to KeyName
	AllowedModels []string // empty means all
	SemanticCache bool     // the key opted into semantic caching
	Admin         bool
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom is the caller in ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Usage is the token usage of one request as observed by the proxy.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Meter collects the usage that the proxy (or a cache replay) reports, for
// the quota layer to reconcile when the request ends. It is safe for
// concurrent use.
type Meter struct {
	mu       sync.Mutex
	usage    Usage
	reported bool
	Cached   bool // the response came from the cache
}

type meterKey struct{}

// WithMeter returns ctx carrying a fresh Meter, and the Meter.
func WithMeter(ctx context.Context) (context.Context, *Meter) {
	m := &Meter{}
	return context.WithValue(ctx, meterKey{}, m), m
}

// MeterFrom is the Meter in ctx, or nil.
func MeterFrom(ctx context.Context) *Meter {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	return m
}

// Report records usage. Later reports replace earlier ones (the final usage
// chunk of a stream is authoritative).
func Report(ctx context.Context, u Usage) {
	if m := MeterFrom(ctx); m != nil {
		m.mu.Lock()
		m.usage, m.reported = u, true
		m.mu.Unlock()
	}
}

// Usage returns the reported usage and whether any was reported.
func (m *Meter) Usage() (Usage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage, m.reported
}
