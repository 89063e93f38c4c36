package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/telemetry"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight prometheus.Gauge

	// Children by label values: WithLabelValues hashes and allocates on
	// every call, which a busy gateway pays per request.
	mu       sync.RWMutex
	children map[childKey]child
}

type childKey struct {
	route, method string
	code          int
}

type child struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// observe counts a finished request.
func (m *httpMetrics) observe(route, method string, code int, d time.Duration) {
	k := childKey{route, method, code}
	m.mu.RLock()
	c, ok := m.children[k]
	m.mu.RUnlock()
	if !ok {
		c = child{m.requests.WithLabelValues(route, method, strconv.Itoa(code)), m.latency.WithLabelValues(route, method)}
		m.mu.Lock()
		m.children[k] = c
		m.mu.Unlock()
	}
	c.requests.Inc()
	c.latency.Observe(d.Seconds())
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmo_http_request_duration_seconds",
			Help:    "HTTP request latency until the handler returned, by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmo_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		children: map[childKey]child{},
	}
	reg.MustRegister(m.requests, m.latency, m.inflight)
	return m
}

// wrap puts the standard middleware around h: panic recovery, request id,
// access log, metrics labelled by route template, and the body limit.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !telemetry.ValidRequestID(id) {
			id = telemetry.NewRequestID()
		}
		ctx := telemetry.WithRequestID(r.Context(), id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		rec := &recorder{ResponseWriter: w}
		s.metrics.inflight.Inc()
		defer func() {
			s.metrics.inflight.Dec()
			p := recover()
			if p != nil && p != http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				s.Log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "path", r.URL.Path)
				if !rec.wrote {
					WriteError(rec, r, errs.E(errs.Internal, "internal error"))
				}
			}
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) && !rec.complete() {
				code = 499 // client closed the request
			}
			route := r.Pattern
			if route == "" && s.common.OTLPEndpoint != "" {
				// The tracing handler routes a copy of r, so the mux set
				// the pattern there; ask the mux again.
				_, route = s.Mux.Handler(r)
			}
			if route == "" {
				route = "unmatched"
			}
			s.metrics.observe(route, r.Method, code, time.Since(start))
			level := slog.LevelInfo
			if route == "GET /health" || route == "GET /ready" || route == "GET /metrics" {
				level = slog.LevelDebug
			}
			if s.Log.Enabled(ctx, level) { // no argument boxing when the level is off
				s.Log.LogAttrs(ctx, level, "request", slog.String("method", r.Method), slog.String("route", route),
					slog.Int("status", code), slog.Int64("bytes", rec.bytes),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
			}
			if p == http.ErrAbortHandler { //nolint:errorlint
				panic(p)
			}
		}()
		if r.ContentLength > s.common.MaxBodyBytes {
			WriteError(rec, r, errs.E(errs.TooLarge, "request body is %d bytes; the limit is %d", r.ContentLength, s.common.MaxBodyBytes))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, s.common.MaxBodyBytes)
		}
		h.ServeHTTP(rec, r)
	})
}

// recorder captures the status and size of a response. It passes Flush and
// Unwrap through so that streaming handlers and http.ResponseController work.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// complete is true when a full non-streaming response was written; a
// cancelled client that already got its answer is not a 499.
func (r *recorder) complete() bool {
	return r.wrote && r.Header().Get("Content-Type") != "text/event-stream" && r.Header().Get("Content-Type") != "application/x-ndjson"
}
