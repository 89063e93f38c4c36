// Package respcache is the gateway's response cache: an HTTP middleware
// around the /v1 proxy that answers deterministic chat and completion
// requests from a cache.Store, collapses identical concurrent misses into one
// upstream call, and (opt-in) serves semantically equivalent prompts.
//
// Correctness comes first. The exact key is the sha256 of the canonical
// request (sorted keys, exact number normalisation) bound to the model's
// digest, the route and the caller's namespace, so any change in a sampling
// parameter, the model or the key misses. Only deterministic requests
// (temperature 0, or a seed) are cached; only 200 responses that completed
// cleanly are stored. A semantic hit needs the same bucket (everything but
// the last user turn), a cosine similarity over the threshold, and the same
// negations and numbers in both prompts.
//
// The cache is never on the critical path: every call has a short timeout
// and a circuit breaker, fills happen after the response is sent, and a
// slow or dead cache only means requests go uncached.
package respcache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/service"
)

// Config tunes the layer. Zero values take the defaults in brackets.
type Config struct {
	TTL                 time.Duration // entry lifetime [1h]
	Timeout             time.Duration // per cache call [150ms]
	EmbedTimeout        time.Duration // per embedding call [2s]
	SemanticThreshold   float64       // minimum cosine similarity [0.95]
	MaxEntryBytes       int           // largest response stored [1 MiB]
	DisableSingleflight bool          // for benchmarks of raw miss cost

	// ModelDigest returns the digest of the weights behind a model name (""
	// when unknown); it is part of every key, so new weights never serve
	// old answers.
	ModelDigest func(model string) string
	// Embed returns an embedding of text by model (the gateway posts to the
	// model tier's /v1/embeddings). nil disables semantic caching.
	Embed func(ctx context.Context, model, text string) ([]float32, error)
	// Index is the semantic index. nil means the store's own index when it
	// has one (memory, Redis, the cache service client), else an in-process
	// index.
	Index cache.SemanticIndex
}

// Header names.
const (
	HeaderCache      = "X-Cache"            // HIT, MISS or BYPASS
	HeaderSimilarity = "X-Cache-Similarity" // on semantic hits, e.g. 0.9731
	HeaderSemantic   = "X-Semantic-Cache"   // "on" opts a request in, "off" out
)

// Layer is the response cache middleware.
type Layer struct {
	cfg   Config
	store *cache.Guard
	index cache.SemanticIndex
	log   *slog.Logger
	m     *metrics

	flights group
	fills   pendingFills
	fillSem chan struct{}
}

// New builds the layer over store (nil disables caching: every request is a
// BYPASS). reg may be nil.
func New(cfg Config, store cache.Store, reg prometheus.Registerer, log *slog.Logger) (*Layer, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 150 * time.Millisecond
	}
	if cfg.EmbedTimeout <= 0 {
		cfg.EmbedTimeout = 2 * time.Second
	}
	if cfg.SemanticThreshold == 0 {
		cfg.SemanticThreshold = 0.95
	}
	if cfg.SemanticThreshold < 0 || cfg.SemanticThreshold > 1 {
		return nil, errs.E(errs.Invalid, "semantic threshold %v: want 0..1", cfg.SemanticThreshold)
	}
	if cfg.MaxEntryBytes <= 0 {
		cfg.MaxEntryBytes = 1 << 20
	}
	if cfg.ModelDigest == nil {
		cfg.ModelDigest = func(string) string { return "" }
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Layer{cfg: cfg, log: log.With("layer", "respcache"), m: newMetrics(reg), fillSem: make(chan struct{}, 64)}
	l.flights.m = map[string]*flight{}
	if store != nil {
		l.store = cache.NewGuard("respcache", store, cfg.Timeout)
		switch {
		case cfg.Index != nil:
			l.index = cache.NewGuard("respcache-index", &indexOnly{cfg.Index}, cfg.Timeout)
		case l.store.HasIndex():
			l.index = l.store
		default:
			l.index = cache.NewMemoryIndex(0)
		}
	}
	return l, nil
}

// indexOnly lets a bare SemanticIndex sit behind a Guard.
type indexOnly struct{ cache.SemanticIndex }

func (indexOnly) Get(context.Context, string, string) ([]byte, bool, error) { return nil, false, nil }
func (indexOnly) Set(context.Context, string, string, []byte, time.Duration) error {
	return nil
}
func (indexOnly) Delete(context.Context, string, string) error { return nil }
func (indexOnly) Flush(context.Context, string) error          { return nil }
func (indexOnly) Stats(context.Context) (cache.Stats, error)   { return cache.Stats{}, nil }

// Health reports whether the cache answers: nil when it does, an error when
// it is slow, down or its breaker is open (the gateway shows "degraded").
func (l *Layer) Health(ctx context.Context) error {
	if l.store == nil {
		return errs.E(errs.Unavailable, "response cache disabled")
	}
	if l.store.State() == "open" {
		return errs.E(errs.Unavailable, "response cache unavailable (circuit open)")
	}
	_, err := l.store.Stats(ctx)
	return err
}

// Close waits for pending cache fills.
func (l *Layer) Close() error {
	l.fills.wait()
	return nil
}

// Middleware caches POST /v1/chat/completions and /v1/completions; any
// other request goes straight to next.
func (l *Layer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var kind string
		switch r.URL.Path {
		case "/v1/chat/completions":
			kind = kindChat
		case "/v1/completions":
			kind = kindText
		}
		if r.Method != http.MethodPost || kind == "" {
			next.ServeHTTP(w, r)
			return
		}
		l.serve(w, r, kind, next)
	})
}

func (l *Layer) serve(w http.ResponseWriter, r *http.Request, kind string, next http.Handler) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			err = errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
		case r.Context().Err() != nil:
			err = errs.Wrap(errs.Canceled, err, "request canceled")
		default:
			err = errs.Wrap(errs.Invalid, err, "could not read request body")
		}
		service.WriteError(w, r, err)
		return
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	req, ok := parseRequest(kind, body)
	cc := parseCacheControl(r.Header.Values("Cache-Control"), r.Header.Get("Pragma"))
	if l.store == nil || !ok || !req.deterministic || (cc.noCache && cc.noStore) {
		l.m.lookups.WithLabelValues("exact", "bypass").Inc()
		w.Header().Set(HeaderCache, "BYPASS")
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	if reqinfo.MeterFrom(ctx) == nil {
		// Without the auth layer (tests, embedding) there is no meter; make
		// one so the proxy's usage report is still seen.
		ctx, _ = reqinfo.WithMeter(ctx)
		r = r.WithContext(ctx)
	}
	ns := "anonymous"
	if p := reqinfo.PrincipalFrom(ctx); p != nil {
		ns = p.Namespace
		if ns == "" {
			ns = p.KeyName
		}
	}
	ns = storeNamespace(ns)
	sc := scope{route: r.URL.Path, ns: ns, digest: l.cfg.ModelDigest(req.model)}
	key := req.exactKey(sc)
	t := &task{l: l, req: req, ns: ns, key: key, fill: !cc.noStore, next: next}

	if cc.noCache {
		l.m.lookups.WithLabelValues("exact", "bypass").Inc()
		w.Header().Set(HeaderCache, "BYPASS")
		t.uncollapsed(w, r)
		return
	}

	if e := l.lookup(ctx, ns, key); e != nil {
		l.hit(w, r, req, e, "")
		return
	}
	if l.semanticWanted(r) && req.semOK && l.cfg.Embed != nil {
		t.bucket = req.bucket(sc)
		if e, score := t.semanticLookup(ctx); e != nil {
			l.hit(w, r, req, e, formatSimilarity(score))
			return
		}
	}
	w.Header().Set(HeaderCache, "MISS")
	if l.cfg.DisableSingleflight {
		t.uncollapsed(w, r)
		return
	}
	t.collapsed(w, r)
}

// semanticWanted: the request header decides when present, else the key.
func (l *Layer) semanticWanted(r *http.Request) bool {
	switch v := r.Header.Get(HeaderSemantic); {
	case strings.EqualFold(v, "on"), strings.EqualFold(v, "true"), v == "1":
		return true
	case strings.EqualFold(v, "off"), strings.EqualFold(v, "false"), v == "0":
		return false
	}
	p := reqinfo.PrincipalFrom(r.Context())
	return p != nil && p.SemanticCache
}

// lookup returns the stored entry, or nil on a miss or any failure.
func (l *Layer) lookup(ctx context.Context, ns, key string) *Entry {
	b, ok, err := l.store.Get(ctx, ns, key)
	switch {
	case err != nil:
		l.m.lookups.WithLabelValues("exact", "error").Inc()
		if ctx.Err() == nil {
			l.log.Debug("cache lookup failed; serving uncached", "err", err)
		}
		return nil
	case !ok:
		l.m.lookups.WithLabelValues("exact", "miss").Inc()
		return nil
	}
	e, err := decodeEntry(b)
	if err != nil {
		l.m.lookups.WithLabelValues("exact", "error").Inc()
		l.log.Warn("undecodable cache entry; ignoring it", "key", key, "err", err)
		return nil
	}
	l.m.lookups.WithLabelValues("exact", "hit").Inc()
	return e
}

// hit answers from e: usage is reported as if the model had run, and the
// meter is marked Cached so that quotas can tell.
func (l *Layer) hit(w http.ResponseWriter, r *http.Request, req *request, e *Entry, similarity string) {
	ctx := r.Context()
	if e.Usage != nil {
		reqinfo.Report(ctx, reqinfo.Usage{PromptTokens: e.Usage.PromptTokens, CompletionTokens: e.Usage.CompletionTokens})
	}
	if m := reqinfo.MeterFrom(ctx); m != nil {
		m.Cached = true
	}
	w.Header().Set(HeaderCache, "HIT")
	if similarity != "" {
		w.Header().Set(HeaderSimilarity, similarity)
	}
	e.write(w, req.stream, req.includeUsage)
}

// task is one cacheable miss.
type task struct {
	l         *Layer
	req       *request
	ns, key   string
	bucket    string
	vec       []float32 // the prompt's embedding, when semantic lookup ran
	fill      bool
	next      http.Handler
	attempted bool
}

func (t *task) semanticLookup(ctx context.Context) (*Entry, float32) {
	l := t.l
	ectx, cancel := context.WithTimeout(ctx, l.cfg.EmbedTimeout)
	vec, err := l.cfg.Embed(ectx, t.req.model, t.req.semText)
	cancel()
	if err != nil || len(vec) == 0 {
		l.m.lookups.WithLabelValues("semantic", "error").Inc()
		l.log.Debug("embedding for semantic lookup failed", "err", err)
		return nil, 0
	}
	t.vec = vec
	matches, err := l.index.Search(ctx, t.ns, t.bucket, vec, 5, float32(l.cfg.SemanticThreshold))
	if err != nil {
		l.m.lookups.WithLabelValues("semantic", "error").Inc()
		return nil, 0
	}
	if len(matches) > 0 {
		l.m.similarity.Observe(float64(matches[0].Score))
	}
	for _, m := range matches {
		if !sameMeaningGuard(t.req.semText, m.Text) {
			continue
		}
		b, ok, err := l.store.Get(ctx, t.ns, m.ID)
		if err != nil || !ok {
			continue
		}
		e, err := decodeEntry(b)
		if err != nil {
			continue
		}
		l.m.lookups.WithLabelValues("semantic", "hit").Inc()
		return e, m.Score
	}
	l.m.lookups.WithLabelValues("semantic", "miss").Inc()
	return nil, 0
}

// upstream runs next with the response teed into a capture, and returns the
// normalised entry when the response completed cleanly (nil otherwise).
func (t *task) upstream(w http.ResponseWriter, r *http.Request) *Entry {
	tw := &tee{w: w, max: 8 * t.l.cfg.MaxEntryBytes}
	t.next.ServeHTTP(tw, r)
	if tw.status != http.StatusOK || tw.overflow || r.Context().Err() != nil {
		return nil
	}
	var e *Entry
	var err error
	if isSSE(tw.Header().Get("Content-Type")) {
		e, err = entryFromSSE(t.req.kind, tw.buf.Bytes())
	} else {
		e, err = entryFromJSON(t.req.kind, tw.buf.Bytes())
	}
	if err != nil {
		return nil
	}
	if e.Usage == nil {
		if m := reqinfo.MeterFrom(r.Context()); m != nil {
			if u, ok := m.Usage(); ok {
				e.Usage = usageOf(u)
			}
		}
	}
	return e
}

// uncollapsed goes upstream alone and fills.
func (t *task) uncollapsed(w http.ResponseWriter, r *http.Request) {
	if e := t.upstream(w, r); e != nil && t.fill {
		t.l.fillAsync(t, e, nil)
	}
}

// collapsed makes identical concurrent misses share one upstream call. The
// leader streams to its own client as usual; followers wait and get the
// leader's answer replayed in their own format. The finished flight stays
// joinable until the fill has reached the store, so no request slips
// through the gap between the two. If the leader fails, the followers elect
// a new leader; after a few failures each goes upstream alone.
func (t *task) collapsed(w http.ResponseWriter, r *http.Request) {
	l := t.l
	for attempt := 0; attempt < 3; attempt++ {
		f, leader := l.flights.join(t.key)
		if leader {
			finished := false
			defer func() { // on panic (http.ErrAbortHandler) the followers retry
				if !finished {
					l.flights.finish(t.key, f, nil, false)
				}
			}()
			e := t.upstream(w, r)
			fill := e != nil && t.fill
			l.flights.finish(t.key, f, e, fill)
			finished = true
			if fill {
				l.fillAsync(t, e, func() { l.flights.forget(t.key, f) })
			}
			return
		}
		select {
		case <-f.done:
		case <-r.Context().Done():
			return // the client went away; nothing to write to
		}
		if f.entry != nil {
			l.m.collapsed.Inc()
			l.hit(w, r, t.req, f.entry, "")
			return
		}
	}
	t.uncollapsed(w, r)
}

// fillAsync writes e to the cache (and the semantic index) in the background.
// done (may be nil) runs when the fill has finished or was skipped.
func (l *Layer) fillAsync(t *task, e *Entry, done func()) {
	if done == nil {
		done = func() {}
	}
	b, err := encodeEntry(e)
	if err != nil || len(b) > l.cfg.MaxEntryBytes {
		done()
		return
	}
	select {
	case l.fillSem <- struct{}{}:
	default:
		l.m.fillsDropped.Inc()
		done()
		return // too many fills pending: the cache is slow; skip this one
	}
	l.fills.add()
	go func() {
		defer l.fills.done()
		defer func() { <-l.fillSem }()
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*l.cfg.Timeout)
		defer cancel()
		if err := l.store.Set(ctx, t.ns, t.key, b, l.cfg.TTL); err != nil {
			l.m.fillErrors.Inc()
			l.log.Debug("cache fill failed", "err", err)
			return
		}
		if t.vec != nil && t.bucket != "" {
			se := cache.SemanticEntry{ID: t.key, Text: t.req.semText, Vector: t.vec}
			if err := l.index.Add(ctx, t.ns, t.bucket, se, l.cfg.TTL); err != nil {
				l.m.fillErrors.Inc()
				l.log.Debug("semantic index fill failed", "err", err)
			}
		}
	}()
}

// group is a minimal singleflight whose followers receive the leader's
// entry (x/sync/singleflight would hand them the leader's writer-bound
// result, which they cannot replay in their own format).
type group struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done  chan struct{}
	entry *Entry
}

func (g *group) join(key string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.m[key]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// finish publishes the leader's entry. With keep, the flight stays in the
// map (late joiners get the entry at once) until forget.
func (g *group) finish(key string, f *flight, e *Entry, keep bool) {
	g.mu.Lock()
	if !keep && g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
	f.entry = e
	close(f.done)
}

func (g *group) forget(key string, f *flight) {
	g.mu.Lock()
	if g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
}

// tee passes every byte to the client at once (and passes Flush through)
// while keeping a bounded copy for the cache.
type tee struct {
	w        http.ResponseWriter
	status   int
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (t *tee) Header() http.Header { return t.w.Header() }

func (t *tee) WriteHeader(code int) {
	if t.status == 0 && code >= 200 {
		t.status = code
	}
	t.w.WriteHeader(code)
}

func (t *tee) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	n, err := t.w.Write(p)
	if !t.overflow {
		if t.buf.Len()+n > t.max {
			t.overflow = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(p[:n])
		}
	}
	return n, err
}

func (t *tee) Flush() { _ = http.NewResponseController(t.w).Flush() }

func (t *tee) Unwrap() http.ResponseWriter { return t.w }

func isSSE(ct string) bool {
	return len(ct) >= len("text/event-stream") && strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream")
}

// pendingFills counts background fills. Unlike sync.WaitGroup it may be
// waited on while new fills start (Close during traffic, as tests do to
// flush), which a WaitGroup forbids once its counter has reached zero.
type pendingFills struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (p *pendingFills) add() {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
}

func (p *pendingFills) done() {
	p.mu.Lock()
	p.n--
	if p.n == 0 && p.zero != nil {
		p.zero.Broadcast()
	}
	p.mu.Unlock()
}

func (p *pendingFills) wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.zero == nil {
		p.zero = sync.NewCond(&p.mu)
	}
	for p.n > 0 {
		p.zero.Wait()
	}
}
