// Package dashboard is the gateway's web UI: live topology (pools, replicas,
// health, load, breakers, cache and storage), request rate, latency and
// token throughput charts, and a chat playground that streams from the
// gateway. It is plain HTML, CSS and JavaScript embedded in the binary: no
// build step, no CDN, so it works offline.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var staticFS embed.FS

// csp keeps the page to its own origin: no inline script, no third-party
// requests, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the dashboard's static files at / and hands /api/*, /v1/*
// and /admin/* to api in-process, so the page calls the gateway on its own
// origin (no CORS) and the gateway's auth applies unchanged.
func Handler(api http.Handler) http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	for _, p := range []string{"/api/", "/v1/", "/admin/"} {
		mux.Handle(p, api)
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change only with the binary; revalidate so an upgrade
		// shows at once.
		h.Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, "/index.html") {
			// FileServer would redirect; serve the page at / only.
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	return mux
}
