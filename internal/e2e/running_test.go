package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// smoke checks a running gateway at base: health, models, a completion,
// a streamed completion, an Ollama call and a bad request. key may be empty.
func smoke(t *testing.T, base, key string) {
	t.Helper()
	c := &http.Client{Timeout: 60 * time.Second}
	var hdr []string
	if key != "" {
		hdr = []string{"Authorization", "Bearer " + key}
	}
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	if code, b := get("/api/health"); code != 200 || !bytes.Contains(b, []byte(`"status"`)) {
		t.Fatalf("/api/health: %d %s", code, b)
	}
	model := os.Getenv("LLMO_E2E_MODEL")
	if model == "" {
		code, b := get("/v1/models")
		if code != 200 {
			t.Fatalf("/v1/models: %d %s", code, b)
		}
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := jsonDecode(bytes.NewReader(b), &list); err != nil || len(list.Data) == 0 {
			t.Fatalf("/v1/models lists nothing: %v %s", err, b)
		}
		model = list.Data[0].ID
	}
	ctx := context.Background()
	if code, _, b, err := post(ctx, c, base+"/v1/completions", completionBody(model, 8, false), hdr...); err != nil || code != 200 || !bytes.Contains(b, []byte(`"choices"`)) {
		t.Fatalf("completion: %d %v %s", code, err, b)
	}
	if code, _, b, err := post(ctx, c, base+"/v1/completions", completionBody(model, 8, true), hdr...); err != nil || code != 200 || !bytes.Contains(b, []byte("data: [DONE]")) {
		t.Fatalf("streamed completion: %d %v %s", code, err, b)
	}
	if code, _, b, err := post(ctx, c, base+"/api/generate", []byte(fmt.Sprintf(`{"model":%q,"prompt":"Hi","raw":true,"stream":false,"options":{"num_predict":4}}`, model)), hdr...); err != nil || code != 200 {
		t.Fatalf("ollama generate: %d %v %s", code, err, b)
	}
	if code, _, b, err := post(ctx, c, base+"/v1/completions", []byte(`{"model":`), hdr...); err != nil || code != 400 {
		t.Fatalf("truncated JSON: %d %v %s, want 400", code, err, b)
	}
}

// TestRunningStack smoke-tests a stack that is already running at
// LLMO_E2E_URL (with LLMO_E2E_API_KEY when auth is on); it skips when the
// variable is unset, under CI too, because CI starts its own stacks in the
// other tests. ./run_microservices.sh test runs it against Docker Compose.
func TestRunningStack(t *testing.T) {
	base := strings.TrimRight(os.Getenv("LLMO_E2E_URL"), "/")
	if base == "" {
		t.Skip("LLMO_E2E_URL is not set; nothing running to test")
	}
	smoke(t, base, os.Getenv("LLMO_E2E_API_KEY"))
}

// Promise: `llmo up` starts the whole stack (ports P, P+2, P+3, P+10+i),
// restarts a replica killed with -9, and on SIGTERM stops every child: no
// process survives it.
func TestUpStack(t *testing.T) {
	h := NewHarness(t)
	port := freePortRange(t, 12)
	up := h.Spawn(&Proc{Name: "llmo-up", Port: port, Args: []string{"up", "--port", itoa(port), "--replicas", "2",
		"--model", testenv.Model(t, "stories260K.gguf"), "--dashboard-port", "0", "--data-dir", h.Dir + "/data", "--threads", "1"}})
	// The supervisor puts each child in its own process group, so the
	// harness's group kill would miss them if the test stops early.
	t.Cleanup(func() {
		if !up.Running() {
			return
		}
		kids := childrenOf(up.Pid())
		up.Kill()
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	})
	if err := up.WaitReady(120 * time.Second); err != nil {
		t.Fatalf("llmo up: %v\n%s", err, tail(up.Output(), 40))
	}
	s := &Stack{Harness: h, Gateway: up, Model: "stories260K"}
	s.WaitHealthy(t, 2, 30*time.Second)
	smoke(t, up.URL, "")
	for _, off := range []int{2, 3, 10, 11} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", port+off))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("port %d+%d not ready: %v", port, off, err)
		}
		resp.Body.Close()
	}
	kids := childrenOf(up.Pid())
	if len(kids) != 5 {
		t.Fatalf("llmo up has %d children, want 5 (storage, cache, 2 replicas, gateway): %v", len(kids), kids)
	}
	// kill -9 of replica 1: the supervisor restarts it.
	var victim int
	for _, k := range kids {
		if strings.Contains(cmdline(k), "--port "+itoa(port+10)) {
			victim = k
		}
	}
	if victim == 0 {
		t.Fatalf("no child serves port %d: %v", port+10, kids)
	}
	killed := time.Now()
	_ = syscall.Kill(victim, syscall.SIGKILL)
	// The supervisor starts a new process on the same port.
	var restarted int
	for time.Since(killed) < 30*time.Second && restarted == 0 {
		for _, k := range childrenOf(up.Pid()) {
			if k != victim && strings.Contains(cmdline(k), "--port "+itoa(port+10)) {
				restarted = k
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if restarted == 0 {
		t.Fatalf("replica on port %d was not restarted within 30s", port+10)
	}
	for time.Since(killed) < 30*time.Second {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", port+10)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.WaitHealthy(t, 2, 30*time.Second)
	smoke(t, up.URL, "")
	t.Logf("llmo up: replica killed with -9 was restarted and routable again after %s", time.Since(killed).Round(time.Millisecond))
	all := childrenOf(up.Pid())
	if !up.Stop(60 * time.Second) {
		t.Fatalf("llmo up did not stop within 60s of SIGTERM")
	}
	if err := up.ExitErr(); err != nil {
		t.Errorf("llmo up exited with %v after SIGTERM", err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, k := range append(all, kids...) {
		if err := syscall.Kill(k, 0); err == nil && !isZombie(k) {
			t.Errorf("child %d (%s) survived llmo up's SIGTERM", k, cmdline(k))
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// freePortRange finds P such that P..P+n-1 are free now. It searches below
// the kernel's ephemeral range (32768 and up on Linux), where outgoing
// connections and other tests' FreePort calls keep taking ports.
func freePortRange(t *testing.T, n int) int {
	for try := 0; try < 200; try++ {
		p := 20000 + rand.IntN(12000-n)
		ok := true
		for i := 0; i < n; i++ {
			if !portFree(p + i) {
				ok = false
				break
			}
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}
