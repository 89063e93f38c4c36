package respcache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/respcache"
	"github.com/llmo/llmo/internal/testenv"
)

func TestStreamReplay(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() cache.Store) {
		s := newStack(t, newStore(), modelService(t), respcache.Config{})
		body := with(t, base, map[string]any{"max_tokens": 20, "messages": []any{map[string]any{"role": "user", "content": "The cat"}}})
		streamBody := with(t, body, map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}})

		r1 := s.chat(streamBody)
		if r1.cache != "MISS" || r1.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("first stream: %s %s", r1.cache, r1.header.Get("Content-Type"))
		}
		orig := parseSSE(t, r1.body)
		if !orig.done || orig.finish == "" || orig.usage == nil || len(orig.deltas) < 2 {
			t.Fatalf("original stream incomplete: %+v", orig)
		}
		r2 := s.chat(streamBody)
		if r2.cache != "HIT" || r2.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("replay: %s %s", r2.cache, r2.header.Get("Content-Type"))
		}
		replay := parseSSE(t, r2.body)
		if !reflect.DeepEqual(replay.deltas, orig.deltas) {
			t.Fatalf("replayed deltas differ:\n got %q\nwant %q", replay.deltas, orig.deltas)
		}
		if replay.finish != orig.finish || !reflect.DeepEqual(replay.usage, orig.usage) || !replay.done || replay.role != "assistant" {
			t.Fatalf("replay %+v; original %+v", replay, orig)
		}
		// The same answer as JSON, from the streamed fill.
		r3 := s.chat(body)
		content, finish, usage := chatContent(t, r3.body)
		if r3.cache != "HIT" || content != orig.content() || finish != orig.finish || !reflect.DeepEqual(usage, orig.usage) {
			t.Fatalf("JSON from stream fill: %s %q %s %v; want %q %s %v", r3.cache, content, finish, usage, orig.content(), orig.finish, orig.usage)
		}
		// Without include_usage there is no usage chunk.
		r4 := s.chat(with(t, body, map[string]any{"stream": true}))
		if st := parseSSE(t, r4.body); r4.cache != "HIT" || st.usage != nil || st.content() != orig.content() {
			t.Fatalf("stream without include_usage: %s usage=%v", r4.cache, st.usage)
		}

		// The other way round: a JSON fill replayed as a stream.
		body2 := with(t, body, map[string]any{"messages": []any{map[string]any{"role": "user", "content": "The dog"}}})
		j := s.chat(body2)
		jc, jf, _ := chatContent(t, j.body)
		st := s.chat(with(t, body2, map[string]any{"stream": true}))
		replay2 := parseSSE(t, st.body)
		if j.cache != "MISS" || st.cache != "HIT" || replay2.content() != jc || replay2.finish != jf || !replay2.done {
			t.Fatalf("stream from JSON fill: %s/%s %q %s; want %q %s", j.cache, st.cache, replay2.content(), replay2.finish, jc, jf)
		}

		// Completions, streamed then replayed.
		cb := `{"model":"stories260K","prompt":"One day","max_tokens":16,"temperature":0,"stream":true}`
		c1 := s.post("/v1/completions", cb)
		c2 := s.post("/v1/completions", cb)
		o, rp := parseSSE(t, c1.body), parseSSE(t, c2.body)
		if c1.cache != "MISS" || c2.cache != "HIT" || !reflect.DeepEqual(o.deltas, rp.deltas) || o.finish != rp.finish || !rp.done {
			t.Fatalf("completions replay: %s/%s\n got %q %s\nwant %q %s", c1.cache, c2.cache, rp.deltas, rp.finish, o.deltas, o.finish)
		}
	})
}

// TestOpenAIClientParsesReplay drives the layer with the official openai npm
// package: its stream parser must accept the replayed SSE and see the same
// deltas as on the original stream.
func TestOpenAIClientParsesReplay(t *testing.T) {
	node := testenv.Binary(t, "node")
	dir := filepath.Join(testenv.RepoRoot(), "test", "clients")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		testenv.Missing(t, "test/clients/node_modules/openai (run npm ci --prefix test/clients)")
	}
	s := newStack(t, cache.NewMemory(1<<20), modelService(t), respcache.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "openai_respcache.mjs"), s.srv.URL+"/v1", modelA, "A little bird").CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	type run struct {
		XCache       string         `json:"x_cache"`
		Deltas       []string       `json:"deltas"`
		FinishReason string         `json:"finish_reason"`
		Usage        map[string]any `json:"usage"`
		Role         string         `json:"role"`
	}
	var res struct{ Chat, Completions []run }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	for name, runs := range map[string][]run{"chat": res.Chat, "completions": res.Completions} {
		if len(runs) != 3 {
			t.Fatalf("%s: %d runs", name, len(runs))
		}
		if runs[0].XCache != "MISS" || runs[1].XCache != "HIT" || runs[2].XCache != "HIT" {
			t.Errorf("%s: X-Cache %s %s %s; want MISS HIT HIT", name, runs[0].XCache, runs[1].XCache, runs[2].XCache)
		}
		if len(runs[0].Deltas) == 0 || !reflect.DeepEqual(runs[0].Deltas, runs[1].Deltas) {
			t.Errorf("%s: replayed deltas %q; original %q", name, runs[1].Deltas, runs[0].Deltas)
		}
		if whole := strings.Join(runs[0].Deltas, ""); runs[2].Deltas[0] != whole {
			t.Errorf("%s: JSON hit %q; stream %q", name, runs[2].Deltas[0], whole)
		}
		if runs[0].FinishReason == "" || runs[1].FinishReason != runs[0].FinishReason || runs[2].FinishReason != runs[0].FinishReason {
			t.Errorf("%s: finish reasons %q %q %q", name, runs[0].FinishReason, runs[1].FinishReason, runs[2].FinishReason)
		}
	}
	if !reflect.DeepEqual(res.Chat[0].Usage, res.Chat[1].Usage) || res.Chat[1].Usage == nil || res.Chat[1].Role != "assistant" {
		t.Errorf("chat usage %v vs %v, role %q", res.Chat[0].Usage, res.Chat[1].Usage, res.Chat[1].Role)
	}
}

// fake is an OpenAI-shaped upstream that misbehaves on purpose.
func fake(behaviour string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		chunk := func(content string, finish string) string {
			fr := "null"
			if finish != "" {
				fr = `"` + finish + `"`
			}
			return fmt.Sprintf("data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":%s}]}\n\n", content, fr)
		}
		switch behaviour {
		case "500":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"error":{"message":"boom","type":"server_error"}}`)
		case "429":
			w.WriteHeader(429)
		case "no finish":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":null}]}`)
		case "tool call":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`)
		case "not json":
			_, _ = io.WriteString(w, `<html>`)
		case "cut stream":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunk("Once", ""))
		case "aborted stream":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunk("Once", ""))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "error event":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunk("Once", ""))
			_, _ = io.WriteString(w, "data: {\"error\":{\"message\":\"replica died\"}}\n\n")
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
		case "good stream":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, chunk("Once", "")+chunk(" upon", "")+chunk("", "stop")+"data: [DONE]\n\n")
		}
	})
}

func TestOnlyCleanResponsesAreStored(t *testing.T) {
	for _, b := range []string{"500", "429", "no finish", "tool call", "not json", "cut stream", "aborted stream", "error event", "good stream"} {
		t.Run(b, func(t *testing.T) {
			s := newStack(t, cache.NewMemory(1<<20), fake(b), respcache.Config{})
			for range 2 {
				req, _ := http.NewRequest("POST", s.srv.URL+"/v1/chat/completions", strings.NewReader(base))
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body) // an aborted stream errors here
					resp.Body.Close()
				}
				_ = s.layer.Close()
			}
			want := int64(2)
			if b == "good stream" {
				want = 1
			}
			if n := s.up.n.Load(); n != want {
				t.Fatalf("%s: %d upstream calls for 2 requests; want %d", b, n, want)
			}
		})
	}
}
