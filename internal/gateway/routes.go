package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/buildinfo"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gateway/proxy"
	"github.com/llmo/llmo/internal/ollama"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/service"
)

var proxiedRoutes = []string{"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings"}

func (g *Gateway) routes() {
	l := g.layers
	// The in-process /v1 handler: what the Ollama translation calls too.
	inner := http.NewServeMux()
	for _, p := range proxiedRoutes {
		inner.Handle(p, g.proxy)
	}
	inner.HandleFunc("GET /v1/models", g.serveModels)
	inner.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		service.WriteError(w, r, errs.E(errs.NotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	g.v1 = g.observe(l.auth(g.tap(l.cache(inner))))

	mux := g.srv.Mux
	c := newCORS(g.cfg.CORSOrigins)
	for _, p := range proxiedRoutes {
		mux.Handle(p, c.wrap(g.v1))
	}
	mux.Handle("GET /v1/models", c.wrap(g.v1))
	// Unknown /v1 paths and wrong methods get the OpenAI envelope. A
	// method-less "/v1/" would conflict with "OPTIONS /".
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		mux.Handle(m+" /v1/", c.wrap(http.HandlerFunc(g.serveV1Fallback)))
	}
	mux.Handle("OPTIONS /", c.preflight())
	// The topology (replica URLs, states) is for key holders when auth is on;
	// probes use the open /health and /ready.
	mux.Handle("GET /api/health", c.wrap(l.auth(http.HandlerFunc(g.serveHealth))))
	mux.Handle("GET /admin/stats", c.wrap(l.admin(http.HandlerFunc(g.serveStats))))
	mux.Handle("POST /admin/replicas", l.admin(http.HandlerFunc(g.serveRegister)))
	mux.Handle("DELETE /admin/replicas", l.admin(http.HandlerFunc(g.serveDeregister)))
	if l.ollama != nil {
		oh := c.wrap(l.ollama(g.v1))
		// Each Ollama route on its own entry, so metrics carry the template.
		for _, p := range ollama.Patterns {
			mux.Handle(p, oh)
		}
	}
	if l.dashboard != nil {
		g.dash = l.dashboard(g.srv.Handler())
	}
}

// serveV1Fallback answers unknown /v1 paths and wrong methods in the OpenAI
// envelope (the mux's own answers are plain text).
func (g *Gateway) serveV1Fallback(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	for _, p := range append(proxiedRoutes, "GET /v1/models") {
		method, route, _ := strings.Cut(p, " ")
		if route == path {
			w.Header().Set("Allow", method+", OPTIONS")
			service.WriteError(w, r, errs.E(errs.MethodNotAllowed, "%s %s is not allowed; use %s", r.Method, path, method))
			return
		}
	}
	service.WriteError(w, r, errs.E(errs.NotFound, "no route for %s %s", r.Method, path))
}

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	models := g.reg.Models()
	if p := reqinfo.PrincipalFrom(r.Context()); p != nil && len(p.AllowedModels) > 0 {
		allowed := map[string]bool{}
		for _, m := range p.AllowedModels {
			allowed[m] = true
		}
		kept := models[:0]
		for _, m := range models {
			if allowed[m.ID] {
				kept = append(kept, m)
			}
		}
		models = kept
	}
	service.WriteJSON(w, http.StatusOK, api.ModelList{Object: "list", Data: models})
}

// exchange is what the observe layer learns from the layers inside it, and
// the per-request state observe needs, allocated once.
type exchange struct {
	key  string
	sw   statusWriter
	body bodyReader
}

type exchangeKey struct{}

// bodyReader replays the already-read body to the inner layers (one
// allocation less than io.NopCloser(bytes.NewReader(b))).
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// routeOf is the metric label of a proxied route, without concatenating.
func routeOf(k proxy.Kind) string {
	switch k {
	case proxy.Completion:
		return "POST /v1/completions"
	case proxy.Embedding:
		return "POST /v1/embeddings"
	}
	return "POST /v1/chat/completions"
}

// observe reads and parses a /v1 request once, refuses what cannot be
// routed, and records the request metrics and /admin/stats after the inner
// layers ran. Ollama requests translated to /v1 pass here too.
func (g *Gateway) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ex := &exchange{}
		ex.sw.ResponseWriter = w
		sw := &ex.sw
		ctx := context.WithValue(r.Context(), exchangeKey{}, ex)
		model, route := "", "GET /v1/models"
		if kind, ok := proxy.KindOf(r.URL.Path); ok && r.Method == http.MethodPost {
			route = routeOf(kind)
			req, err := g.readRequest(r, kind)
			if err != nil {
				service.WriteError(sw, r, err)
				g.record(route, "", ex, sw.code(), time.Since(start))
				return
			}
			model = req.Model
			ctx = proxy.WithRequest(ctx, req)
			r = r.WithContext(ctx)
			ex.body.Reset(req.Body)
			r.Body = &ex.body
			r.ContentLength = int64(len(req.Body))
		} else {
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(sw, r)
		g.record(route, model, ex, sw.code(), time.Since(start))
	})
}

// jsonType reports whether a Content-Type is JSON, parsing it only when it
// is not one of the usual spellings.
func jsonType(ct string) bool {
	if strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "application/json; charset=utf-8") {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func (g *Gateway) readRequest(r *http.Request, kind proxy.Kind) (*proxy.Request, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !jsonType(ct) {
		return nil, errs.E(errs.UnsupportedMedia, "Content-Type must be application/json, got %q", ct)
	}
	if r.Body == nil {
		return nil, errs.E(errs.Invalid, "request body is empty; expected a JSON object")
	}
	body, err := readBody(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
		}
		if r.Context().Err() != nil {
			return nil, errs.Wrap(errs.Canceled, err, "request canceled")
		}
		return nil, errs.Wrap(errs.Invalid, err, "could not read request body")
	}
	return proxy.Parse(kind, body, g.proxy.PrefixChars())
}

// readBody reads the request body into a buffer sized by Content-Length
// when the client sent one (io.ReadAll would grow it from 512 bytes).
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= 64<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		// Reach EOF, so that the server starts watching the connection for
		// a client hang-up (and notices a body longer than announced).
		var one [1]byte
		if m, _ := r.Body.Read(one[:]); m > 0 {
			return nil, errs.E(errs.Invalid, "request body is longer than its Content-Length")
		}
		return b, nil
	}
	return io.ReadAll(r.Body)
}

// tap sits just inside auth and tells observe who the caller is.
func (g *Gateway) tap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ex, _ := r.Context().Value(exchangeKey{}).(*exchange); ex != nil {
			if p := reqinfo.PrincipalFrom(r.Context()); p != nil {
				ex.key = p.KeyName
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) record(route, model string, ex *exchange, code int, d time.Duration) {
	if model != "" && !g.reg.HasModel(model) {
		model = "unknown" // client-chosen names must not explode label cardinality
	}
	key := ex.key
	if key == "" {
		key = "none"
	}
	g.m.requestsC.Get(requestKey{route, model, codeLabel(code), key}).Inc()
	g.m.durationC.Get([2]string{route, model}).Observe(d.Seconds())
	if route != "GET /v1/models" {
		g.ring.Request(d, code >= 500)
	}
}

// statusWriter records the status; Flush and Unwrap keep streaming and
// http.ResponseController working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return 499 // nothing written: the client went away
	}
	return w.status
}

// health is /api/health's body.
type health struct {
	Status  string           `json:"status"`
	Version string           `json:"version"`
	Uptime  int64            `json:"uptime_s"`
	Pools   []poolStatusJSON `json:"pools"`
	Cache   depStatus        `json:"cache"`
	Storage depStatus        `json:"storage"`
}

type poolStatusJSON = upstreamPoolStatus

type depStatus struct {
	URL   string `json:"url"`
	State string `json:"state"`
}

func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := health{Version: buildinfo.Version, Uptime: int64(time.Since(g.start).Seconds()), Pools: g.reg.Status()}
	h.Cache = depStatus{URL: g.cfg.CacheURL, State: "disabled"}
	if g.layers.cacheHealth != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		if err := g.layers.cacheHealth(ctx); err != nil {
			h.Cache.State = "degraded"
		} else {
			h.Cache.State = "ok"
		}
		cancel()
	}
	h.Storage = depStatus{URL: g.cfg.StorageURL, State: g.storageState.Load().(string)}
	servable, degraded := 0, h.Cache.State == "degraded" || h.Storage.State == "down"
	for _, p := range h.Pools {
		if p.Model == "" {
			degraded = true
			continue
		}
		if p.Healthy > 0 {
			servable++
		}
		if p.Healthy < len(p.Replicas) {
			degraded = true
		}
	}
	status := http.StatusOK
	switch {
	case servable == 0:
		h.Status, status = "down", http.StatusServiceUnavailable
	case degraded || servable < countModels(h.Pools):
		h.Status = "degraded"
	default:
		h.Status = "ok"
	}
	service.WriteJSON(w, status, h)
}

func countModels(ps []upstreamPoolStatus) int {
	n := 0
	for _, p := range ps {
		if p.Model != "" {
			n++
		}
	}
	return n
}

func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request) {
	service.WriteJSON(w, http.StatusOK, g.ring.Snapshot())
}

type registration struct {
	URL  string   `json:"url"`
	TTLs *float64 `json:"ttl_s"`
}

func (g *Gateway) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req registration
	if err := service.DecodeJSON(r, &req); err != nil {
		service.WriteError(w, r, err)
		return
	}
	ttl := 15.0
	if req.TTLs != nil {
		ttl = *req.TTLs
	}
	if ttl < 1 || ttl > 3600 {
		service.WriteError(w, r, errs.Param("ttl_s", "ttl_s must be between 1 and 3600 seconds"))
		return
	}
	norm, err := g.reg.Register(req.URL, time.Duration(ttl*float64(time.Second)))
	if err != nil {
		service.WriteError(w, r, errs.Param("url", "%s", err.Error()))
		return
	}
	service.WriteJSON(w, http.StatusOK, map[string]any{"url": norm, "ttl_s": ttl,
		"expires_at": time.Now().Add(time.Duration(ttl * float64(time.Second))).UTC().Format(time.RFC3339)})
}

func (g *Gateway) serveDeregister(w http.ResponseWriter, r *http.Request) {
	var req registration
	if err := service.DecodeJSON(r, &req); err != nil {
		service.WriteError(w, r, err)
		return
	}
	had, err := g.reg.Deregister(req.URL)
	if err != nil {
		service.WriteError(w, r, errs.Param("url", "%s", err.Error()))
		return
	}
	if !had {
		service.WriteError(w, r, errs.E(errs.NotFound, "no registered replica %s", req.URL))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
