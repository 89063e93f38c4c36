package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/auth"
	"github.com/llmo/llmo/internal/gateway/gwtest"
	"github.com/llmo/llmo/internal/service"
)

func testConfig(replicas ...string) Config {
	return Config{
		Common: service.Common{Host: "127.0.0.1", LogFormat: "text", LogLevel: "error", DrainTimeout: time.Second,
			MaxBodyBytes: 1 << 20, ReadHeaderTimeout: time.Second, IdleTimeout: time.Second},
		Layers: Layers{Config: auth.Config{Mode: "off", DefaultMaxTokens: 1024}, CacheTTL: time.Hour,
			CacheMemoryBytes: 1 << 20, SemanticThreshold: 0.95},
		Replicas: replicas, Balancer: "least-loaded", PrefixChars: 256, DNSInterval: time.Second,
		HealthInterval: 50 * time.Millisecond, EjectAfter: 3, EjectTime: 300 * time.Millisecond,
		ConnectTimeout: time.Second, FirstByteTimeout: 5 * time.Second, StreamIdleTimeout: 2 * time.Second,
		TotalTimeout: 10 * time.Second, MaxRetries: 2, RetryBudget: 0.2,
	}
}

type fixture struct {
	t     *testing.T
	gw    *Gateway
	ts    *httptest.Server
	fakes []*gwtest.Responder
	ups   []*httptest.Server
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newFixture starts n fake replicas and a gateway over them (edit cfg in mod).
func newFixture(t *testing.T, n int, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t}
	var urls []string
	for i := 0; i < n; i++ {
		fk := gwtest.New(string(rune('a' + i)))
		up := httptest.NewServer(fk)
		t.Cleanup(up.Close)
		f.fakes, f.ups = append(f.fakes, fk), append(f.ups, up)
		urls = append(urls, up.URL)
	}
	cfg := testConfig(urls...)
	if mod != nil {
		mod(&cfg)
	}
	gw, err := New(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	f.gw = gw
	f.ts = httptest.NewServer(gw.Handler())
	t.Cleanup(f.ts.Close)
	if n > 0 {
		f.waitHealthy("fake", n)
	}
	return f
}

func (f *fixture) waitHealthy(model string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		healthy := 0
		for _, r := range f.gw.reg.Pool(model) {
			if r.Available() {
				healthy++
			}
		}
		if healthy == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("pool %q did not reach %d healthy replicas", model, n)
}

func (f *fixture) post(path, body string, hdr ...string) (*http.Response, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

const chatBody = `{"model":"fake","messages":[{"role":"user","content":"hi"}]}`

func TestBadRequestsGet4xxEnvelope(t *testing.T) {
	f := newFixture(t, 1, func(c *Config) { c.MaxBodyBytes = 4096 })
	cases := []struct {
		name, method, path, ct, body string
		code                         int
		param                        string
	}{
		{"malformed json", "POST", "/v1/chat/completions", "application/json", `{"model":`, 400, ""},
		{"array body", "POST", "/v1/chat/completions", "application/json", `[1,2]`, 400, ""},
		{"empty body", "POST", "/v1/chat/completions", "application/json", ``, 400, ""},
		{"invalid utf8", "POST", "/v1/chat/completions", "application/json", "{\"model\":\"\xff\"}", 400, ""},
		{"missing model", "POST", "/v1/chat/completions", "application/json", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"model not string", "POST", "/v1/chat/completions", "application/json", `{"model":3,"messages":[]}`, 400, "model"},
		{"stream not bool", "POST", "/v1/chat/completions", "application/json", `{"model":"fake","stream":"yes","messages":[{"role":"user","content":"x"}]}`, 400, "stream"},
		{"messages missing", "POST", "/v1/chat/completions", "application/json", `{"model":"fake"}`, 400, "messages"},
		{"messages object", "POST", "/v1/chat/completions", "application/json", `{"model":"fake","messages":{"a":1}}`, 400, "messages"},
		{"messages empty", "POST", "/v1/chat/completions", "application/json", `{"model":"fake","messages":[]}`, 400, "messages"},
		{"messages not objects", "POST", "/v1/chat/completions", "application/json", `{"model":"fake","messages":"hi"}`, 400, "messages"},
		{"unknown model", "POST", "/v1/chat/completions", "application/json", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, 404, ""},
		{"huge model name", "POST", "/v1/completions", "application/json", `{"model":"` + strings.Repeat("m", 300) + `","prompt":"x"}`, 400, "model"},
		{"prompt missing", "POST", "/v1/completions", "application/json", `{"model":"fake"}`, 400, "prompt"},
		{"prompt bad type", "POST", "/v1/completions", "application/json", `{"model":"fake","prompt":{"x":1}}`, 400, "prompt"},
		{"input missing", "POST", "/v1/embeddings", "application/json", `{"model":"fake"}`, 400, "input"},
		{"streamed embeddings", "POST", "/v1/embeddings", "application/json", `{"model":"fake","input":"x","stream":true}`, 400, "stream"},
		{"wrong content type", "POST", "/v1/chat/completions", "text/plain", chatBody, 415, ""},
		{"body too large", "POST", "/v1/chat/completions", "application/json", `{"model":"fake","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, ""},
		{"wrong method", "GET", "/v1/chat/completions", "", "", 405, ""},
		{"unknown v1 path", "POST", "/v1/nothing", "application/json", `{}`, 404, ""},
		{"register bad url", "POST", "/admin/replicas", "application/json", `{"url":"ftp://x"}`, 400, "url"},
		{"register bad ttl", "POST", "/admin/replicas", "application/json", `{"url":"http://127.0.0.1:1","ttl_s":0}`, 400, "ttl_s"},
		{"deregister unknown", "DELETE", "/admin/replicas", "application/json", `{"url":"http://127.0.0.1:1"}`, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.ts.URL+c.path, strings.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env service.OpenAIError
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatalf("status %d, body is not the OpenAI envelope: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != c.code || env.Error.Message == "" || env.Error.Type == "" {
				t.Fatalf("got %d %+v, want %d with a message", resp.StatusCode, env.Error, c.code)
			}
			if c.param != "" && (env.Error.Param == nil || *env.Error.Param != c.param) {
				t.Fatalf("param = %v, want %q (%s)", env.Error.Param, c.param, env.Error.Message)
			}
		})
	}
	if n := f.fakes[0].Hits.Load(); n != 0 {
		t.Fatalf("bad requests reached the replica %d times", n)
	}
}

func TestNonStreamedAndHeadersPropagated(t *testing.T) {
	f := newFixture(t, 1, nil)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	resp, body := f.post("/v1/chat/completions", chatBody, "X-Request-Id", "req-123", "Traceparent", tp, "Authorization", "Bearer secret")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello there!") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	h := f.fakes[0].LastHeader()
	if h.Get("X-Request-Id") != "req-123" {
		t.Errorf("X-Request-Id upstream = %q", h.Get("X-Request-Id"))
	}
	got := h.Get("Traceparent")
	if !strings.HasPrefix(got, tp[:36]) || got == tp || !validTP(got) {
		t.Errorf("traceparent upstream = %q; want the client's trace id with a new span id", got)
	}
	if h.Get("Authorization") != "" {
		t.Error("the client's credentials were forwarded upstream")
	}
	// Without a traceparent the gateway starts a trace.
	f.post("/v1/chat/completions", chatBody)
	if !validTP(f.fakes[0].LastHeader().Get("Traceparent")) {
		t.Errorf("no traceparent generated: %q", f.fakes[0].LastHeader().Get("Traceparent"))
	}
}

func validTP(s string) bool { return len(s) == 55 && s[:3] == "00-" }

// readSSE returns the data payloads of a stream.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestStreamUsageInjectedAndStripped(t *testing.T) {
	f := newFixture(t, 1, nil)
	for _, asked := range []bool{false, true} {
		body := `{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if asked {
			body = `{"model":"fake","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		}
		resp, b := f.post("/v1/chat/completions", body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := readSSE(t, strings.NewReader(string(b)))
		if events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream did not end with [DONE]: %v", events)
		}
		usage := strings.Contains(string(b), `"usage"`)
		if usage != asked {
			t.Fatalf("include_usage=%v: usage chunk present = %v\n%s", asked, usage, b)
		}
		var up struct {
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		_ = json.Unmarshal(f.fakes[0].LastBody(), &up)
		if !up.StreamOptions.IncludeUsage {
			t.Fatalf("include_usage not injected upstream: %s", f.fakes[0].LastBody())
		}
	}
	_, m := get(t, f.ts.URL+"/metrics")
	if !strings.Contains(m, `llmo_gateway_tokens_total{direction="completion",model="fake"} 6`) {
		t.Errorf("streamed usage not counted:\n%s", grep(m, "llmo_gateway_tokens_total"))
	}
}

func TestMidStreamBreakEndsWithErrorEvent(t *testing.T) {
	f := newFixture(t, 1, nil)
	f.fakes[0].BreakAfter.Store(1)
	done := make(chan []string, 1)
	go func() {
		_, b := f.post("/v1/chat/completions", `{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		done <- readSSE(t, strings.NewReader(string(b)))
	}()
	select {
	case ev := <-done:
		if len(ev) < 3 || ev[len(ev)-1] != "[DONE]" || !strings.Contains(ev[len(ev)-2], `"error"`) || !strings.Contains(ev[0], "Hello") {
			t.Fatalf("events = %q", ev)
		}
		var e struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(ev[len(ev)-2]), &e); err != nil || e.Error.Message == "" {
			t.Fatalf("error event is not well-formed JSON: %q", ev[len(ev)-2])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a broken stream hung the client")
	}
}

func TestStreamIdleTimeoutEndsStream(t *testing.T) {
	// An upstream that sends one chunk and then goes silent.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			io.WriteString(w, `{"object":"list","data":[{"id":"fake","object":"model"}]}`)
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer up.Close()
	f := newFixture(t, 0, func(c *Config) { c.Replicas = []string{up.URL}; c.StreamIdleTimeout = 200 * time.Millisecond })
	f.waitHealthy("fake", 1)
	start := time.Now()
	_, b := f.post("/v1/chat/completions", `{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	ev := readSSE(t, strings.NewReader(string(b)))
	if time.Since(start) > 3*time.Second || len(ev) < 2 || ev[len(ev)-1] != "[DONE]" || !strings.Contains(ev[len(ev)-2], "error") {
		t.Fatalf("after %v: %q", time.Since(start), ev)
	}
}

func TestRetryOn503GoesToAnotherReplica(t *testing.T) {
	f := newFixture(t, 2, func(c *Config) { c.Balancer = "round-robin"; c.EjectAfter = 100 })
	f.fakes[0].FailStatus.Store(503)
	for i := 0; i < 10; i++ {
		resp, b := f.post("/v1/chat/completions", chatBody)
		if resp.StatusCode != 200 || resp.Header.Get("X-Replica") != "b" {
			t.Fatalf("request %d: %d from %q: %s", i, resp.StatusCode, resp.Header.Get("X-Replica"), b)
		}
	}
	_, m := get(t, f.ts.URL+"/metrics")
	if !strings.Contains(m, `llmo_gateway_retries_total{model="fake",reason="503"}`) {
		t.Errorf("retries not counted:\n%s", grep(m, "retries"))
	}
	// With every replica failing the client gets the upstream's answer,
	// not a hang and not a made-up error.
	f.fakes[1].FailStatus.Store(503)
	resp, b := f.post("/v1/chat/completions", chatBody)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "fake failure 503") {
		t.Fatalf("all failing: %d %s", resp.StatusCode, b)
	}
}

func TestNoRetryOn500ButEjection(t *testing.T) {
	f := newFixture(t, 2, func(c *Config) { c.Balancer = "round-robin"; c.EjectTime = 400 * time.Millisecond })
	f.fakes[0].FailStatus.Store(500)
	fails := 0
	for i := 0; i < 20; i++ {
		resp, _ := f.post("/v1/chat/completions", chatBody)
		if resp.StatusCode == 500 {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("%d requests saw the failing replica; want exactly 3 before it was ejected", fails)
	}
	if st := f.gw.reg.Lookup(f.ups[0].URL).State().String(); st != "ejected" {
		t.Fatalf("replica a state = %s, want ejected", st)
	}
	// Heal it: it is readmitted once its ejection time passes.
	f.fakes[0].FailStatus.Store(0)
	f.waitHealthy("fake", 2)
	var h struct {
		Pools []struct{ Healthy int } `json:"pools"`
	}
	_, hb := get(t, f.ts.URL+"/api/health")
	_ = json.Unmarshal([]byte(hb), &h)
	if len(h.Pools) != 1 || h.Pools[0].Healthy != 2 {
		t.Fatalf("health after readmission: %s", hb)
	}
}

func TestReplicaDeathFailsOver(t *testing.T) {
	f := newFixture(t, 2, func(c *Config) { c.Balancer = "round-robin"; c.HealthInterval = time.Hour })
	f.ups[0].Close() // dead, but the health checker has not noticed
	for i := 0; i < 10; i++ {
		resp, b := f.post("/v1/chat/completions", chatBody)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d failed: %d %s", i, resp.StatusCode, b)
		}
	}
	if st := f.gw.reg.Lookup(f.ups[0].URL).State().String(); st != "ejected" {
		t.Fatalf("dead replica state = %s, want ejected", st)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			io.WriteString(w, `{"object":"list","data":[{"id":"fake","object":"model"}]}`)
			return
		}
		if r.URL.Path == "/v1/chat/completions" {
			io.Copy(io.Discard, r.Body) // a server notices a closed connection only after the body
			select {
			case <-r.Context().Done():
				once.Do(func() { close(canceled) })
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer up.Close()
	f := newFixture(t, 0, func(c *Config) { c.Replicas = []string{up.URL} })
	f.waitHealthy("fake", 1)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.ts.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Content-Type", "application/json")
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, _ = http.DefaultClient.Do(req)
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream request not canceled after the client left")
	}
}

func TestFirstByteTimeout504(t *testing.T) {
	f := newFixture(t, 1, func(c *Config) { c.FirstByteTimeout = 100 * time.Millisecond })
	f.fakes[0].Delay.Store(int64(2 * time.Second))
	start := time.Now()
	resp, b := f.post("/v1/chat/completions", chatBody)
	if resp.StatusCode != 504 || time.Since(start) > time.Second {
		t.Fatalf("got %d after %v: %s", resp.StatusCode, time.Since(start), b)
	}
}

// The total timeout ends a request with 504, is not retried and does not
// count against the replica (it is the request's budget, not its fault).
func TestTotalTimeout504(t *testing.T) {
	f := newFixture(t, 2, func(c *Config) { c.TotalTimeout = 200 * time.Millisecond })
	for _, fk := range f.fakes {
		fk.Delay.Store(int64(2 * time.Second))
	}
	start := time.Now()
	resp, b := f.post("/v1/chat/completions", chatBody)
	if resp.StatusCode != 504 || time.Since(start) > time.Second {
		t.Fatalf("got %d after %v: %s", resp.StatusCode, time.Since(start), b)
	}
	if hits := f.fakes[0].Hits.Load() + f.fakes[1].Hits.Load(); hits != 1 {
		t.Errorf("%d upstream attempts; want 1 (no retry after the total timeout)", hits)
	}
	for _, r := range f.gw.reg.Pool("fake") {
		if !r.Available() {
			t.Errorf("replica %s unavailable after a total timeout", r.URL)
		}
	}
}

func TestPrefixAffinity(t *testing.T) {
	f := newFixture(t, 3, func(c *Config) { c.Balancer = "prefix" })
	owner := map[string]string{}
	for round := 0; round < 5; round++ {
		for p := 0; p < 12; p++ {
			body := `{"model":"fake","messages":[{"role":"user","content":"prompt number ` + string(rune('A'+p)) + `"}]}`
			resp, _ := f.post("/v1/chat/completions", body)
			rep := resp.Header.Get("X-Replica")
			if prev, ok := owner[body]; ok && prev != rep {
				t.Fatalf("prompt %d went to %s then %s", p, prev, rep)
			}
			owner[body] = rep
		}
	}
	used := map[string]bool{}
	for _, r := range owner {
		used[r] = true
	}
	if len(used) < 2 {
		t.Fatalf("12 distinct prompts all went to %v", used)
	}
}

func TestSlowReplicaGetsLessTraffic(t *testing.T) {
	f := newFixture(t, 3, nil)
	f.fakes[2].Delay.Store(int64(60 * time.Millisecond))
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				req, _ := http.NewRequest("POST", f.ts.URL+"/v1/chat/completions", strings.NewReader(chatBody))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	a, b, slow := f.fakes[0].Hits.Load(), f.fakes[1].Hits.Load(), f.fakes[2].Hits.Load()
	t.Logf("hits: fast %d %d, slow %d", a, b, slow)
	if slow*2 > min(a, b) {
		t.Fatalf("slow replica got %d requests vs %d and %d for the fast ones", slow, a, b)
	}
}

func TestSpreadAcrossReplicas(t *testing.T) {
	for _, bal := range []string{"least-loaded", "round-robin"} {
		t.Run(bal, func(t *testing.T) {
			f := newFixture(t, 3, func(c *Config) { c.Balancer = bal })
			for i := 0; i < 60; i++ {
				f.post("/v1/chat/completions", chatBody)
			}
			for i, fk := range f.fakes {
				if n := fk.Hits.Load(); n < 10 {
					t.Errorf("replica %d got %d of 60", i, n)
				}
			}
		})
	}
}

func TestModelsAggregatedOverPools(t *testing.T) {
	a := httptest.NewServer(gwtest.New("a", "m1", "m2"))
	defer a.Close()
	b := httptest.NewServer(gwtest.New("b", "m3"))
	defer b.Close()
	f := newFixture(t, 0, func(c *Config) { c.Replicas = []string{a.URL, b.URL} })
	f.waitHealthy("m1", 1) // both replicas' model lists learned
	f.waitHealthy("m3", 1)
	_, body := get(t, f.ts.URL+"/v1/models")
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &list)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "m1,m2,m3" {
		t.Fatalf("models = %v", ids)
	}
	resp, _ := f.post("/v1/chat/completions", `{"model":"m3","messages":[{"role":"user","content":"x"}]}`)
	if resp.Header.Get("X-Replica") != "b" {
		t.Fatalf("m3 routed to %q", resp.Header.Get("X-Replica"))
	}
}

func TestSelfRegistrationLease(t *testing.T) {
	up := httptest.NewServer(gwtest.New("reg"))
	defer up.Close()
	f := newFixture(t, 0, nil)
	resp, b := f.post("/admin/replicas", `{"url":"`+up.URL+`/","ttl_s":1}`)
	if resp.StatusCode != 200 {
		t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	f.waitHealthy("fake", 1)
	if st := f.gw.reg.Pool("fake")[0].Source(); st != "registered" {
		t.Fatalf("source = %s", st)
	}
	// Heartbeats keep it; silence lets the lease expire.
	for i := 0; i < 3; i++ {
		time.Sleep(400 * time.Millisecond)
		f.post("/admin/replicas", `{"url":"`+up.URL+`","ttl_s":1}`)
	}
	if len(f.gw.reg.Pool("fake")) != 1 {
		t.Fatal("replica dropped despite heartbeats")
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(f.gw.reg.Pool("fake")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("lease did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigFileHotReload(t *testing.T) {
	a := httptest.NewServer(gwtest.New("a"))
	defer a.Close()
	b := httptest.NewServer(gwtest.New("b", "other"))
	defer b.Close()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	os.WriteFile(path, []byte("replicas:\n  - url: "+a.URL+"\n"), 0o644)
	f := newFixture(t, 0, func(c *Config) { c.ConfigFile = path })
	f.waitHealthy("fake", 1)
	// b is listed as serving "fake" although it says "other": the file wins.
	os.WriteFile(path, []byte("replicas:\n  - url: "+b.URL+"\n    models: [fake]\n"), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := f.gw.reg.Pool("fake")
		if len(p) == 1 && p[0].URL == b.URL && p[0].Available() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not applied: %v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A bad edit keeps the last good set.
	os.WriteFile(path, []byte("replicas:\n  - url: "+a.URL+"\n    wieght: 3\n"), 0o644)
	time.Sleep(2500 * time.Millisecond)
	if p := f.gw.reg.Pool("fake"); len(p) != 1 || p[0].URL != b.URL {
		t.Fatalf("bad edit changed the pool: %v", p)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, 1, func(c *Config) { c.CORSOrigins = []string{"https://app.example"} })
	req, _ := http.NewRequest("OPTIONS", f.ts.URL+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = f.post("/v1/chat/completions", chatBody, "Origin", "https://app.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("no CORS header on the actual response: %v", resp.Header)
	}
}

func TestHealthAndStats(t *testing.T) {
	f := newFixture(t, 2, nil)
	f.post("/v1/chat/completions", chatBody)
	code, body := get(t, f.ts.URL+"/api/health")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.Status != "ok" || len(h.Pools) != 1 ||
		h.Pools[0].Healthy != 2 || h.Pools[0].Replicas[0].Breaker != "closed" || h.Pools[0].Replicas[0].Source != "static" ||
		h.Cache.State != "disabled" || h.Storage.State != "disabled" {
		t.Fatalf("health %d %s", code, body)
	}
	f.fakes[1].NotReady.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, body = get(t, f.ts.URL+"/api/health")
		if strings.Contains(body, `"status":"degraded"`) && strings.Contains(body, `"state":"draining"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("draining replica not reported: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body = get(t, f.ts.URL+"/admin/stats")
	var s struct {
		IntervalS int `json:"interval_s"`
		Series    []struct {
			RPS float64 `json:"rps"`
		} `json:"series"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || s.IntervalS != 5 || len(s.Series) != 120 || s.Series[119].RPS+s.Series[118].RPS == 0 {
		t.Fatalf("stats: %.300s", body)
	}
	for _, r := range f.ups {
		r.Close()
	}
	deadline = time.Now().Add(3 * time.Second)
	for {
		code, body = get(t, f.ts.URL+"/api/health")
		if code == 503 && strings.Contains(body, `"status":"down"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("all replicas dead: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAuthComposedWithKeyLabelsAndAdmin(t *testing.T) {
	const alice, admin = "sk-alice-0123456789abcdef", "sk-admin-0123456789abcdef"
	f := newFixture(t, 1, func(c *Config) {
		c.Layers.Config.Mode = "on"
		c.Layers.Config.Keys = "alice:" + alice + ":fake"
		c.Layers.Config.AdminKey = admin
	})
	resp, b := f.post("/v1/chat/completions", chatBody)
	if resp.StatusCode != 401 || !strings.Contains(string(b), `"type":"authentication_error"`) {
		t.Fatalf("no key: %d %s", resp.StatusCode, b)
	}
	resp, b = f.post("/v1/chat/completions", chatBody, "Authorization", "Bearer "+alice)
	if resp.StatusCode != 200 {
		t.Fatalf("alice: %d %s", resp.StatusCode, b)
	}
	resp, _ = f.post("/admin/replicas", `{"url":"http://127.0.0.1:1"}`, "Authorization", "Bearer "+alice)
	if resp.StatusCode != 403 {
		t.Fatalf("admin route with a user key: %d", resp.StatusCode)
	}
	resp, b = f.post("/admin/replicas", `{"url":"http://127.0.0.1:1","ttl_s":5}`, "Authorization", "Bearer "+admin)
	if resp.StatusCode != 200 {
		t.Fatalf("admin route with the admin key: %d %s", resp.StatusCode, b)
	}
	_, m := get(t, f.ts.URL+"/metrics")
	for _, want := range []string{
		`llmo_gateway_requests_total{code="200",key="alice",model="fake",route="POST /v1/chat/completions"} 1`,
		`llmo_gateway_requests_total{code="401",key="none",model="fake",route="POST /v1/chat/completions"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s\n%s", want, grep(m, "llmo_gateway_requests_total"))
		}
	}
}
