package respcache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/cache/cachetest"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/modelsvc"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/respcache"
	"github.com/llmo/llmo/internal/testenv"
)

var quiet = slog.New(slog.DiscardHandler)

// Models served by the real model service in these tests.
const (
	modelA = "stories260K"
	modelB = "stories-b" // the same weights under another name
)

// modelService is a real llmo model service (stories260K, and the same
// weights under a second name, with the chatml template) as an in-process
// http.Handler, closed when the test ends.
func modelService(t testing.TB) http.Handler {
	t.Helper()
	a := testenv.Model(t, "stories260K.gguf")
	b := filepath.Join(t.TempDir(), modelB+".gguf")
	if err := os.Symlink(a, b); err != nil {
		t.Fatal(err)
	}
	return startModel(t, "--model", a, "--model", b, "--chat-template", "chatml", "--max-batch", "8", "--threads", "1")
}

func startModel(t testing.TB, args ...string) http.Handler {
	t.Helper()
	var cfg modelsvc.Config
	if _, err := config.Load("test", &cfg, config.Source{Args: append(args, "--log-level", "error")}); err != nil {
		t.Fatal(err)
	}
	svc, err := modelsvc.New(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatalf("model service: %v", err)
	}
	t.Cleanup(svc.Close)
	h := svc.Server().Handler()
	waitFor(t, func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/ready", nil))
		return rec.Code == 200
	})
	return h
}

// counter counts the generation requests (POSTs) that reach the upstream;
// model-list lookups (the Ollama layer's GET /v1/models) are not cacheable
// work and are not counted.
type counter struct {
	next http.Handler
	n    atomic.Int64
	gate chan struct{} // when non-nil, each call waits for it to close
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		c.n.Add(1)
	}
	if c.gate != nil {
		<-c.gate
	}
	c.next.ServeHTTP(w, r)
}

// withPrincipal stands in for the auth layer: X-Test-NS sets the
// principal's namespace, X-Test-Semantic: 1 its semantic opt-in.
func withPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns := r.Header.Get("X-Test-NS")
		if ns == "" {
			ns = "team-a"
		}
		p := &reqinfo.Principal{KeyName: ns, Namespace: ns, SemanticCache: r.Header.Get("X-Test-Semantic") == "1"}
		ctx := reqinfo.WithPrincipal(r.Context(), p)
		ctx, _ = reqinfo.WithMeter(ctx)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// stores yields each backend: memory and a real redis-server.
func stores(t *testing.T, fn func(t *testing.T, newStore func() cache.Store)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, func() cache.Store { return cache.NewMemory(64 << 20) })
	})
	t.Run("redis", func(t *testing.T) {
		url := cachetest.Redis(t)
		fn(t, func() cache.Store {
			s, err := cache.NewRedis(url)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

// stack is the middleware over an upstream, served on loopback.
type stack struct {
	t     testing.TB
	layer *respcache.Layer
	up    *counter
	srv   *httptest.Server
	reg   *prometheus.Registry
	store cache.Store
}

// metric is the value of a counter (or a histogram's count) with the given
// label pairs, 0 when absent.
func (s *stack) metric(name string, labels ...string) float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sleepMs(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }

func newStack(t testing.TB, store cache.Store, upstream http.Handler, cfg respcache.Config) *stack {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := respcache.New(cfg, store, reg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := store.(io.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	up := &counter{next: upstream}
	srv := httptest.NewServer(withPrincipal(l.Middleware(up)))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = l.Close() })
	return &stack{t: t, layer: l, up: up, srv: srv, reg: reg, store: store}
}

type result struct {
	status int
	cache  string
	sim    string
	header http.Header
	body   []byte
}

func (s *stack) post(path, body string, hdr ...string) result {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	_ = s.layer.Close() // wait for the fill, so the next request sees it
	return result{status: resp.StatusCode, cache: resp.Header.Get("X-Cache"), sim: resp.Header.Get("X-Cache-Similarity"), header: resp.Header, body: b}
}

func (s *stack) chat(body string, hdr ...string) result {
	s.t.Helper()
	return s.post("/v1/chat/completions", body, hdr...)
}

// streamed is a parsed SSE response.
type streamed struct {
	deltas       []string
	finish       string
	usage        map[string]any
	done         bool
	role         string
	rawDataLines int
}

func (s streamed) content() string { return strings.Join(s.deltas, "") }

func parseSSE(t testing.TB, b []byte) streamed {
	t.Helper()
	var out streamed
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		out.rawDataLines++
		data := strings.TrimPrefix(line, "data: ")
		if data == "[DONE]" {
			out.done = true
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
				Text         *string `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage map[string]any `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("bad SSE chunk %q: %v", data, err)
		}
		if c.Usage != nil {
			out.usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Role != "" {
				out.role = ch.Delta.Role
			}
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				out.deltas = append(out.deltas, *ch.Delta.Content)
			}
			if ch.Text != nil && *ch.Text != "" {
				out.deltas = append(out.deltas, *ch.Text)
			}
			if ch.FinishReason != nil {
				out.finish = *ch.FinishReason
			}
		}
	}
	return out
}

// chatContent is the content and finish reason of a JSON chat response.
func chatContent(t testing.TB, b []byte) (string, string, map[string]any) {
	t.Helper()
	var r struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage map[string]any `json:"usage"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Choices) == 0 {
		t.Fatalf("bad chat response %s: %v", b, err)
	}
	return r.Choices[0].Message.Content, r.Choices[0].FinishReason, r.Usage
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
