package respcache_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/respcache"
)

// TestStreamNotBuffered: on a miss the client gets each chunk as the
// upstream flushes it, not when the stream ends.
func TestStreamNotBuffered(t *testing.T) {
	release := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" second\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	})
	s := newStack(t, cache.NewMemory(1<<20), up, respcache.Config{})
	resp, err := http.Post(s.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(with(t, base, map[string]any{"stream": true})))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "first") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(release) // only now may the upstream finish
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("rest of stream: %q", rest)
	}
	_ = s.layer.Close()
	if r := s.chat(base); r.cache != "HIT" || !strings.Contains(string(r.body), `"first second"`) {
		t.Fatalf("after the stream: %s %s", r.cache, r.body)
	}
}

// TestBadInputPassesThrough: what the layer cannot parse goes to the
// upstream byte for byte (which answers with the proper 4xx), never a 500.
func TestBadInputPassesThrough(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = b
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
	})
	s := newStack(t, cache.NewMemory(1<<20), up, respcache.Config{})
	for _, body := range []string{``, `{`, `[]`, `"x"`, `{"model":1,"temperature":0}`, `{"model":"","temperature":0}`,
		`{"model":"m","temperature":"0"}`, "{\"model\":\"m\xff\",\"temperature\":0}", `{"model":"m","temperature":0} trailing`} {
		r := s.chat(body)
		mu.Lock()
		same := bytes.Equal(got, []byte(body))
		mu.Unlock()
		if r.status != 400 || r.cache != "BYPASS" || !same {
			t.Errorf("body %q: %d %s, upstream saw the same bytes: %v", body, r.status, r.cache, same)
		}
	}
	// A body over the server's limit is a 413 from the layer itself.
	limited := http.MaxBytesHandler(s.layer.Middleware(up), 100)
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest("POST", "/v1/chat/completions", strings.NewReader(strings.Repeat("x", 200)))
	limited.ServeHTTP(rec, req)
	if rec.code != 413 {
		t.Fatalf("oversized body: %d", rec.code)
	}
}

type recorder struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(c int)           { r.code = c }
func (r *recorder) Write(p []byte) (int, error) { return r.buf.Write(p) }

// TestChoicesAndLogprobs: n=2 with logprobs survives a streamed fill and a
// JSON replay (pieces merged, token logprobs concatenated).
func TestChoicesAndLogprobs(t *testing.T) {
	s := newStack(t, cache.NewMemory(1<<20), modelService(t), respcache.Config{})
	body := with(t, base, map[string]any{"n": 2, "seed": 5, "logprobs": true, "top_logprobs": 2, "max_tokens": 10})
	direct := s.chat(with(t, body, map[string]any{"stream": true}))
	if direct.cache != "MISS" {
		t.Fatalf("fill: %s", direct.cache)
	}
	// The streamed text per choice.
	perChoice := map[int]string{}
	for _, line := range strings.Split(string(direct.body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Index int
				Delta struct{ Content string }
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			perChoice[ch.Index] += ch.Delta.Content
		}
	}
	r := s.chat(body)
	var resp struct {
		Choices []struct {
			Index    int
			Message  struct{ Content string }
			Logprobs struct {
				Content []struct {
					Token       string
					TopLogprobs []json.RawMessage `json:"top_logprobs"`
				}
			}
		}
	}
	if err := json.Unmarshal(r.body, &resp); err != nil || r.cache != "HIT" || len(resp.Choices) != 2 {
		t.Fatalf("JSON replay: %s %v %s", r.cache, err, r.body)
	}
	for i, c := range resp.Choices {
		if c.Index != i || len(c.Logprobs.Content) == 0 || len(c.Logprobs.Content[0].TopLogprobs) != 2 {
			t.Fatalf("choice %d: %+v", i, c)
		}
		var toks string
		for _, lp := range c.Logprobs.Content {
			toks += lp.Token
		}
		if toks != c.Message.Content {
			t.Errorf("choice %d: logprob tokens %q do not spell the content %q", i, toks, c.Message.Content)
		}
		if c.Message.Content != perChoice[i] {
			t.Errorf("choice %d: JSON replay %q; stream had %q", i, c.Message.Content, perChoice[i])
		}
	}
}
