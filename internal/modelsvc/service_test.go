package modelsvc

import (
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

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/engine"
)

func TestModelsListAndMetricNames(t *testing.T) {
	dir := t.TempDir()
	// A directory of models: both files are served, by file name.
	for _, name := range []string{"stories260K.gguf", "synth-15m-q8_0.gguf"} {
		src := filepathOf(t, name)
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ts := startService(t, "--model", dir, "--max-batch", "2")
	var list api.ModelList
	deadline := time.Now().Add(30 * time.Second)
	for {
		list = api.ModelList{}
		postOrGet(t, ts.URL+"/v1/models", &list)
		if len(list.Data) == 2 && list.Data[0].Digest != "" && list.Data[1].Digest != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(list.Data) != 2 || list.Data[0].ID != "stories260K" || list.Data[1].ID != "synth-15m-q8_0" {
		t.Fatalf("models: %+v", list)
	}
	for _, m := range list.Data {
		if m.ContextLength <= 0 || m.Parameters <= 0 || m.Quantization == "" || !strings.HasPrefix(m.Digest, "sha256:") || len(m.Digest) != 71 {
			t.Errorf("incomplete model entry: %+v", m)
		}
	}
	if list.Data[1].Quantization != "Q8_0" {
		t.Errorf("synth quantization = %q", list.Data[1].Quantization)
	}
	// With two models, "model" selects and an empty one is an error.
	var out api.CompletionResponse
	if resp := postJSON(t, ts.URL+"/v1/completions", `{"model":"synth-15m-q8_0","prompt":"Hi","max_tokens":2}`, &out); resp.StatusCode != 200 || out.Model != "synth-15m-q8_0" {
		t.Fatalf("select synth: %d %+v", resp.StatusCode, out)
	}
	if resp := postJSON(t, ts.URL+"/v1/completions", `{"prompt":"Hi","max_tokens":2}`, nil); resp.StatusCode != 400 {
		t.Fatalf("no model with two served: %d", resp.StatusCode)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
		"vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total", "vllm:time_to_first_token_seconds",
		"vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
		"llmo_model_rejected_total", "process_resident_memory_bytes", "llmo_http_requests_total"} {
		if !strings.Contains(string(raw), "\n"+name) {
			t.Errorf("metric %s missing", name)
		}
	}
	if !strings.Contains(string(raw), `vllm:generation_tokens_total{model_name="synth-15m-q8_0"} 2`) {
		t.Errorf("generation tokens not counted for synth:\n%s", grepLines(string(raw), "generation_tokens"))
	}
}

func filepathOf(t *testing.T, name string) string {
	if name == "stories260K.gguf" {
		return stories(t)
	}
	return synth(t)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func postOrGet(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// TestChatTemplates: a model without a template refuses chat but serves
// completions; --chat-template gives it one (built-in or file), and
// --served-model-name renames it.
func TestChatTemplates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.jinja")
	if err := os.WriteFile(file, []byte(`{% for m in messages %}{{ m.role | upper }}: {{ m.content }}
{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}`), 0o644); err != nil {
		t.Fatal(err)
	}
	chat := `{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":4,"temperature":0}`
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"none", nil, 400},
		{"chatml", []string{"--chat-template", "chatml"}, 200},
		{"llama2", []string{"--chat-template", "llama2"}, 200},
		{"llama3", []string{"--chat-template", "llama3"}, 200},
		{"file", []string{"--chat-template", file, "--served-model-name", "tiny"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startService(t, append([]string{"--model", stories(t)}, tc.args...)...)
			var out struct {
				api.ChatResponse
				Error struct{ Code string } `json:"error"`
			}
			resp := postJSON(t, ts.URL+"/v1/chat/completions", chat, &out)
			if resp.StatusCode != tc.want {
				t.Fatalf("chat: %d %+v", resp.StatusCode, out)
			}
			if tc.want == 400 && out.Error.Code != "chat_template_missing" {
				t.Fatalf("code = %q", out.Error.Code)
			}
			if tc.want == 200 && (len(out.Choices) != 1 || out.Usage.CompletionTokens == 0) {
				t.Fatalf("chat answer: %+v", out)
			}
			if resp := postJSON(t, ts.URL+"/v1/completions", `{"prompt":"Hi","max_tokens":2}`, nil); resp.StatusCode != 200 {
				t.Fatalf("completions: %d", resp.StatusCode)
			}
			if tc.name == "file" && out.Model != "tiny" {
				t.Fatalf("served name = %q", out.Model)
			}
		})
	}
	// llama2's template raises on non-alternating roles: a 400 naming messages.
	ts := startService(t, "--model", stories(t), "--chat-template", "llama2")
	var env struct {
		Error struct{ Message, Param string }
	}
	resp := postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, &env)
	if resp.StatusCode != 400 || env.Error.Param != "messages" || !strings.Contains(env.Error.Message, "alternate") {
		t.Fatalf("got %d %+v", resp.StatusCode, env)
	}
}

func TestStartupErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	_ = os.WriteFile(bad, []byte("not a gguf file"), 0o644)
	for _, args := range [][]string{
		{},
		{"--model", "/no/such/file.gguf"},
		{"--model", bad},
		{"--model", t.TempDir()}, // no .gguf inside
		{"--model", stories(t), "--chat-template", "nope"},
		{"--model", stories(t), "--max-batch", "0"},
		{"--model", stories(t), "--gateway", "ftp://x"},
		{"--model", stories(t), "--model", stories(t)}, // duplicate id
	} {
		var cfg Config
		_, err := config.Load("test", &cfg, config.Source{Args: args})
		if err == nil {
			var svc *Service
			svc, err = New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if svc != nil {
				svc.Close()
			}
		}
		if err == nil {
			t.Errorf("%v: started", args)
		}
	}
}

// TestHeartbeat: the service registers with the gateway every ttl/3.
func TestHeartbeat(t *testing.T) {
	var mu sync.Mutex
	var beats []map[string]any
	var auth string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/admin/replicas" {
			http.NotFound(w, r)
			return
		}
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		beats = append(beats, b)
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer gw.Close()
	ts := startService(t, "--model", stories(t), "--gateway", gw.URL, "--heartbeat-ttl", "3s", "--gateway-admin-key", "adm")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(beats)
		mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(beats) < 2 {
		t.Fatalf("got %d heartbeats", len(beats))
	}
	if beats[0]["url"] != ts.URL || beats[0]["ttl_s"] != float64(3) || auth != "Bearer adm" {
		t.Fatalf("heartbeat %v auth %q, want url %s ttl 3", beats[0], auth, ts.URL)
	}
}

// stalled is a backend whose loop has work but stopped stepping: the only
// way to see /health catch a wedged engine, which the real one never is.
type stalled struct{ backend }

func (stalled) Stats() engine.Stats {
	return engine.Stats{Running: 1, Waiting: 2, Slots: 4, LastStep: time.Now().Add(-time.Hour), Steps: 10}
}

func TestHealthFailsWhenWedged(t *testing.T) {
	ts := startService(t, "--model", stories(t), "--wedge-timeout", "5s")
	get := func() (int, string) {
		resp, err := http.Get(ts.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 {
		t.Fatalf("healthy service: %d %s", code, body)
	}
	m := ts.svc.models[0]
	real := m.b
	m.b = stalled{real}
	defer func() { m.b = real }()
	if code, body := get(); code != 503 || !strings.Contains(body, "no progress") {
		t.Fatalf("wedged engine: %d %s", code, body)
	}
}
