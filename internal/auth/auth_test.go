package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llmo/llmo/internal/reqinfo"
)

const (
	aliceKey = "sk-alice-0123456789"
	bobKey   = "sk-bob-abcdefghijkl"
	adminKey = "sk-admin-zyxwvutsrq"
)

type fixture struct {
	a   *Auth
	reg *prometheus.Registry
	log *bytes.Buffer
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if cfg.DefaultMaxTokens == 0 {
		cfg.DefaultMaxTokens = 256
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	a, err := New(cfg, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{a: a, reg: reg, log: &buf}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// upstream stands in for the proxy: it reports usage (prompt, completion)
// to the Meter and echoes the principal it saw.
func upstream(prompt, completion int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := reqinfo.PrincipalFrom(r.Context())
		if p == nil || reqinfo.MeterFrom(r.Context()) == nil {
			http.Error(w, "no principal or meter", 500)
			return
		}
		reqinfo.Report(r.Context(), reqinfo.Usage{PromptTokens: prompt, CompletionTokens: completion})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"key": p.KeyName, "ns": p.Namespace, "admin": p.Admin, "semantic": p.SemanticCache})
	})
}

func do(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func bearer(k string) []string { return []string{"Authorization", "Bearer " + k} }

const chatBody = `{"model":"m1","messages":[{"role":"user","content":"hello"}],"max_tokens":10}`

func TestMiddlewareStatus(t *testing.T) {
	f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey + ":m1|qwen2:0.5b, bob:" + bobKey, AdminKey: adminKey})
	h := f.a.Middleware(upstream(1, 1))
	cases := []struct {
		name     string
		path     string
		body     string
		hdr      []string
		want     int
		wantType string // OpenAI error type, or "" for success
		wantKey  string
	}{
		{"no key", "/v1/chat/completions", chatBody, nil, 401, "authentication_error", ""},
		{"bad key", "/v1/chat/completions", chatBody, bearer("sk-wrong-000000000"), 401, "authentication_error", ""},
		{"basic scheme", "/v1/chat/completions", chatBody, []string{"Authorization", "Basic YWxpY2U6eA=="}, 401, "authentication_error", ""},
		{"bearer ok", "/v1/chat/completions", chatBody, bearer(aliceKey), 200, "", "alice"},
		{"lowercase bearer", "/v1/chat/completions", chatBody, []string{"Authorization", "bearer " + aliceKey}, 200, "", "alice"},
		{"x-api-key ok", "/v1/chat/completions", chatBody, []string{"x-api-key", aliceKey}, 200, "", "alice"},
		{"model with colon allowed", "/v1/chat/completions", `{"model":"qwen2:0.5b","messages":[]}`, bearer(aliceKey), 200, "", "alice"},
		{"model not allowed", "/v1/chat/completions", `{"model":"m2","messages":[]}`, bearer(aliceKey), 403, "permission_error", ""},
		{"model missing on restricted key", "/v1/chat/completions", `{"messages":[]}`, bearer(aliceKey), 400, "invalid_request_error", ""},
		{"model case trick", "/v1/chat/completions", `{"model":"m1","Model":"m2"}`, bearer(aliceKey), 400, "invalid_request_error", ""},
		{"model twice", "/v1/chat/completions", `{"model":"m2","model":"m1"}`, bearer(aliceKey), 400, "invalid_request_error", ""},
		{"unrestricted key any model", "/v1/chat/completions", `{"model":"m2","messages":[]}`, bearer(bobKey), 200, "", "bob"},
		{"malformed body passes to upstream", "/v1/chat/completions", `{"model":`, bearer(bobKey), 200, "", "bob"},
		{"GET models", "/v1/models", "", bearer(aliceKey), 200, "", "alice"},
		{"admin key on v1", "/v1/chat/completions", `{"model":"m9"}`, bearer(adminKey), 200, "", "admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := http.MethodPost
			if c.body == "" {
				method = http.MethodGet
			}
			w := do(h, method, c.path, c.body, c.hdr...)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.wantType != "" {
				var env struct {
					Error struct{ Message, Type string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error.Type != c.wantType || env.Error.Message == "" {
					t.Fatalf("envelope %s, want type %s", w.Body, c.wantType)
				}
				if c.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			var got struct{ Key string }
			_ = json.Unmarshal(w.Body.Bytes(), &got)
			if got.Key != c.wantKey {
				t.Fatalf("principal %q, want %q", got.Key, c.wantKey)
			}
		})
	}
	if got := testutil.ToFloat64(f.a.rejections.WithLabelValues("alice", "model")); got != 1 {
		t.Errorf("model rejections = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.a.failures.WithLabelValues("missing")); got != 1 {
		t.Errorf("missing-key failures = %v, want 1", got)
	}
}

func TestOllamaEnvelopeOnAPIPath(t *testing.T) {
	f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey})
	w := do(f.a.Middleware(upstream(1, 1)), "POST", "/api/chat", chatBody)
	if w.Code != 401 || strings.TrimSpace(w.Body.String()) != `{"error":"missing API key: send Authorization: Bearer \u003ckey\u003e or x-api-key: \u003ckey\u003e"}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, DefaultRPM: 2})
		h := f.a.Middleware(upstream(1, 1))
		for i := range 2 {
			if w := do(h, "POST", "/v1/chat/completions", chatBody, bearer(aliceKey)...); w.Code != 200 {
				t.Fatalf("request %d: %d", i, w.Code)
			}
		}
		w := do(h, "POST", "/v1/chat/completions", chatBody, bearer(aliceKey)...)
		if w.Code != 429 {
			t.Fatalf("third request: %d, want 429", w.Code)
		}
		// 2/min refills one request every 30s.
		if ra := w.Header().Get("Retry-After"); ra != "30" {
			t.Fatalf("Retry-After %q, want 30", ra)
		}
		if !strings.Contains(w.Body.String(), `"rate_limit_error"`) {
			t.Fatalf("body %s", w.Body)
		}
		time.Sleep(29 * time.Second)
		if w := do(h, "POST", "/v1/chat/completions", chatBody, bearer(aliceKey)...); w.Code != 429 {
			t.Fatalf("after 29s: %d, want 429", w.Code)
		}
		time.Sleep(time.Second)
		if w := do(h, "POST", "/v1/chat/completions", chatBody, bearer(aliceKey)...); w.Code != 200 {
			t.Fatalf("after 30s: %d, want 200", w.Code)
		}
		if got := testutil.ToFloat64(f.a.rejections.WithLabelValues("alice", "rpm")); got != 2 {
			t.Errorf("rpm rejections = %v, want 2", got)
		}
	})
}

// TestTokensPerMinuteConcurrent fires many requests at once; the admitted
// reservations must not exceed the limit by more than one reservation (with
// an atomic bucket they never exceed it at all).
func TestTokensPerMinuteConcurrent(t *testing.T) {
	const tpm, n = 1000, 64
	body := `{"model":"m1","messages":[{"role":"user","content":"` + strings.Repeat("x", 40) + `"}],"max_tokens":50}`
	// 4 overhead + 40/4 prompt + 50 completion.
	const reservation = 4 + 10 + 50
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, DefaultTPM: tpm})
		release := make(chan struct{})
		var admitted atomic.Int64
		h := f.a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			admitted.Add(1)
			<-release // hold every admitted request open, as a slow generation would
			reqinfo.Report(r.Context(), reqinfo.Usage{PromptTokens: 14, CompletionTokens: 50})
		}))
		var wg sync.WaitGroup
		var rejected atomic.Int64
		for range n {
			wg.Go(func() {
				if w := do(h, "POST", "/v1/chat/completions", body, bearer(aliceKey)...); w.Code == 429 {
					rejected.Add(1)
				}
			})
		}
		synctest.Wait()
		got := admitted.Load()
		if got*reservation > tpm+reservation {
			t.Fatalf("admitted %d requests = %d tokens; limit %d", got, got*reservation, tpm)
		}
		if got < tpm/reservation {
			t.Fatalf("admitted only %d; the budget fits %d", got, tpm/reservation)
		}
		close(release)
		wg.Wait()
		if got+rejected.Load() != n {
			t.Fatalf("admitted %d + rejected %d != %d", got, rejected.Load(), n)
		}
		if m := testutil.ToFloat64(f.a.rejections.WithLabelValues("alice", "tpm")); int64(m) != rejected.Load() {
			t.Fatalf("tpm rejection metric %v, want %d", m, rejected.Load())
		}
	})
}

func TestReconcile(t *testing.T) {
	big := `{"model":"m1","prompt":"abcd","max_tokens":900}` // 1 + 900 reserved
	cases := []struct {
		name      string
		next      http.Handler
		wantAvail float64 // after one request with the big body
	}{
		{"refund unused", upstream(1, 9), 1000 - 10},
		{"charge the difference", upstream(1, 1099), 1000 - 1100},
		{"failed request refunded", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", 502) }), 1000},
		{"cache hit free", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqinfo.MeterFrom(r.Context()).Cached = true
			reqinfo.Report(r.Context(), reqinfo.Usage{PromptTokens: 1, CompletionTokens: 900})
		}), 1000},
		{"no usage report keeps reservation", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), 1000 - 901},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, DefaultTPM: 1000})
				h := f.a.Middleware(c.next)
				do(h, "POST", "/v1/completions", big, bearer(aliceKey)...)
				b := f.a.limits[f.a.keys[0]].tpm
				if got := b.available(time.Now()); got != c.wantAvail {
					t.Fatalf("available %v, want %v", got, c.wantAvail)
				}
				// A second big request fits only if the first was refunded.
				w := do(f.a.Middleware(upstream(1, 1)), "POST", "/v1/completions", big, bearer(aliceKey)...)
				wantCode := 200
				if c.wantAvail < 901 {
					wantCode = 429
				}
				if w.Code != wantCode {
					t.Fatalf("second request %d, want %d", w.Code, wantCode)
				}
				if wantCode == 429 {
					// Enough budget comes back at 1000/60 tokens per second.
					ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
					want := int((901 - c.wantAvail) * 60 / 1000)
					if ra < want || ra > want+1 {
						t.Fatalf("Retry-After %d, want about %d", ra, want)
					}
				}
			})
		})
	}
}

func TestRequestLargerThanQuota(t *testing.T) {
	f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, DefaultTPM: 100})
	w := do(f.a.Middleware(upstream(1, 1)), "POST", "/v1/chat/completions", `{"model":"m","messages":[],"max_tokens":500}`, bearer(aliceKey)...)
	if w.Code != 429 || !strings.Contains(w.Body.String(), "request_too_large") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestRequireAdmin(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  - name: ops\n    key: sk-ops-key-123456\n    admin: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	on := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, AdminKey: adminKey, KeysFile: file})
	off := newFixture(t, Config{Mode: "off"})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := reqinfo.PrincipalFrom(r.Context()); p == nil || !p.Admin {
			t.Error("admin handler without an admin principal")
		}
	})
	cases := []struct {
		name string
		a    *Auth
		hdr  []string
		want int
	}{
		{"auth off", off.a, nil, 200},
		{"missing", on.a, nil, 401},
		{"bad", on.a, bearer("sk-nope-nope-nope"), 401},
		{"normal key", on.a, bearer(aliceKey), 403},
		{"admin key", on.a, bearer(adminKey), 200},
		{"admin key as x-api-key", on.a, []string{"X-Api-Key", adminKey}, 200},
		{"file admin key", on.a, bearer("sk-ops-key-123456"), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(c.a.RequireAdmin(ok), "POST", "/admin/replicas", `{}`, c.hdr...)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
		})
	}
}

func TestAuthOff(t *testing.T) {
	f := newFixture(t, Config{Mode: "off", Keys: "alice:" + aliceKey})
	w := do(f.a.Middleware(upstream(1, 1)), "POST", "/v1/chat/completions", chatBody)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"key":"anonymous","ns":"anonymous"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !strings.Contains(f.log.String(), "level=WARN") || !strings.Contains(f.log.String(), "auth is OFF") {
		t.Fatalf("no warning logged: %s", f.log)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no keys", Config{Mode: "on", DefaultMaxTokens: 1}, "no API keys"},
		{"bad mode", Config{Mode: "maybe", DefaultMaxTokens: 1}, "want on or off"},
		{"short admin", Config{Mode: "on", AdminKey: "short", DefaultMaxTokens: 1}, "shorter than"},
		{"dup secret", Config{Mode: "on", Keys: "a:" + aliceKey + " b:" + aliceKey, DefaultMaxTokens: 1}, "same secret"},
		{"dup name", Config{Mode: "on", Keys: "a:" + aliceKey + " a:" + bobKey, DefaultMaxTokens: 1}, "duplicate key name"},
		{"missing file", Config{Mode: "on", KeysFile: "/nonexistent/keys.yaml", DefaultMaxTokens: 1}, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, nil, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), aliceKey) || strings.Contains(err.Error(), bobKey) {
				t.Fatalf("error leaks a key: %v", err)
			}
		})
	}
}

// TestKeysNeverLogged drives every path (success, bad key, 403, 429, admin)
// with debug logging on and checks that no secret reaches the log.
func TestKeysNeverLogged(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	fileKey := "sk-file-secret-98765"
	if err := os.WriteFile(file, []byte(`{"keys":[{"name":"carol","key":"`+fileKey+`","models":["m1"],"requests_per_minute":1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{Mode: "on", Keys: "alice:" + aliceKey, AdminKey: adminKey, KeysFile: file, DefaultTPM: 50})
	h := f.a.Middleware(upstream(1, 1))
	adm := f.a.RequireAdmin(upstream(0, 0))
	wrong := "sk-wrong-guess-4242"
	for _, k := range []string{aliceKey, adminKey, fileKey, wrong} {
		do(h, "POST", "/v1/chat/completions", chatBody, bearer(k)...)
		do(h, "POST", "/v1/chat/completions", `{"model":"m2","max_tokens":1000}`, bearer(k)...)
		do(h, "POST", "/v1/chat/completions", chatBody, "X-Api-Key", k)
		do(adm, "GET", "/admin/stats", "", bearer(k)...)
	}
	logs := f.log.String()
	if !strings.Contains(logs, "request refused") {
		t.Fatalf("expected refusals in the log: %s", logs)
	}
	for _, k := range []string{aliceKey, adminKey, fileKey, wrong} {
		if strings.Contains(logs, k) {
			t.Fatalf("log contains key %q:\n%s", k, logs)
		}
	}
	if strings.Contains(fmt.Sprintf("%+v", f.a.cfg), adminKey) || strings.Contains(fmt.Sprintf("%+v", f.a.cfg), aliceKey) {
		t.Fatal("the Auth keeps a plaintext key in its config")
	}
}

func TestParseKeysFile(t *testing.T) {
	cases := []struct {
		name, file, data string
		wantErr          string
		check            func(t *testing.T, ks []*Key)
	}{
		{"yaml", "k.yaml", "keys:\n  - name: a\n    key: sk-aaaaaaaa\n    models: [m1, \"qwen2:0.5b\"]\n    requests_per_minute: 60\n    tokens_per_minute: 1000\n    semantic_cache: true\n", "",
			func(t *testing.T, ks []*Key) {
				k := ks[0]
				if k.Name != "a" || k.RPM != 60 || k.TPM != 1000 || !k.SemanticCache || !k.Allows("qwen2:0.5b") || k.Allows("m2") || k.Namespace != "a" {
					t.Fatalf("%+v", k)
				}
				if k.Hash != hashKey("sk-aaaaaaaa") {
					t.Fatal("hash")
				}
			}},
		{"json with sha256", "k.json", `{"keys":[{"name":"b","sha256":"` + fmt.Sprintf("%x", hashKey("sk-bbbbbbbb")) + `","namespace":"team-b"}]}`, "",
			func(t *testing.T, ks []*Key) {
				if ks[0].Hash != hashKey("sk-bbbbbbbb") || ks[0].Namespace != "team-b" || ks[0].RPM != 7 {
					t.Fatalf("%+v", ks[0])
				}
			}},
		{"yaml unknown field", "k.yml", "keys:\n  - name: a\n    key: sk-aaaaaaaa\n    rpm: 3\n", "field rpm not found", nil},
		{"json unknown field", "k.json", `{"keys":[{"name":"a","key":"sk-aaaaaaaa","rpm":3}]}`, "unknown field", nil},
		{"json trailing", "k.json", `{"keys":[]} {}`, "trailing data", nil},
		{"yaml two docs", "k.yaml", "keys: []\n---\nkeys: []\n", "one document", nil},
		{"empty", "k.yaml", "", "empty", nil},
		{"both key and hash", "k.yaml", "keys:\n  - name: a\n    key: sk-aaaaaaaa\n    sha256: 00\n", "not both", nil},
		{"bad hash", "k.yaml", "keys:\n  - name: a\n    sha256: abc\n", "64 hex", nil},
		{"no secret", "k.yaml", "keys:\n  - name: a\n", "set key or sha256", nil},
		{"short key", "k.yaml", "keys:\n  - name: a\n    key: abc\n", "shorter", nil},
		{"bad name", "k.yaml", "keys:\n  - name: 'a b'\n    key: sk-aaaaaaaa\n", "letters, digits", nil},
		{"negative rpm", "k.yaml", "keys:\n  - name: a\n    key: sk-aaaaaaaa\n    requests_per_minute: -1\n", "negative", nil},
		{"wrong type", "k.yaml", "keys:\n  - name: a\n    key: sk-aaaaaaaa\n    tokens_per_minute: lots\n", "cannot unmarshal", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks, err := ParseKeysFile(c.file, []byte(c.data), 7, 0)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, ks)
		})
	}
}

func TestParseKeysEnv(t *testing.T) {
	ks, err := ParseKeysEnv(" alice:sk-aaaaaaaa:llama|qwen2:0.5b,\nbob:sk-bbbbbbbb ", 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].Name != "alice" || !ks[0].Allows("qwen2:0.5b") || !ks[0].Allows("llama") || ks[0].Allows("qwen2") ||
		len(ks[1].Models) != 0 || ks[1].RPM != 5 || ks[1].TPM != 6 {
		t.Fatalf("%+v %+v", ks[0], ks[1])
	}
	for _, bad := range []string{"alice", "alice:", ":sk-aaaaaaaa", "alice:short", "alice:sk-aaaaaaaa:m||n"} {
		if _, err := ParseKeysEnv(bad, 0, 0); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestEstimate(t *testing.T) {
	cases := []struct {
		body, path string
		want       int
	}{
		{`{"messages":[{"role":"user","content":"12345678"},{"role":"system","content":null}],"max_tokens":5}`, "/v1/chat/completions", 4 + 2 + 4 + 0 + 5},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":"1234"}]}],"max_completion_tokens":3,"max_tokens":99}`, "/v1/chat/completions", 4 + 1 + 3},
		{`{"prompt":"123456789","n":2,"max_tokens":10}`, "/v1/completions", 3 + 20},
		{`{"prompt":[1,2,3]}`, "/v1/completions", 3 + 100},
		{`{"prompt":["1234","12345678"],"max_tokens":1}`, "/v1/completions", 1 + 2 + 1},
		{`{"input":"12345678"}`, "/v1/embeddings", 2},
		{`{"max_tokens":9223372036854775807,"n":100}`, "/v1/completions", (1 << 30) * 100},
	}
	for _, c := range cases {
		req, err := parseRequest([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := req.promptTokens() + req.completionTokens(c.path, 100); got != c.want {
			t.Errorf("%s: %d, want %d", c.body, got, c.want)
		}
	}
}
