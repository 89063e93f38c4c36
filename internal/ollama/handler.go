// Package ollama serves Ollama's HTTP API (/api/generate, /api/chat,
// /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps, /api/version)
// by translating each request into an OpenAI request on the gateway's
// in-process /v1 handler and translating the answer back, SSE chunks into
// NDJSON lines as they arrive. Going through /v1 means Ollama clients get
// the same auth, quotas, cache and routing as OpenAI clients, with no second
// code path to keep in step.
package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// APIVersion is the Ollama API version that /api/version reports: the
// Ollama release whose API this package follows. Clients use it to decide
// which fields they may send.
const APIVersion = "0.12.0"

// maxUpstreamBody caps a buffered (non-streamed) /v1 answer.
const maxUpstreamBody = 64 << 20

// Patterns are the routes NewHandler serves, for a caller that wants to
// mount each one on its own mux entry (so that metrics are labelled by
// route). Mounting the handler on "/api/" works as well.
var Patterns = []string{
	"POST /api/generate", "POST /api/chat", "POST /api/embed", "POST /api/embeddings",
	"GET /api/tags", "POST /api/show", "GET /api/ps", "GET /api/version",
}

// unsupported are Ollama routes that manage local model files, which llmo
// does with its storage service instead.
var unsupported = map[string]bool{
	"/api/pull": true, "/api/push": true, "/api/create": true, "/api/copy": true, "/api/delete": true,
}

type handler struct {
	v1  http.Handler
	mux *http.ServeMux
	now func() time.Time
}

// NewHandler serves the Ollama API on top of v1, the gateway's OpenAI
// handler (auth, cache and proxy included).
func NewHandler(v1 http.Handler) http.Handler {
	h := &handler{v1: v1, mux: http.NewServeMux(), now: time.Now}
	h.mux.HandleFunc("POST /api/generate", h.generate)
	h.mux.HandleFunc("POST /api/chat", h.chat)
	h.mux.HandleFunc("POST /api/embed", h.embed)
	h.mux.HandleFunc("POST /api/embeddings", h.embeddings)
	h.mux.HandleFunc("GET /api/tags", h.tags)
	h.mux.HandleFunc("POST /api/show", h.show)
	h.mux.HandleFunc("GET /api/ps", h.ps)
	h.mux.HandleFunc("GET /api/version", h.version)
	h.mux.HandleFunc("/", h.fallback)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// fallback answers what the routes above do not match, in Ollama's
// envelope: 405 for a known route with the wrong method, 501 for model
// management, 404 otherwise.
func (h *handler) fallback(w http.ResponseWriter, r *http.Request) {
	for _, p := range Patterns {
		method, path, _ := strings.Cut(p, " ")
		if path == r.URL.Path {
			w.Header().Set("Allow", method)
			writeError(w, r, errs.E(errs.MethodNotAllowed, "%s %s: method not allowed; use %s", r.Method, r.URL.Path, method))
			return
		}
	}
	if unsupported[r.URL.Path] {
		writeError(w, r, errs.E(errs.NotImplemented, "%s is not supported by the llmo gateway; manage models with `llmo push`/`llmo pull` and the storage service", r.URL.Path))
		return
	}
	writeError(w, r, errs.E(errs.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	service.WriteErrorStyle(w, r, err, service.Ollama)
}

// decode reads an Ollama request body into dst. Unlike the OpenAI side it
// accepts any Content-Type: Ollama does, and `curl -d` sends a form type.
func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit)
		}
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return errs.Wrap(errs.Canceled, ctxErr, "request canceled")
		}
		return errs.Wrap(errs.Invalid, err, "could not read request body")
	}
	if len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] != '{' {
		return errs.E(errs.Invalid, "request body must be a JSON object")
	}
	return service.DecodeJSONBytes(body, dst)
}

// forwarded are the request headers a /v1 call inherits: credentials (so
// the auth layer sees the caller) and tracing.
var forwarded = []string{"Authorization", "X-Api-Key", "Traceparent", "Tracestate", "User-Agent", "X-Forwarded-For"}

// v1Request builds the in-process /v1 request for r.
func (h *handler) v1Request(r *http.Request, method, path string, body any) (*http.Request, error) {
	var rd io.Reader = http.NoBody
	var n int64
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encoding upstream request")
		}
		rd, n = bytes.NewReader(b), int64(len(b))
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "building upstream request")
	}
	req.ContentLength = n
	req.Host, req.RemoteAddr, req.RequestURI = r.Host, r.RemoteAddr, path
	req.Proto, req.ProtoMajor, req.ProtoMinor = r.Proto, r.ProtoMajor, r.ProtoMinor
	for _, k := range forwarded {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	if id := telemetry.RequestID(r.Context()); id != "" {
		req.Header.Set("X-Request-Id", id)
	} else if id := r.Header.Get("X-Request-Id"); telemetry.ValidRequestID(id) {
		req.Header.Set("X-Request-Id", id)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// bufferWriter is the ResponseWriter of a buffered /v1 call.
type bufferWriter struct {
	hdr    http.Header
	status int
	buf    bytes.Buffer
	over   bool
}

func (b *bufferWriter) Header() http.Header { return b.hdr }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.buf.Len()+len(p) > maxUpstreamBody {
		b.over = true
		return 0, errors.New("upstream answer too large")
	}
	return b.buf.Write(p)
}
func (b *bufferWriter) Flush() {}

// call runs a buffered /v1 request and decodes a 2xx JSON answer into dst.
// Any other answer becomes an error carrying the upstream's status and
// message (and Retry-After), ready for writeError.
func (h *handler) call(r *http.Request, method, path string, body, dst any) error {
	req, err := h.v1Request(r, method, path, body)
	if err != nil {
		return err
	}
	bw := &bufferWriter{hdr: http.Header{}}
	h.v1.ServeHTTP(bw, req)
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	if bw.over {
		return errs.E(errs.BadGateway, "upstream answer is larger than %d bytes", maxUpstreamBody)
	}
	if bw.status >= 300 {
		return upstreamError(bw.status, bw.hdr, bw.buf.Bytes())
	}
	if err := json.Unmarshal(bw.buf.Bytes(), dst); err != nil {
		return errs.Wrap(errs.BadGateway, err, "upstream sent a malformed answer")
	}
	return nil
}

// statusError is an upstream failure passed through with its exact status,
// which may have no errs.Kind of its own (e.g. 422).
type statusError struct {
	status     int
	msg        string
	retryAfter string
	wwwAuth    string
}

func (e *statusError) Error() string { return e.msg }

// upstreamError turns a /v1 error answer (OpenAI envelope, Ollama
// envelope, or plain text) into a statusError.
func upstreamError(status int, hdr http.Header, body []byte) error {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var obj struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(env.Error, &obj) == nil && obj.Message != "" {
			msg = obj.Message
		} else {
			_ = json.Unmarshal(env.Error, &msg)
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512]
		}
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	return &statusError{status: status, msg: msg, retryAfter: hdr.Get("Retry-After"), wwwAuth: hdr.Get("WWW-Authenticate")}
}

// fail writes err in Ollama's envelope, keeping an upstream status as is.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *statusError
	if errors.As(err, &se) {
		if se.retryAfter != "" {
			w.Header().Set("Retry-After", se.retryAfter)
		}
		if se.wwwAuth != "" {
			w.Header().Set("WWW-Authenticate", se.wwwAuth)
		}
		service.WriteJSON(w, se.status, service.OllamaError{Error: se.msg})
		return
	}
	writeError(w, r, err)
}
