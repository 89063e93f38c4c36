package monitoringtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// stack is a running llmo deployment made of real processes: storage,
// cache, model replicas and a gateway (with its dashboard), each on a free
// loopback port.
type stack struct {
	API, Dashboard, Cache, Storage int
	Models                         []int
	Model                          string // the model id the replicas serve
	procs                          map[string]*proc
	env                            []string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// childEnv is the test's environment without anything that would configure
// llmo behind the flags' back.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "LLMO_"), strings.HasSuffix(k, "_PORT"), strings.HasPrefix(k, "OTEL_"),
			k == "MODEL_PATH", k == "USE_INT8", k == "REDIS_URL", k == "API_KEYS_FILE", k == "LOG_FORMAT", k == "LOG_LEVEL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startStack builds llmo and starts storage, cache, replicas model
// replicas of stories260K and a gateway routing to them.
func startStack(t *testing.T, replicas int) *stack {
	t.Helper()
	return startStackEnv(t, replicas, nil)
}

// startStackEnv is startStack with extra environment variables for every
// process (KEY=VALUE).
func startStackEnv(t *testing.T, replicas int, extraEnv []string) *stack {
	t.Helper()
	bin := testenv.Llmo(t)
	modelPath := testenv.Model(t, "stories260K.gguf")
	s := &stack{
		API: testenv.FreePort(t), Dashboard: testenv.FreePort(t), Cache: testenv.FreePort(t), Storage: testenv.FreePort(t),
		Model: "stories260K", procs: map[string]*proc{}, env: extraEnv,
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
		s.stopAll()
	})
	s.start(t, bin, dir, "storage", "serve", "storage", "--port", fmt.Sprint(s.Storage), "--root", filepath.Join(dir, "storage"))
	s.start(t, bin, dir, "cache", "serve", "cache", "--port", fmt.Sprint(s.Cache))
	var replicaArgs []string
	for i := range replicas {
		port := testenv.FreePort(t)
		s.Models = append(s.Models, port)
		s.start(t, bin, dir, fmt.Sprintf("model%d", i+1), "serve", "model", "--model", modelPath, "--port", fmt.Sprint(port),
			"--threads", "1", "--chat-template", "chatml")
		replicaArgs = append(replicaArgs, "--replica", fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	gwArgs := append([]string{"serve", "gateway", "--port", fmt.Sprint(s.API), "--dashboard-port", fmt.Sprint(s.Dashboard),
		"--cache", s.url(s.Cache), "--storage", s.url(s.Storage)}, replicaArgs...)
	s.start(t, bin, dir, "gateway", gwArgs...)

	for name, port := range map[string]int{"storage": s.Storage, "cache": s.Cache} {
		s.waitReady(t, name, port)
	}
	for i, port := range s.Models {
		s.waitReady(t, fmt.Sprintf("model%d", i+1), port)
	}
	s.waitReady(t, "gateway", s.API)
	// The gateway learns each replica's models from /v1/models; wait until
	// every replica is healthy in its pool and the cache and storage checks
	// have run (status "ok").
	s.eventually(t, 30*time.Second, "gateway status ok with every replica healthy", func() bool {
		h, err := s.health()
		if err != nil || h.Status != "ok" {
			return false
		}
		for _, p := range h.Pools {
			if p.Model == s.Model && p.Healthy == replicas {
				return true
			}
		}
		return false
	})
	return s
}

func (s *stack) url(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

func (s *stack) start(t *testing.T, bin, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // no stray .env
	// Auth is off unless a test turns it on through s.env (later entries win).
	cmd.Env = append(append(childEnv(), "LOG_LEVEL=info", "LLMO_AUTH=off"), s.env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.procs[name] = p
}

// kill ends a process at once (SIGKILL), as a crash or an OOM kill would.
func (s *stack) kill(t *testing.T, name string) {
	t.Helper()
	p := s.procs[name]
	if p == nil {
		t.Fatalf("no process %s", name)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (s *stack) stopAll() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func (s *stack) dumpLogs(t *testing.T) {
	names := make([]string, 0, len(s.procs))
	for n := range s.procs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out := s.procs[n].out.String()
		if len(out) > 4000 {
			out = "…" + out[len(out)-4000:]
		}
		t.Logf("---- %s log ----\n%s", n, out)
	}
}

func (s *stack) waitReady(t *testing.T, name string, port int) {
	t.Helper()
	p := s.procs[name]
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready:\n%s", name, p.out.String())
		default:
		}
		resp, err := http.Get(s.url(port) + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready on port %d after 60s:\n%s", name, port, p.out.String())
}

func (s *stack) eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// healthDoc is the part of GET /api/health the tests read.
type healthDoc struct {
	Status string `json:"status"`
	Pools  []struct {
		Model    string `json:"model"`
		Healthy  int    `json:"healthy"`
		Replicas []struct {
			URL   string `json:"url"`
			State string `json:"state"`
		} `json:"replicas"`
	} `json:"pools"`
}

func (s *stack) health() (*healthDoc, error) {
	req, err := http.NewRequest(http.MethodGet, s.url(s.API)+"/api/health", nil)
	if err != nil {
		return nil, err
	}
	// With auth on, the topology needs a key: use the stack's admin key.
	for _, kv := range s.env {
		if k, ok := strings.CutPrefix(kv, "LLMO_ADMIN_KEY="); ok && k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h healthDoc
	return &h, json.NewDecoder(resp.Body).Decode(&h)
}

// post sends a JSON request and reads the whole answer.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func do(t *testing.T, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// traffic sends the requests that make every service's counters and
// histograms exist: streamed and plain completions and chats through the
// gateway (twice, deterministic, so the response cache can hit), a bad
// request, cache-service reads and writes, and storage reads.
func (s *stack) traffic(t *testing.T) {
	t.Helper()
	gw := s.url(s.API)
	for i := range 2 {
		for _, stream := range []bool{true, false} {
			code, body := post(t, gw+"/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":12,"temperature":0,"stream":%v}`, s.Model, stream))
			if code != http.StatusOK {
				t.Fatalf("completion %d (stream %v): %d %s", i, stream, code, body)
			}
			code, body = post(t, gw+"/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":12,"temperature":0,"stream":%v}`, s.Model, stream))
			if code != http.StatusOK {
				t.Fatalf("chat %d (stream %v): %d %s", i, stream, code, body)
			}
		}
	}
	if code, _ := post(t, gw+"/v1/completions", `{"prompt":"no model"}`); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Errorf("request without a model: %d, want 400 or 404", code)
	}
	cache := s.url(s.Cache)
	if code := do(t, http.MethodPut, cache+"/v1/cache/monitoringtest/k1", "value"); code/100 != 2 {
		t.Errorf("cache PUT: %d", code)
	}
	_ = do(t, http.MethodGet, cache+"/v1/cache/monitoringtest/k1", "")
	_ = do(t, http.MethodGet, cache+"/v1/cache/monitoringtest/missing", "")
	st := s.url(s.Storage)
	_ = do(t, http.MethodGet, st+"/v2/", "")
	_ = do(t, http.MethodGet, st+"/llmo/v1/models", "")
	_ = do(t, http.MethodGet, st+"/v2/missing/manifests/latest", "")
}

// scrapeNames returns the metric family and sample names a service exports.
func scrapeNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, ok := strings.Cut(f, " "); ok {
				names[name] = true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// scrapeRaw returns a service's /metrics text.
func scrapeRaw(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
