package gateway

import (
	"net/http"
	"strings"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// cors implements CORS for browser clients: allowed origins from
// --cors-origin ("*" for any), preflight answered here.
type cors struct {
	any     bool
	origins map[string]bool
}

func newCORS(origins []string) *cors {
	c := &cors{origins: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			c.any = true
		}
		c.origins[strings.TrimRight(o, "/")] = true
	}
	return c
}

func (c *cors) allowed(origin string) bool {
	return origin != "" && (c.any || c.origins[origin])
}

const (
	corsMethods = "GET, POST, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type, X-Request-Id, Traceparent, Tracestate, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout"
	corsExpose  = "X-Request-Id, Retry-After, X-Replica"
)

func (c *cors) wrap(h http.Handler) http.Handler {
	if len(c.origins) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); c.allowed(o) {
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", o)
			hd.Add("Vary", "Origin")
			hd.Set("Access-Control-Expose-Headers", corsExpose)
		}
		h.ServeHTTP(w, r)
	})
}

// preflight answers OPTIONS for every path.
func (c *cors) preflight() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o == "" || r.Header.Get("Access-Control-Request-Method") == "" {
			w.Header().Set("Allow", corsMethods)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !c.allowed(o) {
			service.WriteError(w, r, errs.E(errs.PermissionDenied, "origin %q is not allowed (see --cors-origin)", o))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Get("Access-Control-Request-Headers")))
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}

// allowHeaders echoes the requested headers when they are plain header
// names (browsers ask for what the page's client library sends), else the
// fixed list.
func allowHeaders(req string) string {
	if req == "" || len(req) > 2048 {
		return corsHeaders
	}
	for _, c := range req {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ',' || c == ' ') {
			return corsHeaders
		}
	}
	return req
}
