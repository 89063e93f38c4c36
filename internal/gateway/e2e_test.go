package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// End-to-end: the real llmo binary, real model replicas serving
// stories260K, and gateways in front of them, all on loopback.

type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	args []string
	log  string
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logf := filepath.Join(t.TempDir(), name+".log")
	p := &proc{t: t, args: args, log: logf}
	p.run()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	return p
}

func (p *proc) run() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(testenv.Llmo(p.t), p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "LLMO_AUTH=off")
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait(); f.Close() }()
}

// kill sends SIGKILL: no drain, no goodbye.
func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		time.Sleep(50 * time.Millisecond)
	}
}

type replica struct {
	*proc
	url string
}

func startReplica(t *testing.T, model string, extra ...string) *replica {
	port := testenv.FreePort(t)
	args := append([]string{"serve", "model", "--model", model, "--port", strconv.Itoa(port), "--threads", "1", "--chat-template", "chatml",
		"--log-level", "warn"}, extra...)
	return &replica{proc: start(t, "replica-"+strconv.Itoa(port), args...), url: "http://127.0.0.1:" + strconv.Itoa(port)}
}

type gw struct {
	*proc
	url string
}

func startGateway(t *testing.T, balancer string, replicas ...string) *gw {
	port := testenv.FreePort(t)
	args := []string{"serve", "gateway", "--port", strconv.Itoa(port), "--dashboard-port", "0", "--auth", "off",
		"--balancer", balancer, "--health-interval", "200ms", "--eject-time", "1s", "--log-level", "warn"}
	for _, r := range replicas {
		args = append(args, "--replica", r)
	}
	return &gw{proc: start(t, "gateway-"+balancer+"-"+strconv.Itoa(port), args...), url: "http://127.0.0.1:" + strconv.Itoa(port)}
}

type healthDoc struct {
	Status string `json:"status"`
	Pools  []struct {
		Model    string `json:"model"`
		Healthy  int    `json:"healthy"`
		Replicas []struct {
			URL, State, Source string
		} `json:"replicas"`
	} `json:"pools"`
}

func (g *gw) health(t *testing.T) healthDoc {
	var h healthDoc
	resp, err := http.Get(g.url + "/api/health")
	if err != nil {
		return h
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h
}

// replicaState is the state /api/health gives url ("" when absent).
func (h healthDoc) replicaState(url string) string {
	for _, p := range h.Pools {
		for _, r := range p.Replicas {
			if r.URL == url {
				return r.State
			}
		}
	}
	return ""
}

func (g *gw) waitFor(t *testing.T, what string, timeout time.Duration, ok func(healthDoc) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := g.health(t)
		if ok(h) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last health: %+v", what, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *gw) waitHealthy(t *testing.T, model string, n int) {
	t.Helper()
	g.waitFor(t, fmt.Sprintf("%d healthy replicas of %s", n, model), 60*time.Second, func(h healthDoc) bool {
		for _, p := range h.Pools {
			if p.Model == model && p.Healthy == n {
				return true
			}
		}
		return false
	})
}

var upstreamLine = regexp.MustCompile(`^llmo_gateway_upstream_requests_total\{code="200",model="[^"]*",replica="([^"]+)"\} (\d+)`)

// served counts the successful upstream attempts per replica.
func (g *gw) served(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := upstreamLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			out[m[1]] += n
		}
	}
	return out
}

func diff(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

var client = &http.Client{Timeout: 60 * time.Second}

func complete(base, model, prompt string) (int, string, error) {
	body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":6,"temperature":0}`, model, prompt)
	resp, err := client.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

const model = "stories260K"

func TestE2EGatewayOverRealReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	path := testenv.Model(t, "stories260K.gguf")
	reps := []*replica{startReplica(t, path), startReplica(t, path), startReplica(t, path)}
	urls := []string{reps[0].url, reps[1].url, reps[2].url}
	ll := startGateway(t, "least-loaded", urls...)
	ll.waitHealthy(t, model, 3)

	t.Run("spread", func(t *testing.T) {
		before := ll.served(t)
		var wg sync.WaitGroup
		var fails atomic.Int32
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 12; i++ {
					if code, b, err := complete(ll.url, model, fmt.Sprintf("Once upon a time %d-%d", w, i)); code != 200 {
						t.Errorf("request: %d %v %.200s", code, err, b)
						fails.Add(1)
					}
				}
			}(w)
		}
		wg.Wait()
		d := diff(ll.served(t), before)
		t.Logf("least-loaded spread over replicas: %v", d)
		for _, u := range urls {
			if d[u] < 4 {
				t.Errorf("replica %s served %d of 36 requests", u, d[u])
			}
		}
	})

	t.Run("stream", func(t *testing.T) {
		body := `{"model":"stories260K","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Tell me a story"}]}`
		resp, err := client.Post(ll.url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := string(b)
		if resp.StatusCode != 200 || !strings.HasSuffix(strings.TrimSpace(s), "data: [DONE]") || strings.Contains(s, `"usage":{`) {
			t.Fatalf("stream: %d\n%s", resp.StatusCode, s)
		}
		if !strings.Contains(s, "chat.completion.chunk") {
			t.Fatalf("no chunks: %s", s)
		}
	})

	t.Run("prefix affinity across two gateways", func(t *testing.T) {
		// Two independent gateways with no shared state must send a prompt
		// to the same replica.
		pa, pb := startGateway(t, "prefix", urls...), startGateway(t, "prefix", urls...)
		pa.waitHealthy(t, model, 3)
		pb.waitHealthy(t, model, 3)
		owners := map[string]bool{}
		for i := 0; i < 4; i++ {
			prompt := fmt.Sprintf("The little dog number %d went to the park", i)
			ba, bb := pa.served(t), pb.served(t)
			for k := 0; k < 3; k++ {
				for _, g := range []*gw{pa, pb} {
					if code, b, err := complete(g.url, model, prompt); code != 200 {
						t.Fatalf("%d %v %s", code, err, b)
					}
				}
			}
			da, db := diff(pa.served(t), ba), diff(pb.served(t), bb)
			if len(da) != 1 || len(db) != 1 {
				t.Fatalf("prompt %d spread: gateway A %v, gateway B %v", i, da, db)
			}
			for u := range da {
				if db[u] != 3 {
					t.Fatalf("prompt %d: gateway A chose %v, gateway B %v", i, da, db)
				}
				owners[u] = true
			}
		}
		t.Logf("4 prompts owned by %d replicas", len(owners))
	})

	t.Run("slow replica gets less traffic", func(t *testing.T) {
		// One replica behind a proxy that adds 150ms to every completion.
		target, _ := url.Parse(reps[2].url)
		rp := httputil.NewSingleHostReverseProxy(target)
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v1/completions") || strings.HasPrefix(r.URL.Path, "/v1/chat") {
				time.Sleep(150 * time.Millisecond)
			}
			rp.ServeHTTP(w, r)
		}))
		defer slow.Close()
		g := startGateway(t, "least-loaded", reps[0].url, reps[1].url, slow.URL)
		g.waitHealthy(t, model, 3)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 15; i++ {
					if code, b, err := complete(g.url, model, fmt.Sprintf("A cat %d %d", w, i)); code != 200 {
						t.Errorf("%d %v %.200s", code, err, b)
					}
				}
			}(w)
		}
		wg.Wait()
		d := g.served(t)
		t.Logf("served with one slow replica: %v", d)
		if d[slow.URL]*2 > min(d[reps[0].url], d[reps[1].url]) {
			t.Fatalf("slow replica served %d; fast ones %d and %d", d[slow.URL], d[reps[0].url], d[reps[1].url])
		}
	})

	t.Run("kill -9 under load", func(t *testing.T) {
		victim := reps[0]
		ctx, cancel := context.WithCancel(context.Background())
		var ok, failed atomic.Int32
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					code, b, err := complete(ll.url, model, fmt.Sprintf("Lily had a %d %d", w, i))
					if code == 200 {
						ok.Add(1)
					} else {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %.300s", code, err, b))
					}
				}
			}(w)
		}
		time.Sleep(1500 * time.Millisecond)
		victim.kill()
		ll.waitFor(t, "the killed replica to leave rotation", 10*time.Second, func(h healthDoc) bool {
			s := h.replicaState(victim.url)
			return s == "ejected" || s == "unhealthy"
		})
		time.Sleep(1500 * time.Millisecond) // more load with the replica gone
		before := ll.served(t)
		victim.run() // restart on the same port
		ll.waitFor(t, "the restarted replica to be readmitted", 60*time.Second, func(h healthDoc) bool {
			return h.replicaState(victim.url) == "healthy"
		})
		time.Sleep(1500 * time.Millisecond)
		cancel()
		wg.Wait()
		after := ll.served(t)
		t.Logf("under kill -9: %d ok, %d failed; after readmission the victim served %d", ok.Load(), failed.Load(), after[victim.url]-before[victim.url])
		if failed.Load() != 0 {
			t.Fatalf("%d requests failed (first: %v)", failed.Load(), firstErr.Load())
		}
		if after[victim.url] <= before[victim.url] {
			t.Fatalf("readmitted replica got no traffic: before %v after %v", before, after)
		}
	})

	t.Run("self-registration", func(t *testing.T) {
		r := startReplica(t, path, "--gateway", ll.url, "--heartbeat-ttl", "3s")
		ll.waitFor(t, "the replica to register", 60*time.Second, func(h healthDoc) bool {
			for _, p := range h.Pools {
				for _, x := range p.Replicas {
					if x.URL == r.url && x.Source == "registered" && x.State == "healthy" {
						return true
					}
				}
			}
			return false
		})
		r.kill()
		ll.waitFor(t, "the lease to expire", 15*time.Second, func(h healthDoc) bool { return h.replicaState(r.url) == "" })
	})
}
