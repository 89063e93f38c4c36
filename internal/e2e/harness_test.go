package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// The harness runs each service as its own `llmo serve ...` process in its
// own process group, so a scenario can signal one of them (kill -9,
// SIGSTOP, SIGTERM) and the cleanup can kill the whole group. Cleanup then
// checks that no process of any group it ever started is still alive.

// Harness owns the processes of one test.
type Harness struct {
	t   testing.TB
	Bin string // the llmo binary
	Dir string // working directory of every child (no stray .env is read)

	mu    sync.Mutex
	procs []*Proc
}

// Proc is one service process; Restart starts it again on the same port.
type Proc struct {
	Name  string
	Args  []string // after the binary
	Env   []string // KEY=VALUE added to a scrubbed environment
	Port  int
	URL   string // base URL, http or https
	Ready string // path polled for 200 (default /ready)

	h      *Harness
	client *http.Client // for readiness polls (TLS-aware when set)

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error
	pgids  []int // every process group started, checked at cleanup
	out    logBuf
	starts int
}

// logBuf collects a process's output across restarts.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// NewHarness builds the binary and registers the cleanup that kills every
// process group and asserts none survives.
func NewHarness(t testing.TB) *Harness {
	t.Helper()
	bin := os.Getenv("LLMO_E2E_BIN") // a prebuilt binary, for iterating on the suite
	if bin == "" {
		bin = testenv.Llmo(t)
	}
	h := &Harness{t: t, Bin: bin, Dir: t.TempDir()}
	t.Cleanup(h.cleanup)
	return h
}

// scrubbedEnv is the test's environment without the variables the services
// read, so a developer's shell (API_PORT, LLMO_AUTH, ...) cannot change a
// scenario.
func scrubbedEnv() []string {
	prefixes := []string{"LLMO_", "API_", "MODEL_", "CACHE_", "STORAGE_", "DASHBOARD_", "REDIS_", "TLS_", "S3_",
		"LOG_", "MAX_", "USE_INT8", "CTX_LEN", "CHAT_TEMPLATE", "SERVED_MODEL_NAME", "REQUEST_TIMEOUT", "WEDGE_TIMEOUT",
		"ADVERTISE_URL", "HEARTBEAT_TTL", "DRAIN_TIMEOUT", "READ_HEADER_TIMEOUT", "IDLE_TIMEOUT", "OTEL_", "HF_TOKEN", "SSL_CERT"}
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// Spawn starts p without waiting for it to be ready.
func (h *Harness) Spawn(p *Proc) *Proc {
	h.t.Helper()
	if p.h == nil {
		p.h = h
		if p.Ready == "" {
			p.Ready = "/ready"
		}
		if p.URL == "" && p.Port != 0 {
			p.URL = fmt.Sprintf("http://127.0.0.1:%d", p.Port)
		}
		if p.client == nil {
			p.client = &http.Client{Timeout: 2 * time.Second}
		}
		h.mu.Lock()
		h.procs = append(h.procs, p)
		h.mu.Unlock()
	}
	cmd := exec.Command(h.Bin, p.Args...)
	cmd.Dir = h.Dir
	cmd.Env = append(scrubbedEnv(), p.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.mu.Lock()
	p.starts++
	fmt.Fprintf(&p.out, "=== %s start #%d: llmo %s\n", p.Name, p.starts, strings.Join(p.Args, " "))
	p.mu.Unlock()
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("starting %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.pgids = append(p.pgids, cmd.Process.Pid)
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exit = err
		p.mu.Unlock()
		close(done)
	}()
	return p
}

// Start starts p and waits until it is ready.
func (h *Harness) Start(p *Proc) *Proc {
	h.t.Helper()
	h.Spawn(p)
	if err := p.WaitReady(90 * time.Second); err != nil {
		h.t.Fatalf("%s did not become ready: %v\n%s", p.Name, err, tail(p.Output(), 40))
	}
	return p
}

// WaitReady polls p's readiness path until it answers 200, p exits, or the
// timeout passes.
func (p *Proc) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !p.Running() {
			return fmt.Errorf("process exited: %v", p.ExitErr())
		}
		resp, err := p.client.Get(p.URL + p.Ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %s (last: %v)", timeout, last)
}

// Pid is the current process id (0 when never started).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the current incarnation is alive (a stopped
// process counts as running).
func (p *Proc) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// ExitErr is the current incarnation's exit error (nil: exit status 0 or
// still running).
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// Signal sends sig to p's process group.
func (p *Proc) Signal(sig syscall.Signal) {
	if pid := p.Pid(); pid != 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

// Wait waits up to timeout for the current incarnation to exit.
func (p *Proc) Wait(timeout time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill sends SIGKILL to the group and waits for the exit.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// Stop sends SIGTERM and waits up to timeout; it reports whether p exited.
func (p *Proc) Stop(timeout time.Duration) bool {
	p.Signal(syscall.SIGTERM)
	return p.Wait(timeout)
}

// Restart starts p again (same arguments and port) and waits until ready.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	if p.Running() {
		p.Kill()
	}
	p.h.Start(p)
}

// Output is everything p printed, across restarts.
func (p *Proc) Output() string { return p.out.String() }

func (h *Harness) cleanup() {
	h.mu.Lock()
	procs := append([]*Proc(nil), h.procs...)
	h.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, p := range procs {
		p.mu.Lock()
		pgids := append([]int(nil), p.pgids...)
		p.mu.Unlock()
		for _, g := range pgids {
			if survivors := groupMembers(g); len(survivors) > 0 {
				_ = syscall.Kill(-g, syscall.SIGKILL)
				h.t.Errorf("%s: process group %d still has live processes after cleanup: %v", p.Name, g, survivors)
			}
		}
		if h.t.Failed() {
			h.t.Logf("--- output of %s (last 60 lines)\n%s", p.Name, tail(p.Output(), 60))
		}
	}
}

// groupMembers lists live (non-zombie) processes whose process group is pgid.
func groupMembers(pgid int) []int {
	return liveProcs(func(_, pgrp int) bool { return pgrp == pgid })
}

// childrenOf lists live processes whose parent is pid.
func childrenOf(pid int) []int {
	return liveProcs(func(ppid, _ int) bool { return ppid == pid })
}

// liveProcs lists the live (non-zombie) processes whose parent and process
// group, read from /proc/PID/stat, satisfy match.
func liveProcs(match func(ppid, pgrp int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if match(ppid, pgrp) {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
}

// rssKB is VmRSS of pid in kB.
func rssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- the stack

// StackOptions shapes a multi-process stack.
type StackOptions struct {
	Replicas    int      // model replicas (default 1)
	Model       string   // GGUF path (default stories260K.gguf)
	ModelArgs   []string // extra flags for every replica
	GatewayArgs []string // extra flags for the gateway
	GatewayEnv  []string
	Cache       bool // start the cache service and point the gateway at it
	Storage     bool // start the storage service
	StorageArgs []string
	StorageEnv  []string
	Dashboard   bool     // give the gateway a dashboard port
	CommonArgs  []string // service.Common flags given to every service
	CacheArgs   []string
}

// Stack is a running multi-process llmo.
type Stack struct {
	*Harness
	Gateway  *Proc
	Cache    *Proc
	Storage  *Proc
	Replicas []*Proc
	Model    string // model id clients use
	DashPort int
}

// modelID is the id the model service serves a file under.
func modelID(path string) string { return strings.TrimSuffix(filepath.Base(path), ".gguf") }

// StartStack starts storage and cache (when asked), the replicas, then the
// gateway, each health-gated, with fast failure detection suited to tests.
func StartStack(t testing.TB, o StackOptions) *Stack {
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Model == "" {
		o.Model = testenv.Model(t, "stories260K.gguf")
	}
	s := &Stack{Harness: NewHarness(t), Model: modelID(o.Model)}
	if o.Storage {
		s.Storage = s.StartStorage(append(o.CommonArgs, o.StorageArgs...), o.StorageEnv)
	}
	if o.Cache {
		port := testenv.FreePort(t)
		s.Cache = s.Spawn(&Proc{Name: "cache", Port: port, Args: append(append([]string{"serve", "cache", "--port", fmt.Sprint(port)}, o.CommonArgs...), o.CacheArgs...)})
	}
	for i := 0; i < o.Replicas; i++ {
		s.Replicas = append(s.Replicas, s.Spawn(s.replicaProc(i, o.Model, append(o.CommonArgs, o.ModelArgs...))))
	}
	for _, p := range append([]*Proc{s.Cache}, s.Replicas...) {
		if p != nil {
			if err := p.WaitReady(90 * time.Second); err != nil {
				t.Fatalf("%s not ready: %v\n%s", p.Name, err, tail(p.Output(), 40))
			}
		}
	}
	port := testenv.FreePort(t)
	args := []string{"serve", "gateway", "--port", fmt.Sprint(port),
		"--health-interval", "250ms", "--eject-after", "2", "--eject-time", "1s", "--connect-timeout", "1s"}
	if o.Dashboard {
		s.DashPort = testenv.FreePort(t)
		args = append(args, "--dashboard-port", fmt.Sprint(s.DashPort))
	} else {
		args = append(args, "--dashboard-port", "0")
	}
	for _, r := range s.Replicas {
		args = append(args, "--replica", r.URL)
	}
	if s.Cache != nil {
		args = append(args, "--cache", s.Cache.URL)
	}
	if s.Storage != nil {
		args = append(args, "--storage", s.Storage.URL)
	}
	args = append(append(args, o.CommonArgs...), o.GatewayArgs...)
	env := append([]string{"LLMO_AUTH=off"}, o.GatewayEnv...)
	s.Gateway = s.Start(&Proc{Name: "gateway", Port: port, Args: args, Env: env})
	s.WaitHealthy(t, o.Replicas, 30*time.Second)
	return s
}

func (s *Stack) replicaProc(i int, model string, extra []string) *Proc {
	port := testenv.FreePort(s.t)
	args := append([]string{"serve", "model", "--port", fmt.Sprint(port), "--model", model, "--threads", "1",
		"--drain-timeout", "20s"}, extra...)
	return &Proc{Name: fmt.Sprintf("model-%d", i+1), Port: port, Args: args}
}

// StartStorage starts a filesystem storage service under the harness dir.
func (h *Harness) StartStorage(extra, env []string) *Proc {
	port := testenv.FreePort(h.t)
	args := append([]string{"serve", "storage", "--port", fmt.Sprint(port), "--root", filepath.Join(h.Dir, fmt.Sprintf("storage-%d", port))}, extra...)
	return h.Start(&Proc{Name: "storage", Port: port, Args: args, Env: env})
}

// health is the part of GET /api/health the suite reads.
type health struct {
	Status string `json:"status"`
	Pools  []struct {
		Model    string `json:"model"`
		Healthy  int    `json:"healthy"`
		Replicas []struct {
			URL   string `json:"url"`
			State string `json:"state"`
		} `json:"replicas"`
	} `json:"pools"`
	Cache struct {
		State string `json:"state"`
	} `json:"cache"`
	Storage struct {
		State string `json:"state"`
	} `json:"storage"`
}

// Health reads the gateway's /api/health.
func (s *Stack) Health() (health, error) {
	var h health
	req, err := http.NewRequest(http.MethodGet, s.Gateway.URL+"/api/health", nil)
	if err != nil {
		return h, err
	}
	// With auth on, the topology is for key holders: use the admin key the
	// gateway was started with.
	for _, kv := range s.Gateway.Env {
		if k, ok := strings.CutPrefix(kv, "LLMO_ADMIN_KEY="); ok && k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return h, fmt.Errorf("/api/health: 401 (auth on and no admin key in the gateway's env)")
	}
	return h, jsonDecode(resp.Body, &h)
}

// healthyReplicas is the pool's healthy count for the stack's model.
func (s *Stack) healthyReplicas() int {
	h, err := s.Health()
	if err != nil {
		return -1
	}
	for _, p := range h.Pools {
		if p.Model == s.Model {
			return p.Healthy
		}
	}
	return 0
}

// WaitHealthy waits until the gateway counts n healthy replicas, and returns
// how long that took.
func (s *Stack) WaitHealthy(t testing.TB, n int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if s.healthyReplicas() == n {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h, _ := s.Health()
	t.Fatalf("gateway did not see %d healthy replicas within %s: %+v", n, timeout, h)
	return 0
}

// ---- metrics

// scrapeClient opens a fresh connection per scrape, so that scraping leaves
// no idle keep-alive connection (and its server goroutine) behind to skew
// goroutine counts.
var scrapeClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// scrape reads a Prometheus text endpoint into series -> value.
func scrape(url string) (map[string]float64, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// sumSeries sums every series of metric name whose labels contain all the
// given `k="v"` fragments.
func sumSeries(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// metric scrapes one summed value, or -1 when the scrape fails.
func metric(base, name string, labels ...string) float64 {
	m, err := scrape(base + "/metrics")
	if err != nil {
		return -1
	}
	return sumSeries(m, name, labels...)
}

// retries is the gateway's llmo_gateway_retries_total.
func (s *Stack) retries() float64 { return metric(s.Gateway.URL, "llmo_gateway_retries_total") }

// ---- requests

// completionBody is a small, non-deterministic (so never cached) completion.
func completionBody(model string, maxTokens int, stream bool) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":%d,"temperature":0.8,"stream":%t}`,
		model, maxTokens, stream))
}

// post sends a JSON POST and returns the status, headers and body.
func post(ctx context.Context, c *http.Client, url string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// newClient is a keep-alive client with a bounded pool, as a real client has.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 128,
		IdleConnTimeout: 30 * time.Second}}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func itoa(i int) string { return strconv.Itoa(i) }

// firstModel is the first id a server lists at /v1/models.
func firstModel(t testing.TB, base string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := jsonDecode(resp.Body, &list); err != nil || len(list.Data) == 0 {
		t.Fatalf("%s/v1/models: %v %+v", base, err, list)
	}
	return list.Data[0].ID
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
