package auth

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkMiddleware is the per-request cost of auth + model check + rpm
// and tpm admission + reconciliation, for a small chat body.
func BenchmarkMiddleware(b *testing.B) {
	a, err := New(Config{Mode: "on", Keys: "alice:" + aliceKey + ":m1", DefaultRPM: 1 << 30, DefaultTPM: 1 << 30, DefaultMaxTokens: 16}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(upstream(10, 10))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
		r.Header.Set("Authorization", "Bearer "+aliceKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
