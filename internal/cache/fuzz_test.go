package cache_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// FuzzAPI sends arbitrary namespaces, keys, TTLs and bodies to every route
// of the cache service's HTTP API (in process, memory backend). Whatever
// the input, the answer is a 2xx or a 4xx, never a 5xx or a panic.
func FuzzAPI(f *testing.F) {
	for _, s := range []struct {
		op           uint8
		ns, key, ttl string
		body         []byte
	}{
		{0, "ns", "k", "", []byte("v")},
		{1, "ns", "k", "90s", []byte("value")},
		{2, "ns", "k", "-5s", nil},
		{3, "n*s", "a b", "soon", nil},
		{4, "ns", "", "", []byte(`{"bucket":"b","id":"i","text":"t","vector":[1,0]}`)},
		{5, "ns", "", "", []byte(`{"bucket":"b","vector":[1,0],"k":3}`)},
		{5, "ns", "", "", []byte(`{"bucket":"b","vector":[1e308,-1e308],"threshold":2}`)},
		{4, "ns", "", "", []byte(`{"vector":[` + string(bytes.Repeat([]byte("1,"), 100)) + `1]}`)},
		{6, "..", "../x", "99999999999999999999", []byte("{")},
	} {
		f.Add(s.op, s.ns, s.key, s.ttl, s.body)
	}
	m := cache.NewMemoryStore(1 << 20)
	f.Cleanup(func() { _ = m.Close() })
	common := service.Common{LogFormat: "text", LogLevel: "error", MaxBodyBytes: 1 << 20, DrainTimeout: time.Second}
	h := cache.NewServer(cache.Config{Common: common, MaxValueBytes: 64 << 10, DefaultTTL: time.Hour, MaxBytes: 1 << 20},
		m, slog.New(slog.DiscardHandler), telemetry.NewRegistry()).Handler()
	f.Fuzz(func(t *testing.T, op uint8, ns, key, ttl string, body []byte) {
		esc := url.PathEscape
		var method, path string
		switch op % 7 {
		case 0:
			method, path = "GET", "/v1/cache/"+esc(ns)+"/"+esc(key)
		case 1:
			method, path = "PUT", "/v1/cache/"+esc(ns)+"/"+esc(key)+"?ttl="+url.QueryEscape(ttl)
		case 2:
			method, path = "DELETE", "/v1/cache/"+esc(ns)+"/"+esc(key)
		case 3:
			method, path = "DELETE", "/v1/cache/"+esc(ns)
		case 4:
			method, path = "PUT", "/v1/semantic/"+esc(ns)
		case 5:
			method, path = "POST", "/v1/semantic/"+esc(ns)+"/search"
		case 6:
			method, path = "GET", "/v1/cache/stats"
		}
		req, err := http.NewRequest(method, "http://cache"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if ttl != "" && op%2 == 0 {
			req.Header.Set("X-Cache-TTL", ttl)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (ttl %q, body %q) -> %d: %s", method, path, ttl, body, rec.Code, rec.Body.Bytes())
		}
	})
}
