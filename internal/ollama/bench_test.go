package ollama

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChatStream is the translation cost of a streamed /api/chat with
// five SSE events (request translation, SSE parsing, NDJSON encoding).
func BenchmarkChatStream(b *testing.B) {
	h := NewHandler(&fakeV1{})
	body := `{"model":"m","messages":[{"role":"user","content":"hello"}],"options":{"temperature":0}}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/chat", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	}
}
