package respcache_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/ollama"
	"github.com/llmo/llmo/internal/respcache"
)

// TestOllamaNDJSONReplay: the Ollama translation sits outside the layer and
// calls /v1 in-process, so an Ollama client gets a cached answer as NDJSON,
// the same text as the original stream, with no second upstream call.
func TestOllamaNDJSONReplay(t *testing.T) {
	s := newStack(t, cache.NewMemory(1<<20), modelService(t), respcache.Config{})
	srv := httptest.NewServer(withPrincipal(ollama.NewHandler(s.layer.Middleware(s.up))))
	defer srv.Close()
	for _, c := range []struct{ path, body, field string }{
		{"/api/generate", `{"model":"stories260K","prompt":"Once upon a time","options":{"temperature":0,"num_predict":10}}`, "response"},
		{"/api/chat", `{"model":"stories260K","messages":[{"role":"user","content":"A dog"}],"options":{"temperature":0,"num_predict":10}}`, "message"},
	} {
		before := s.up.n.Load()
		var texts [2]string
		for i := range 2 {
			resp, err := srv.Client().Post(srv.URL+c.path, "application/json", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Fatalf("%s: Content-Type %q", c.path, ct)
			}
			want := map[int]string{0: "MISS", 1: "HIT"}[i]
			if got := resp.Header.Get("X-Cache"); got != want {
				t.Errorf("%s request %d: X-Cache %q; want %s", c.path, i, got, want)
			}
			sc := bufio.NewScanner(resp.Body)
			done := false
			for sc.Scan() {
				var line map[string]json.RawMessage
				if err := json.Unmarshal(bytes.TrimSpace(sc.Bytes()), &line); err != nil {
					t.Fatalf("%s: bad NDJSON line %q", c.path, sc.Bytes())
				}
				var piece string
				if c.field == "message" {
					var m struct{ Content string }
					_ = json.Unmarshal(line["message"], &m)
					piece = m.Content
				} else {
					_ = json.Unmarshal(line["response"], &piece)
				}
				texts[i] += piece
				done = done || string(line["done"]) == "true"
			}
			resp.Body.Close()
			_ = s.layer.Close()
			if !done || texts[i] == "" {
				t.Fatalf("%s request %d: incomplete NDJSON (done=%v, text %q)", c.path, i, done, texts[i])
			}
		}
		if texts[0] != texts[1] {
			t.Errorf("%s: replay %q; original %q", c.path, texts[1], texts[0])
		}
		if n := s.up.n.Load() - before; n != 1 {
			t.Errorf("%s: %d upstream calls for 2 identical requests", c.path, n)
		}
	}
}
