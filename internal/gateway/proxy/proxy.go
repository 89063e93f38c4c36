// Package proxy forwards OpenAI API requests to a replica of the model's
// pool. It picks the replica with a balance policy, guards each with its
// circuit breaker, retries (within a budget, on another replica when there
// is one) until the first byte has gone to the client, streams SSE through
// with a flush per event, and turns an upstream that dies mid-stream into a
// well-formed SSE error event. The structure follows
// net/http/httputil.ReverseProxy (hop-by-hop header removal, pooled
// buffers, http.ErrAbortHandler for a body that cannot be finished) but owns
// the attempt loop, which ReverseProxy has no room for.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gateway/balance"
	"github.com/llmo/llmo/internal/gateway/stats"
	"github.com/llmo/llmo/internal/gateway/upstream"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// Config tunes the proxy.
type Config struct {
	Balancer          string        // balance policy name
	PrefixChars       int           // prompt bytes hashed by the prefix policy (default 256)
	ConnectTimeout    time.Duration // TCP connect (default 2s)
	FirstByteTimeout  time.Duration // until response headers (default 120s; non-streamed generations answer only when done)
	StreamIdleTimeout time.Duration // longest silence inside a stream (default 60s)
	TotalTimeout      time.Duration // whole request (default 10m)
	MaxRetries        int           // retries after the first attempt (default 2)
	RetryRatio        float64       // retry budget: retries per request (default 0.2)
	RetryMinPerSec    float64       // retry budget floor (default 10)
	MaxResponseBytes  int64         // largest non-streamed upstream body (default 64 MiB)

	// Propagator, when tracing is on, injects the request's span context
	// (the gateway's server span) into upstream requests, so the replica's
	// span is a child of an exported gateway span. Nil (tracing off): the
	// client's trace id is forwarded with a fresh span id, at no cost.
	Propagator propagation.TextMapPropagator
}

func (c *Config) defaults() {
	if c.PrefixChars <= 0 {
		c.PrefixChars = 256
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = 120 * time.Second
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = 60 * time.Second
	}
	if c.TotalTimeout <= 0 {
		c.TotalTimeout = 10 * time.Minute
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryRatio <= 0 {
		c.RetryRatio = 0.2
	}
	if c.RetryMinPerSec <= 0 {
		c.RetryMinPerSec = 10
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 64 << 20
	}
}

// Proxy is the http.Handler for the proxied /v1 routes.
type Proxy struct {
	cfg       Config
	reg       *upstream.Registry
	policy    balance.Policy[*upstream.Replica]
	transport *h1Client
	budget    *Budget
	m         *metrics
	ring      *stats.Ring
	log       *slog.Logger
	bufs      sync.Pool
}

// New builds a Proxy over the replicas in reg. ring may be nil.
func New(cfg Config, reg *upstream.Registry, ring *stats.Ring, promReg prometheus.Registerer, log *slog.Logger) (*Proxy, error) {
	cfg.defaults()
	pol, err := balance.New[*upstream.Replica](cfg.Balancer)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // replicas are addressed directly, never through HTTP_PROXY
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ExpectContinueTimeout: 0,
		ForceAttemptHTTP2:     false, // plain HTTP/1.1 keep-alive is fastest for small requests
		DisableCompression:    true,  // pass encodings through untouched
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	p := &Proxy{cfg: cfg, reg: reg, policy: pol, transport: newH1Client(dialer, tr, 1024), ring: ring, log: log,
		budget: NewBudget(cfg.RetryRatio, cfg.RetryMinPerSec), m: newMetrics(promReg)}
	p.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	return p, nil
}

// Close drops idle upstream connections.
func (p *Proxy) Close() { p.transport.CloseIdleConnections() }

// Transport is the upstream transport (shared with in-process helpers such
// as the response cache's embedding calls).
func (p *Proxy) Transport() http.RoundTripper { return p.transport }

// ServeHTTP proxies POST /v1/chat/completions, /v1/completions and
// /v1/embeddings.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := RequestFrom(r.Context())
	if req == nil {
		kind, ok := KindOf(r.URL.Path)
		if !ok {
			service.WriteError(w, r, errs.E(errs.NotFound, "no route for %s %s", r.Method, r.URL.Path))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			service.WriteError(w, r, readErr(r, err))
			return
		}
		prefix := 0
		if p.policy.NeedsKey() {
			prefix = p.cfg.PrefixChars
		}
		if req, err = Parse(kind, body, prefix); err != nil {
			service.WriteError(w, r, err)
			return
		}
	}
	if err := p.Forward(w, r, req); err != nil {
		service.WriteError(w, r, err)
	}
}

// PrefixChars is how much of the prompt Parse must keep for the policy (0
// when the policy ignores prefixes).
func (p *Proxy) PrefixChars() int {
	if p.policy.NeedsKey() {
		return p.cfg.PrefixChars
	}
	return 0
}

func readErr(r *http.Request, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
	}
	if r.Context().Err() != nil {
		return errs.Wrap(errs.Canceled, err, "request canceled")
	}
	return errs.Wrap(errs.Invalid, err, "could not read request body")
}

// attemptErr classifies a failed attempt.
type attemptErr struct {
	reason    string // label for llmo_gateway_retries_total
	retryable bool
	replicaAt bool // counts against the replica (outlier detection, breaker)
	err       error
}

var (
	errFirstByte  = errors.New("first-byte timeout")
	errStreamIdle = errors.New("stream idle timeout")
	errTotal      = errors.New("total timeout")
)

// attemptTimer is an attempt's single timer: the first-byte timeout until
// the response headers arrive, then the stream idle timeout (streams) or
// the rest of the total timeout, which it enforces throughout.
type attemptTimer struct {
	t            *time.Timer
	deadline     time.Time // the request's total deadline
	afterHeaders atomic.Bool
}

func newAttemptTimer(deadline time.Time, firstByte time.Duration, cancel context.CancelCauseFunc) *attemptTimer {
	at := &attemptTimer{deadline: deadline}
	at.t = time.AfterFunc(min(firstByte, time.Until(deadline)), func() {
		switch {
		case !time.Now().Before(at.deadline):
			cancel(errTotal)
		case at.afterHeaders.Load():
			cancel(errStreamIdle)
		default:
			cancel(errFirstByte)
		}
	})
	return at
}

// headers switches to the phase after the response headers: the timer
// fires after idle (0: only at the total deadline).
func (at *attemptTimer) headers(idle time.Duration) {
	at.afterHeaders.Store(true)
	at.reset(idle)
}

// reset restarts the idle wait (capped by the total deadline).
func (at *attemptTimer) reset(idle time.Duration) {
	d := time.Until(at.deadline)
	if idle > 0 && idle < d {
		d = idle
	}
	at.t.Reset(d)
}

// Forward sends req to a replica and writes the answer to w. It returns an
// error only when nothing has been written yet.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, req *Request) error {
	start := time.Now()
	pool := p.reg.Pool(req.Model)
	if len(pool) == 0 {
		return errs.E(errs.NotFound, "The model `%s` does not exist or no replica serves it", req.Model).WithCode("model_not_found")
	}
	body, injected, err := req.UpstreamBody()
	if err != nil {
		return err
	}
	var key uint64
	if p.policy.NeedsKey() && req.Prefix != nil {
		key = balance.HashKey(req.Prefix)
	}
	// The total timeout is a deadline each attempt's timer enforces, not a
	// context of its own: one context and timer fewer per request.
	deadline := start.Add(p.cfg.TotalTimeout)
	ctx := r.Context()
	p.budget.Deposit()

	var tried []*upstream.Replica
	var last *attemptErr
	var lastResp *bufferedResponse
	for attempt := 0; attempt <= p.cfg.MaxRetries; attempt++ {
		if attempt > 0 {
			if !p.budget.Withdraw() {
				p.m.retries.WithLabelValues(req.Model, "budget_exhausted").Inc()
				break
			}
			p.m.retries.WithLabelValues(req.Model, last.reason).Inc()
		}
		rep := p.pick(pool, tried, key)
		if rep == nil {
			break
		}
		if attempt > 0 && contains(tried, rep) {
			// Same replica again (no other): back off a little first.
			d := time.Duration(25*attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(25*time.Millisecond)))
			t := time.NewTimer(min(d, time.Until(deadline)))
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		tried = append(tried, rep)
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		done, berr := rep.Breaker()
		if berr != nil {
			last = &attemptErr{reason: "breaker_open", retryable: true, err: berr}
			continue
		}
		res, aerr := p.attempt(deadline, w, r, req, rep, body, injected, start)
		switch {
		case aerr == nil:
			done(nil)
			p.reg.Report(rep, false, "")
			return nil
		case res != nil && !aerr.retryable:
			// A complete error answer (such as 500) to pass through as is.
			done(outcome(aerr))
			if aerr.replicaAt {
				p.reg.Report(rep, true, aerr.reason)
			}
			res.writeTo(w)
			return nil
		}
		done(outcome(aerr))
		if aerr.replicaAt {
			p.reg.Report(rep, true, aerr.reason)
		}
		if aerr.err == errWritten {
			return nil
		}
		last, lastResp = aerr, res
		if !aerr.retryable || r.Context().Err() != nil {
			break
		}
	}
	if r.Context().Err() != nil {
		return errs.Wrap(errs.Canceled, r.Context().Err(), "request canceled")
	}
	if lastResp != nil {
		// Retries are spent: the client gets the last upstream answer (429,
		// 503, ...) verbatim, Retry-After included.
		lastResp.writeTo(w)
		return nil
	}
	if last == nil {
		return errs.E(errs.Unavailable, "no healthy replica serves model %q", req.Model).WithRetry(time.Second)
	}
	switch {
	case errors.Is(last.err, context.DeadlineExceeded) || errors.Is(last.err, errFirstByte):
		return errs.Wrap(errs.Timeout, last.err, "the model replica did not answer in time")
	case last.reason == "breaker_open":
		return errs.Wrap(errs.Unavailable, last.err, "every replica of model %q is failing; try again shortly", req.Model).WithRetry(time.Second)
	}
	return errs.Wrap(errs.BadGateway, last.err, "could not reach a replica of model %q", req.Model)
}

var errWritten = errors.New("response already started")

func outcome(a *attemptErr) error {
	if a == nil {
		return nil
	}
	if !a.replicaAt {
		if errors.Is(a.err, context.Canceled) {
			return context.Canceled
		}
		return nil // 429 and client errors say nothing about the replica's health
	}
	if a.err != nil {
		return a.err
	}
	return errors.New(a.reason)
}

func contains(rs []*upstream.Replica, r *upstream.Replica) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// pick chooses among the available replicas, preferring ones not tried yet.
func (p *Proxy) pick(pool, tried []*upstream.Replica, key uint64) *upstream.Replica {
	var buf [16]*upstream.Replica
	cands := buf[:0]
	for _, r := range pool {
		if r.Available() && !contains(tried, r) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		for _, r := range pool {
			if r.Available() {
				cands = append(cands, r)
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[p.policy.Pick(cands, key)]
}

// hop-by-hop headers (RFC 9110 7.6.1), never forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwarded request headers: the client's credentials are the gateway's
// business and stay here.
var forwardHeaders = []string{"Accept", "Accept-Language", "User-Agent", "Tracestate", "Openai-Organization", "Openai-Project"}

// Shared read-only header values (no per-request slice).
var (
	jsonContentType = []string{"application/json"}
	sseAccept       = []string{"text/event-stream"}
)

func (p *Proxy) attempt(deadline time.Time, w http.ResponseWriter, r *http.Request, req *Request,
	rep *upstream.Replica, body []byte, injected bool, start time.Time) (*bufferedResponse, *attemptErr) {
	ctx := r.Context()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := make(http.Header, 8)
	for _, k := range forwardHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	h["Content-Type"] = jsonContentType
	if id := telemetry.RequestID(r.Context()); id != "" {
		h["X-Request-Id"] = []string{id}
	}
	if p.cfg.Propagator != nil && trace.SpanContextFromContext(r.Context()).IsValid() {
		p.cfg.Propagator.Inject(r.Context(), propagation.HeaderCarrier(h))
	} else {
		h["Traceparent"] = []string{traceparent(r.Header)}
	}
	if req.Stream {
		h["Accept"] = sseAccept
	}

	rep.Hold()
	defer rep.Release()
	timer := newAttemptTimer(deadline, p.cfg.FirstByteTimeout, cancel)
	defer timer.t.Stop()
	t0 := time.Now()
	var resp *http.Response
	var err error
	if rep.Base != nil && rep.Base.Scheme == "http" {
		resp, err = p.transport.Post(actx, rep.Base.Host, rep.Base.Path, req.Kind.Path(), h, body)
	} else {
		var out *http.Request
		out, err = http.NewRequestWithContext(actx, http.MethodPost, rep.URL+req.Kind.Path(), bytes.NewReader(body))
		if err != nil {
			return nil, &attemptErr{reason: "request", err: err}
		}
		out.ContentLength = int64(len(body))
		out.Header = h
		resp, err = p.transport.RoundTrip(out)
	}
	if err != nil {
		p.m.upstreamCount(req.Model, rep.URL, "error")
		return nil, p.classify(ctx, actx, err)
	}
	rep.ObserveLatency(time.Since(t0))
	code := resp.StatusCode
	p.m.upstreamCount(req.Model, rep.URL, codeLabel(code))

	if code == http.StatusOK && isSSE(resp.Header) {
		timer.headers(p.cfg.StreamIdleTimeout)
		p.stream(actx, cancel, timer, w, r, req, rep, resp, injected, start)
		return nil, nil
	}
	timer.headers(0)
	// Non-streamed: read it all first, so that a replica dying mid-body can
	// still be retried; these bodies are small.
	res, rerr := p.buffer(resp)
	if rerr != nil {
		return nil, p.classify(ctx, actx, rerr)
	}
	switch code {
	case http.StatusTooManyRequests:
		return res, &attemptErr{reason: "429", retryable: true}
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return res, &attemptErr{reason: strconv.Itoa(code), retryable: true, replicaAt: true}
	}
	if code >= 500 {
		return res, &attemptErr{reason: strconv.Itoa(code), replicaAt: true}
	}
	if code == http.StatusOK {
		if u, ok := usageOf(res.body); ok {
			p.account(ctx, req.Model, u)
		}
	}
	res.writeTo(w)
	return nil, nil
}

// classify turns a transport error into an attemptErr.
func (p *Proxy) classify(ctx, actx context.Context, err error) *attemptErr {
	if ctx.Err() != nil {
		// The client left: not the replica's fault.
		return &attemptErr{reason: "canceled", err: context.Cause(ctx)}
	}
	cause := context.Cause(actx)
	if cause == errTotal { //nolint:errorlint // our own sentinel, never wrapped
		// The total timeout expired: not the replica's fault either.
		return &attemptErr{reason: "canceled", err: context.DeadlineExceeded}
	}
	if errors.Is(cause, errFirstByte) {
		// Nothing reached the client and the attempt is cancelled (the
		// replica drops the sequence), so a hung replica's request may be
		// served by another one; the retry budget bounds the extra load.
		return &attemptErr{reason: "first_byte_timeout", retryable: true, replicaAt: true, err: errFirstByte}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &attemptErr{reason: "connect", retryable: true, replicaAt: true, err: err}
	}
	// The connection died before the answer was complete (the replica
	// crashed or restarted). Nothing reached the client, and generation has
	// no side effects, so another replica may serve it.
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) ||
		errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "server closed idle connection") {
		return &attemptErr{reason: "reset", retryable: true, replicaAt: true, err: err}
	}
	return &attemptErr{reason: "transport", retryable: true, replicaAt: true, err: err}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func isSSE(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
}

type bufferedResponse struct {
	code   int
	header http.Header
	body   []byte
}

func (p *Proxy) buffer(resp *http.Response) (*bufferedResponse, error) {
	defer resp.Body.Close()
	var b []byte
	if resp.ContentLength >= 0 && resp.ContentLength <= p.cfg.MaxResponseBytes {
		b = make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		// Read to EOF so that the connection goes back to the pool.
		var one [1]byte
		if n, _ := resp.Body.Read(one[:]); n > 0 {
			return nil, fmt.Errorf("upstream body longer than its Content-Length")
		}
	} else {
		var err error
		b, err = io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxResponseBytes+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > p.cfg.MaxResponseBytes {
			return nil, fmt.Errorf("upstream response over %d bytes", p.cfg.MaxResponseBytes)
		}
	}
	return &bufferedResponse{code: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (b *bufferedResponse) writeTo(w http.ResponseWriter) {
	copyHeader(w.Header(), b.header)
	w.Header().Set("Content-Length", strconv.Itoa(len(b.body)))
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body)
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if k == "Content-Length" || k == "X-Request-Id" {
			continue
		}
		dst[k] = vv
	}
	for _, k := range hopHeaders {
		dst.Del(k)
	}
	if c := src.Get("Connection"); c != "" {
		for _, f := range strings.Split(c, ",") {
			dst.Del(strings.TrimSpace(f))
		}
	}
}
