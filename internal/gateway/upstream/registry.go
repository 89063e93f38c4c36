package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/llmo/llmo/api"
)

// Options tune health checking and outlier ejection.
type Options struct {
	HealthInterval time.Duration // active /ready check and /metrics scrape period (default 1s)
	ModelsInterval time.Duration // /v1/models refresh period (default 15s)
	CheckTimeout   time.Duration // timeout of each check (default 2s)
	EjectAfter     int           // consecutive failures before passive ejection (default 3)
	EjectTime      time.Duration // base ejection time, doubled per repeat up to 8x (default 5s)
	BreakerTimeout time.Duration // how long a breaker stays open before half-open (default 10s)
	BreakerTrip    int           // consecutive failures that open the breaker (default 5)
	Client         *http.Client  // for checks; default has CheckTimeout
	Log            *slog.Logger
}

func (o *Options) defaults() {
	if o.HealthInterval <= 0 {
		o.HealthInterval = time.Second
	}
	if o.ModelsInterval <= 0 {
		o.ModelsInterval = 15 * time.Second
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.EjectAfter <= 0 {
		o.EjectAfter = 3
	}
	if o.EjectTime <= 0 {
		o.EjectTime = 5 * time.Second
	}
	if o.BreakerTimeout <= 0 {
		o.BreakerTimeout = 10 * time.Second
	}
	if o.BreakerTrip <= 0 {
		o.BreakerTrip = 5
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.CheckTimeout}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Entry names a replica in a discovery source.
type Entry struct {
	URL    string
	Models []string // optional; learned from /v1/models when empty
}

// Registry is the set of replicas and the pools they form.
type Registry struct {
	opts Options
	ctx  context.Context

	mu       sync.Mutex
	replicas map[string]*Replica
	pools    atomic.Pointer[map[string][]*Replica]
	changed  chan struct{} // closed and replaced when the pools change (tests wait on it)
}

// NewRegistry builds an empty registry. Replicas' health loops run under ctx.
func NewRegistry(ctx context.Context, opts Options) *Registry {
	opts.defaults()
	g := &Registry{opts: opts, ctx: ctx, replicas: map[string]*Replica{}, changed: make(chan struct{})}
	empty := map[string][]*Replica{}
	g.pools.Store(&empty)
	go g.expireLeases(ctx)
	return g
}

// NormalizeURL checks a replica URL and returns its canonical form: scheme
// http or https, a host, no query, no trailing slash.
func NormalizeURL(raw string) (string, *url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", nil, fmt.Errorf("replica URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil, fmt.Errorf("replica URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", nil, fmt.Errorf("replica URL %q: missing host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", nil, fmt.Errorf("replica URL %q: must not carry a query, fragment or credentials", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), u, nil
}

// Set replaces the replicas that source names (Static, File or DNS).
func (g *Registry) Set(src Source, entries []Entry) error {
	want := map[string]Entry{}
	for _, e := range entries {
		norm, _, err := NormalizeURL(e.URL)
		if err != nil {
			return err
		}
		e.URL = norm
		want[norm] = e
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for u, r := range g.replicas {
		if _, ok := want[u]; ok {
			continue
		}
		r.mu.Lock()
		delete(r.sources, src)
		if src == File {
			r.staticModels = nil
		}
		gone := len(r.sources) == 0
		r.mu.Unlock()
		if gone {
			g.removeLocked(u)
		}
	}
	for u, e := range want {
		r := g.addLocked(u)
		r.mu.Lock()
		r.sources[src] = time.Time{}
		if src == File || len(e.Models) > 0 {
			r.staticModels = slices.Clone(e.Models)
		}
		r.mu.Unlock()
	}
	g.rebuildLocked()
	return nil
}

// Register adds or renews a self-registered replica's lease.
func (g *Registry) Register(rawURL string, ttl time.Duration) (string, error) {
	norm, _, err := NormalizeURL(rawURL)
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.addLocked(norm)
	r.mu.Lock()
	r.sources[Registered] = time.Now().Add(ttl)
	r.mu.Unlock()
	g.rebuildLocked()
	return norm, nil
}

// Deregister ends a self-registered replica's lease at once (a draining
// replica saying goodbye). It reports whether there was a lease.
func (g *Registry) Deregister(rawURL string) (bool, error) {
	norm, _, err := NormalizeURL(rawURL)
	if err != nil {
		return false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.replicas[norm]
	if r == nil {
		return false, nil
	}
	r.mu.Lock()
	_, had := r.sources[Registered]
	delete(r.sources, Registered)
	gone := len(r.sources) == 0
	r.mu.Unlock()
	if gone {
		g.removeLocked(norm)
	}
	g.rebuildLocked()
	return had, nil
}

func (g *Registry) expireLeases(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.mu.Lock()
			changed := false
			for u, r := range g.replicas {
				r.mu.Lock()
				exp, ok := r.sources[Registered]
				if ok && now.After(exp) {
					delete(r.sources, Registered)
					g.opts.Log.Info("replica lease expired", "replica", u)
					changed = true
				}
				gone := len(r.sources) == 0
				r.mu.Unlock()
				if gone {
					g.removeLocked(u)
				}
			}
			if changed {
				g.rebuildLocked()
			}
			g.mu.Unlock()
		}
	}
}

func (g *Registry) addLocked(u string) *Replica {
	if r := g.replicas[u]; r != nil {
		return r
	}
	_, base, _ := NormalizeURL(u)
	r := &Replica{URL: u, Base: base, sources: map[Source]time.Time{}}
	r.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        u,
		MaxRequests: 1,
		Timeout:     g.opts.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(g.opts.BreakerTrip) },
		// A client that hung up says nothing about the replica.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			r.breakerSt.Store(int32(breakerNum(to)))
			r.mu.Lock()
			r.refreshAvail()
			r.mu.Unlock()
			g.opts.Log.Warn("replica circuit breaker", "replica", u, "from", from.String(), "to", to.String())
		},
	})
	ctx, cancel := context.WithCancel(g.ctx)
	r.stop = cancel
	g.replicas[u] = r
	go g.watch(ctx, r)
	return r
}

func breakerNum(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

func (g *Registry) removeLocked(u string) {
	if r := g.replicas[u]; r != nil {
		r.stop()
		r.mu.Lock()
		r.state = Unhealthy
		r.refreshAvail()
		r.mu.Unlock()
		delete(g.replicas, u)
		g.opts.Log.Info("replica removed", "replica", u)
	}
}

// rebuildLocked recomputes the pools snapshot from every replica's models.
func (g *Registry) rebuildLocked() {
	pools := map[string][]*Replica{}
	for _, r := range g.replicas {
		for _, m := range r.ModelIDs() {
			pools[m] = append(pools[m], r)
		}
	}
	for m := range pools {
		// A fixed order keeps round robin and tests stable.
		sort.Slice(pools[m], func(i, j int) bool { return pools[m][i].URL < pools[m][j].URL })
	}
	g.pools.Store(&pools)
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *Registry) rebuild() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rebuildLocked()
}

// Pool is every replica that serves model, in any state.
func (g *Registry) Pool(model string) []*Replica { return (*g.pools.Load())[model] }

// HasModel reports whether some replica serves model.
func (g *Registry) HasModel(model string) bool { return len(g.Pool(model)) > 0 }

// Pools is the current model -> replicas snapshot (do not modify).
func (g *Registry) Pools() map[string][]*Replica { return *g.pools.Load() }

// Replicas lists every replica, sorted by URL.
func (g *Registry) Replicas() []*Replica {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Replica, 0, len(g.replicas))
	for _, r := range g.replicas {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// Lookup returns the replica with this normalised URL, or nil.
func (g *Registry) Lookup(u string) *Replica {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.replicas[u]
}

// Models is the union of models over all pools, one entry per id, taken
// from a healthy replica's /v1/models when possible.
func (g *Registry) Models() []api.Model {
	seen := map[string]api.Model{}
	healthy := map[string]bool{}
	for _, r := range g.Replicas() {
		r.mu.Lock()
		ok := r.state == Healthy
		learned := map[string]api.Model{}
		for _, m := range r.models {
			learned[m.ID] = m
		}
		for _, id := range r.modelIDsLocked() {
			if _, have := seen[id]; have && (healthy[id] || !ok) {
				continue
			}
			m, found := learned[id]
			if !found {
				m = api.Model{ID: id, Object: "model", OwnedBy: "llmo"}
			}
			seen[id], healthy[id] = m, ok
		}
		r.mu.Unlock()
	}
	out := make([]api.Model, 0, len(seen))
	for _, m := range seen {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Changed returns a channel closed at the next pool change.
func (g *Registry) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Report records the outcome of a proxied attempt for passive outlier
// detection: failed is true for connect errors, timeouts and 5xx answers.
func (g *Registry) Report(r *Replica, failed bool, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !failed {
		r.consecFails = 0
		return
	}
	r.consecFails++
	r.lastErr = reason
	if r.consecFails >= g.opts.EjectAfter && r.state == Healthy && !g.lastStanding(r) {
		mult := 1 << min(r.ejections, 3)
		r.ejections++
		r.ejectedUntil = time.Now().Add(time.Duration(mult) * g.opts.EjectTime)
		r.state = Ejected
		r.refreshAvail()
		g.opts.Log.Warn("replica ejected", "replica", r.URL, "consecutive_failures", r.consecFails,
			"until", r.ejectedUntil.Format(time.RFC3339), "reason", reason)
	}
}

// lastStanding reports whether r is the only available replica of one of
// its pools: ejecting it would turn a degraded pool into a dead one, so
// (as Envoy's max_ejection_percent does) it stays, and its breaker and
// health check remain the guards. r.mu is held.
func (g *Registry) lastStanding(r *Replica) bool {
	pools := g.Pools()
	for _, m := range r.modelIDsLocked() {
		others := 0
		for _, x := range pools[m] {
			if x != r && x.Available() {
				others++
			}
		}
		if others == 0 {
			return true
		}
	}
	return false
}

// Digest is the weights digest a replica of model reports in /v1/models
// ("" when none does); the response cache keys on it.
func (g *Registry) Digest(model string) string {
	for _, r := range g.Pool(model) {
		r.mu.Lock()
		for _, m := range r.models {
			if m.ID == model && m.Digest != "" {
				r.mu.Unlock()
				return m.Digest
			}
		}
		r.mu.Unlock()
	}
	return ""
}
