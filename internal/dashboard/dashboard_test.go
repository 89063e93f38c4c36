package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// recordingAPI stands in for the gateway's API handler: it answers with
// the method, path, auth header and body it got, so the test can see what
// was forwarded.
func recordingAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Api", "1")
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization")+" body="+string(body))
	})
}

func TestHandler(t *testing.T) {
	h := Handler(recordingAPI())
	tests := []struct {
		name, method, path, body, auth string
		wantCode                       int
		wantType                       string // Content-Type prefix
		wantBody                       string // substring
		wantAPI                        bool   // forwarded to the API handler
	}{
		{"index", "GET", "/", "", "", 200, "text/html", `<meta name="llmo-dashboard"`, false},
		{"head index", "HEAD", "/", "", "", 200, "text/html", "", false},
		{"script", "GET", "/app.js", "", "", 200, "text/javascript", "readSSE", false},
		{"styles", "GET", "/style.css", "", "", 200, "text/css", "--bg", false},
		{"unknown file", "GET", "/nope.js", "", "", 404, "", "", false},
		{"no index.html alias", "GET", "/index.html", "", "", 404, "", "", false},
		{"post to static", "POST", "/", "x", "", 405, "", "", false},
		{"dot-dot is cleaned and redirected", "GET", "/../dashboard.go", "", "", 307, "", "", false},
		{"source not served", "GET", "/dashboard.go", "", "", 404, "", "", false},
		{"health forwarded", "GET", "/api/health", "", "", 200, "", "GET /api/health auth=", true},
		{"stats forwarded with key", "GET", "/admin/stats", "", "Bearer sk-1", 200, "", "GET /admin/stats auth=Bearer sk-1", true},
		{"chat forwarded with body", "POST", "/v1/chat/completions", `{"stream":true}`, "", 200, "", `POST /v1/chat/completions auth= body={"stream":true}`, true},
		{"query kept", "GET", "/v1/models?x=1", "", "", 200, "", "GET /v1/models?x=1", true},
		{"ollama api forwarded", "POST", "/api/chat", "{}", "", 200, "", "POST /api/chat", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q does not contain %q", rec.Body.String(), tt.wantBody)
			}
			if got := rec.Header().Get("X-Api") == "1"; got != tt.wantAPI {
				t.Errorf("forwarded to API = %v, want %v", got, tt.wantAPI)
			}
			if !tt.wantAPI && tt.wantCode == 200 {
				if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
					t.Errorf("static file without a same-origin CSP: %q", csp)
				}
				if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
					t.Error("missing X-Content-Type-Options: nosniff")
				}
			}
		})
	}
}

// TestStaticSelfContained checks the offline promise: every file the page
// references is embedded, and nothing points at another origin.
func TestStaticSelfContained(t *testing.T) {
	index, err := fs.ReadFile(staticFS, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d files; want at least app.js and style.css", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if _, err := fs.Stat(staticFS, "static/"+ref); err != nil {
			t.Errorf("index.html references %q, which is not embedded", ref)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)
	err = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(staticFS, path)
		if err != nil {
			return err
		}
		if loc := external.FindIndex(data); loc != nil {
			t.Errorf("%s refers to another origin: %q", path, data[loc[0]:loc[1]])
		}
		if strings.Contains(string(data), "innerHTML") {
			t.Errorf("%s uses innerHTML; API data must go in with textContent", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
