package respcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/respcache"
)

// blindEmbed is a bag-of-words embedding that is blind to negations and
// numbers, like the real embedding models that put "is X safe" next to "is
// X not safe". It makes the guard, not the threshold, responsible for
// rejecting those prompts.
func blindEmbed(calls *atomic.Int64) func(ctx context.Context, model, text string) ([]float32, error) {
	skip := map[string]bool{"not": true, "no": true, "never": true, "without": true, "isn't": true, "two": true, "three": true}
	return func(_ context.Context, _ string, text string) ([]float32, error) {
		calls.Add(1)
		v := make([]float32, 64)
		for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' }) {
			if skip[w] {
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		return v, nil
	}
}

func ask(t testing.TB, q string, extra map[string]any) string {
	set := map[string]any{"messages": []any{map[string]any{"role": "system", "content": "Answer briefly."}, map[string]any{"role": "user", "content": q}}, "max_tokens": 6}
	for k, v := range extra {
		set[k] = v
	}
	return with(t, base, set)
}

func TestSemanticCache(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() cache.Store) {
		var embeds atomic.Int64
		s := newStack(t, newStore(), modelService(t), respcache.Config{Embed: blindEmbed(&embeds), SemanticThreshold: 0.9})
		on := []string{"X-Semantic-Cache", "on"}

		if r := s.chat(ask(t, "What is the capital of France?", nil), on...); r.cache != "MISS" {
			t.Fatalf("fill: %s", r.cache)
		}
		if r := s.chat(ask(t, "What is 2 plus 2?", nil), on...); r.cache != "MISS" {
			t.Fatalf("fill: %s", r.cache)
		}
		cases := []struct {
			name, q  string
			extra    map[string]any
			hdr      []string
			want     string
			minScore float64
		}{
			{"paraphrase", "what is the capital of france", nil, on, "HIT", 0.9999},
			{"paraphrase with an extra word", "What is the capital of France, please?", nil, on, "HIT", 0.9},
			{"key opted in", "WHAT is the capital of France", nil, []string{"X-Test-Semantic", "1"}, "HIT", 0.9999},
			{"not opted in", "What is the capital of France ?", nil, nil, "MISS", 0},
			{"header off beats the key", "What is the capital of France ?!", nil, []string{"X-Test-Semantic", "1", "X-Semantic-Cache", "off"}, "MISS", 0},
			{"negated", "What is not the capital of France?", nil, on, "MISS", 0},
			{"negated with n't", "What isn't the capital of France?", nil, on, "MISS", 0},
			{"number changed", "What is 2 plus 3?", nil, on, "MISS", 0},
			{"number word changed", "What is 2 plus three?", nil, on, "MISS", 0},
			{"same numbers, other words", "what is 2 plus 2", nil, on, "HIT", 0.9999},
			{"other sampling parameters", "what is the capital of france", map[string]any{"max_tokens": 7}, on, "MISS", 0},
			{"other model", "what is the capital of france", map[string]any{"model": modelB}, on, "MISS", 0},
			{"non-deterministic", "what is the capital of france", map[string]any{"temperature": 0.8}, on, "BYPASS", 0},
		}
		for _, c := range cases {
			// no-store: a probe must not become a candidate for the next one.
			r := s.chat(ask(t, c.q, c.extra), append([]string{"Cache-Control", "no-store"}, c.hdr...)...)
			if r.cache != c.want {
				t.Errorf("%s: X-Cache %s; want %s", c.name, r.cache, c.want)
				continue
			}
			if c.want != "HIT" {
				if r.sim != "" {
					t.Errorf("%s: similarity header %q on a %s", c.name, r.sim, r.cache)
				}
				continue
			}
			sim, err := strconv.ParseFloat(r.sim, 64)
			if err != nil || sim < c.minScore || sim > 1.0001 || len(r.sim) != len("0.9731") {
				t.Errorf("%s: X-Cache-Similarity %q; want a 4-decimal score >= %v", c.name, r.sim, c.minScore)
			}
		}
		// A different conversation before the last turn never matches.
		other := with(t, base, map[string]any{"max_tokens": 6, "messages": []any{
			map[string]any{"role": "system", "content": "Answer at length."}, map[string]any{"role": "user", "content": "what is the capital of france"}}})
		if r := s.chat(other, on...); r.cache != "MISS" {
			t.Errorf("other system prompt: %s; want MISS", r.cache)
		}
		if n := s.metric("llmo_cache_lookups_total", "kind", "semantic", "result", "hit"); n != 4 {
			t.Errorf("semantic hits metric = %v; want 4", n)
		}
		if n := s.metric("llmo_cache_semantic_similarity"); n < 4 {
			t.Errorf("similarity histogram count = %v; want >= 4", n)
		}
	})
}

func TestGuard(t *testing.T) {
	cases := []struct {
		a, b string
		ok   bool
	}{
		{"Is coffee bad for you?", "is coffee bad for you", true},
		{"Is coffee bad for you?", "Is coffee not bad for you?", false},
		{"Is coffee bad for you?", "Isn’t coffee bad for you?", false},
		{"Can I go?", "I cannot go?", false},
		{"Tea with sugar", "Tea without sugar", false},
		{"Never say never", "never say", false},
		{"Add 1,000 and 2", "add 1000 and 2.0", true},
		{"Add 10 and 2", "add 10 and 3", false},
		{"Add 10 and 2", "add 2 and 10", false},
		{"Three apples", "3 apples", true},
		{"Three apples", "four apples", false},
		{"-5 degrees", "5 degrees", false},
		{"version 1.2.3", "version 1.2.4", false},
	}
	for _, c := range cases {
		if got := respcache.SameMeaningGuard(c.a, c.b); got != c.ok {
			t.Errorf("guard(%q, %q) = %v; want %v", c.a, c.b, got, c.ok)
		}
	}
}

// realEmbed posts to the model service's /v1/embeddings, as the gateway does.
func realEmbed(t testing.TB) func(ctx context.Context, model, text string) ([]float32, error) {
	h := modelService(t)
	return func(ctx context.Context, model, text string) ([]float32, error) {
		b, _ := json.Marshal(map[string]string{"model": model, "input": text})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/embeddings", bytes.NewReader(b)).WithContext(ctx))
		var res struct {
			Data []struct {
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.Data) == 0 {
			return nil, fmt.Errorf("embeddings: %d %s", rec.Code, rec.Body)
		}
		return res.Data[0].Embedding, nil
	}
}

// TestSemanticWithModelEmbeddings runs the semantic path on the model
// service's real /v1/embeddings.
func TestSemanticWithModelEmbeddings(t *testing.T) {
	s := newStack(t, cache.NewMemory(1<<20), modelService(t), respcache.Config{Embed: realEmbed(t), SemanticThreshold: 0.9})
	on := []string{"X-Semantic-Cache", "on"}
	if r := s.chat(ask(t, "The little girl went to the park", nil), on...); r.cache != "MISS" {
		t.Fatalf("fill: %s", r.cache)
	}
	r := s.chat(ask(t, "The little girl went to the park.", nil), append([]string{"Cache-Control", "no-store"}, on...)...)
	t.Logf("similarity of a near-duplicate on real embeddings: %s (%s)", r.sim, r.cache)
	if r.cache != "HIT" || r.sim == "" {
		t.Errorf("near-duplicate: %s %q; want a HIT with a similarity", r.cache, r.sim)
	}
	emb := realEmbed(t)
	a, _ := emb(t.Context(), modelA, "The little girl went to the park")
	b, _ := emb(t.Context(), modelA, "The little girl never went to the park")
	var cos float32
	for i, x := range cache.Normalize(a) {
		cos += x * cache.Normalize(b)[i]
	}
	t.Logf("cosine of the prompt and its negation on real embeddings: %.4f (threshold 0.9; the guard must reject it)", cos)
	if r := s.chat(ask(t, "The little girl never went to the park", nil), append([]string{"Cache-Control", "no-store"}, on...)...); r.cache != "MISS" {
		t.Errorf("negated: %s; want MISS", r.cache)
	}
	if r := s.chat(ask(t, "The 2 little girls went to the park", nil), append([]string{"Cache-Control", "no-store"}, on...)...); r.cache != "MISS" {
		t.Errorf("number added: %s; want MISS", r.cache)
	}
}
