package respcache_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/respcache"
)

// base is a deterministic chat request; variants below change one thing.
const base = `{"model":"stories260K","messages":[{"role":"user","content":"Once upon a time"}],"temperature":0,"max_tokens":8}`

// with returns base with fields set (nil deletes).
func with(t testing.TB, body string, set map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestKeyCoversEverythingThatChangesOutput(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() cache.Store) {
		var digest atomic.Value
		digest.Store("sha256:aaa")
		s := newStack(t, newStore(), modelService(t), respcache.Config{ModelDigest: func(string) string { return digest.Load().(string) }})

		if r := s.chat(base); r.cache != "MISS" || r.status != 200 {
			t.Fatalf("first request: %d %s %s", r.status, r.cache, r.body)
		}
		if r := s.chat(base); r.cache != "HIT" {
			t.Fatalf("repeat: X-Cache %s; want HIT", r.cache)
		}
		calls := s.up.n.Load()

		// Same meaning, different bytes: must HIT.
		same := []struct{ name, body string }{
			{"reordered keys, 0.0 and 8e0", `{"max_tokens":8e0,"temperature":0.0,"messages":[{"content":"Once upon a time","role":"user"}],"model":"stories260K"}`},
			{"user field", with(t, base, map[string]any{"user": "bob"})},
			{"explicit stream false", with(t, base, map[string]any{"stream": false})},
			{"whitespace", strings.ReplaceAll(base, ",", " ,\n ")},
		}
		for _, c := range same {
			if r := s.chat(c.body); r.cache != "HIT" {
				t.Errorf("%s: X-Cache %s; want HIT", c.name, r.cache)
			}
		}
		if got := s.up.n.Load(); got != calls {
			t.Fatalf("equivalent requests reached the upstream %d times", got-calls)
		}

		// Anything that changes the output: must MISS.
		diff := []struct {
			name string
			body string
			hdr  []string
		}{
			{"seed", with(t, base, map[string]any{"seed": 7}), nil},
			{"other seed", with(t, base, map[string]any{"seed": 8}), nil},
			{"temperature with seed", with(t, base, map[string]any{"seed": 7, "temperature": 0.5}), nil},
			{"top_p", with(t, base, map[string]any{"top_p": 0.9}), nil},
			{"top_k", with(t, base, map[string]any{"top_k": 5}), nil},
			{"min_p", with(t, base, map[string]any{"min_p": 0.1}), nil},
			{"max_tokens", with(t, base, map[string]any{"max_tokens": 9}), nil},
			{"max_completion_tokens", with(t, base, map[string]any{"max_completion_tokens": 8}), nil},
			{"stop", with(t, base, map[string]any{"stop": []string{"."}}), nil},
			{"presence_penalty", with(t, base, map[string]any{"presence_penalty": 0.5}), nil},
			{"frequency_penalty", with(t, base, map[string]any{"frequency_penalty": 0.5}), nil},
			{"repetition_penalty", with(t, base, map[string]any{"repetition_penalty": 1.1}), nil},
			{"n", with(t, base, map[string]any{"n": 2}), nil},
			{"logprobs", with(t, base, map[string]any{"logprobs": true}), nil},
			{"top_logprobs", with(t, base, map[string]any{"logprobs": true, "top_logprobs": 2}), nil},
			{"tools", with(t, base, map[string]any{"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}}}}), nil},
			{"response_format", with(t, base, map[string]any{"response_format": map[string]any{"type": "json_object"}}), nil},
			{"message content", with(t, base, map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Once upon a time."}}}), nil},
			{"system message", with(t, base, map[string]any{"messages": []any{map[string]any{"role": "system", "content": "Be brief."}, map[string]any{"role": "user", "content": "Once upon a time"}}}), nil},
			{"model", with(t, base, map[string]any{"model": modelB}), nil},
			{"key namespace", base, []string{"X-Test-NS", "team-b"}},
		}
		for _, c := range diff {
			before := s.up.n.Load()
			if r := s.chat(c.body, c.hdr...); r.cache != "MISS" {
				t.Errorf("%s: X-Cache %s; want MISS", c.name, r.cache)
			}
			if s.up.n.Load() != before+1 {
				t.Errorf("%s: did not reach the upstream", c.name)
			}
		}
		// Same model name, new weights.
		digest.Store("sha256:bbb")
		if r := s.chat(base); r.cache != "MISS" {
			t.Errorf("new model digest: X-Cache %s; want MISS", r.cache)
		}
		// The completions route is keyed apart from chat.
		if r := s.post("/v1/completions", `{"model":"stories260K","prompt":"Once upon a time","temperature":0,"max_tokens":8}`); r.cache != "MISS" || r.status != 200 {
			t.Errorf("completions: %d %s", r.status, r.cache)
		}
		if r := s.post("/v1/completions", `{"model":"stories260K","prompt":"Once upon a time","temperature":0,"max_tokens":8}`); r.cache != "HIT" {
			t.Errorf("completions repeat: %s", r.cache)
		}
	})
}

func TestNonDeterministicNeverCached(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() cache.Store) {
		s := newStack(t, newStore(), modelService(t), respcache.Config{})
		cases := map[string]string{
			"no temperature":   with(t, base, map[string]any{"temperature": nil}),
			"temperature 0.7":  with(t, base, map[string]any{"temperature": 0.7}),
			"temperature null": strings.Replace(base, `"temperature":0`, `"temperature":null`, 1),
			"seed null":        strings.Replace(base, `"temperature":0`, `"temperature":1,"seed":null`, 1),
			"seed as string":   strings.Replace(base, `"temperature":0`, `"temperature":1,"seed":"1"`, 1),
		}
		for name, body := range cases {
			before := s.up.n.Load()
			for range 3 {
				if r := s.chat(body); r.cache != "BYPASS" {
					t.Errorf("%s: X-Cache %s; want BYPASS", name, r.cache)
				}
			}
			if got := s.up.n.Load() - before; got != 3 {
				t.Errorf("%s: %d upstream calls for 3 requests", name, got)
			}
		}
		if v := s.metric("llmo_cache_lookups_total", "kind", "exact", "result", "bypass"); v != 15 {
			t.Errorf("llmo_cache_lookups_total{exact,bypass} = %v; want 15", v)
		}
	})
}

func TestCacheControl(t *testing.T) {
	s := newStack(t, cache.NewMemory(1<<20), modelService(t), respcache.Config{})
	body := with(t, base, map[string]any{"max_tokens": 5})
	if r := s.chat(body, "Cache-Control", "no-store"); r.cache != "MISS" {
		t.Fatalf("no-store: %s; want MISS (looked up, not filled)", r.cache)
	}
	if r := s.chat(body); r.cache != "MISS" {
		t.Fatalf("after a no-store request: %s; want MISS (nothing stored)", r.cache)
	}
	if r := s.chat(body); r.cache != "HIT" {
		t.Fatalf("after a normal fill: %s; want HIT", r.cache)
	}
	before := s.up.n.Load()
	if r := s.chat(body, "Cache-Control", "no-cache"); r.cache != "BYPASS" || s.up.n.Load() != before+1 {
		t.Fatalf("no-cache: %s, upstream calls %d; want BYPASS and a fresh call", r.cache, s.up.n.Load()-before)
	}
	if r := s.chat(body, "Cache-Control", "no-cache, no-store"); r.cache != "BYPASS" {
		t.Fatalf("no-cache, no-store: %s", r.cache)
	}
	// no-cache still refreshes the entry: a fill after a Flush proves it.
	if err := s.store.Flush(t.Context(), "team-a"); err != nil {
		t.Fatal(err)
	}
	s.chat(body, "Cache-Control", "no-cache")
	if r := s.chat(body); r.cache != "HIT" {
		t.Fatalf("no-cache did not fill: %s", r.cache)
	}
}

// TestSingleflight: 50 identical concurrent requests, half streamed, make
// one upstream call and every client gets the whole answer in its format.
func TestSingleflight(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() cache.Store) {
		s := newStack(t, newStore(), modelService(t), respcache.Config{})
		s.up.gate = make(chan struct{})
		body := with(t, base, map[string]any{"max_tokens": 24, "seed": 3})
		var ref struct {
			sync.Mutex
			content string
		}
		// The reference answer, from the same model without the cache.
		rec := httptest.NewRecorder()
		modelService(t).ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		ref.content, _, _ = chatContent(t, rec.Body.Bytes())

		var wg sync.WaitGroup
		errs := make(chan string, 50)
		caches := make(chan string, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := body
				if i%2 == 1 {
					b = with(t, body, map[string]any{"stream": true})
				}
				r := s.chat(b)
				caches <- r.cache
				var got string
				if i%2 == 1 {
					st := parseSSE(t, r.body)
					if !st.done || st.finish == "" {
						errs <- fmt.Sprintf("stream %d incomplete: %s", i, r.body)
					}
					got = st.content()
				} else {
					got, _, _ = chatContent(t, r.body)
				}
				if got != ref.content {
					errs <- fmt.Sprintf("request %d got %q; want %q", i, got, ref.content)
				}
			}()
		}
		// Let every request reach the layer, then release the one upstream call.
		waitFor(t, func() bool { return s.up.n.Load() >= 1 })
		sleepMs(300)
		close(s.up.gate)
		wg.Wait()
		close(errs)
		close(caches)
		for e := range errs {
			t.Error(e)
		}
		if n := s.up.n.Load(); n != 1 {
			t.Fatalf("50 identical requests made %d upstream calls; want 1", n)
		}
		counts := map[string]int{}
		for c := range caches {
			counts[c]++
		}
		if counts["MISS"] != 1 || counts["HIT"] != 49 {
			t.Fatalf("X-Cache counts %v; want 1 MISS and 49 HIT", counts)
		}
	})
}

// TestHitReportsUsage: a hit reports the stored usage to the meter and
// marks it Cached, as the quota layer expects.
func TestHitReportsUsage(t *testing.T) {
	store := cache.NewMemoryStore(1 << 20)
	t.Cleanup(func() { _ = store.Close() })
	l, err := respcache.New(respcache.Config{}, store, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	h := l.Middleware(modelService(t))
	run := func() (*reqinfo.Meter, *httptest.ResponseRecorder) {
		ctx, m := reqinfo.WithMeter(reqinfo.WithPrincipal(t.Context(), &reqinfo.Principal{Namespace: "n"}))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(base)).WithContext(ctx)
		h.ServeHTTP(rec, req)
		_ = l.Close()
		return m, rec
	}
	m1, rec1 := run()
	_, _, usage := chatContent(t, rec1.Body.Bytes())
	if m1.Cached || rec1.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("first: cached=%v %s", m1.Cached, rec1.Header().Get("X-Cache"))
	}
	m2, rec2 := run()
	u, ok := m2.Usage()
	if !m2.Cached || !ok || rec2.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("hit: cached=%v reported=%v %s", m2.Cached, ok, rec2.Header().Get("X-Cache"))
	}
	if float64(u.PromptTokens) != usage["prompt_tokens"] || float64(u.CompletionTokens) != usage["completion_tokens"] || u.PromptTokens == 0 {
		t.Fatalf("reported %+v; the original usage was %v", u, usage)
	}
}
