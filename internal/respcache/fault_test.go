package respcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/cache/cachetest"
	"github.com/llmo/llmo/internal/respcache"
	"github.com/llmo/llmo/internal/testenv"
)

// cacheProcess is `llmo serve cache` as a real child process.
type cacheProcess struct {
	t    testing.TB
	bin  string
	port int
	cmd  *exec.Cmd
	URL  string
}

func startCacheProcess(t testing.TB, extra ...string) *cacheProcess {
	t.Helper()
	p := &cacheProcess{t: t, bin: testenv.Llmo(t), port: testenv.FreePort(t)}
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", p.port)
	p.start(extra...)
	t.Cleanup(p.kill)
	return p
}

func (p *cacheProcess) start(extra ...string) {
	p.t.Helper()
	args := append([]string{"serve", "cache", "--port", strconv.Itoa(p.port), "--log-level", "warn"}, extra...)
	cmd := exec.Command(p.bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no stray CACHE_* or .env from the developer's shell
	cmd.Dir = p.t.TempDir()
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	waitFor(p.t, func() bool {
		resp, err := http.Get(p.URL + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (p *cacheProcess) kill() {
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// TestCacheKilledUnderLoad: clients keep sending requests through the layer
// while the cache dies (SIGKILL) and comes back. No client request may
// fail; /api/health's probe (Health) must report the outage; hits must
// resume once the cache is back.
func TestCacheKilledUnderLoad(t *testing.T) {
	type target struct {
		store   cache.Store
		kill    func()
		restart func()
	}
	cases := map[string]func(t *testing.T) target{
		"cache service process": func(t *testing.T) target {
			p := startCacheProcess(t)
			return target{cache.NewClient(p.URL, 100*time.Millisecond), p.kill, func() { p.start() }}
		},
		"cache service on redis, redis killed": func(t *testing.T) target {
			r := cachetest.StartRedis(t)
			p := startCacheProcess(t, "--redis", r.URL)
			return target{cache.NewClient(p.URL, 100*time.Millisecond), r.Kill, r.Start}
		},
		"redis in-process": func(t *testing.T) target {
			r := cachetest.StartRedis(t)
			s, err := cache.NewRedis(r.URL)
			if err != nil {
				t.Fatal(err)
			}
			return target{s, r.Kill, r.Start}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			tg := mk(t)
			s := newStack(t, tg.store, modelService(t), respcache.Config{Timeout: 100 * time.Millisecond})
			ctx := t.Context()
			if err := s.layer.Health(ctx); err != nil {
				t.Fatalf("Health with the cache up: %v", err)
			}
			var (
				ok, failed, hits atomic.Int64
				phase            atomic.Int32 // 0 up, 1 down, 2 back
				hitsBack         atomic.Int64
				firstErr         sync.Once
				stop             = make(chan struct{})
				wg               sync.WaitGroup
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := with(t, base, map[string]any{"max_tokens": 4, "messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("Tale %d", (w+i)%6)}}})
						if i%3 == 0 {
							body = with(t, body, map[string]any{"stream": true})
						}
						resp, err := http.Post(s.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
						if err != nil {
							failed.Add(1)
							firstErr.Do(func() { t.Errorf("request failed: %v", err) })
							continue
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						complete := err == nil && (strings.Contains(string(b), `"finish_reason":"`) || strings.Contains(string(b), "[DONE]"))
						if resp.StatusCode != 200 || !complete {
							failed.Add(1)
							firstErr.Do(func() { t.Errorf("request failed: %d %s", resp.StatusCode, b) })
							continue
						}
						ok.Add(1)
						if resp.Header.Get("X-Cache") == "HIT" {
							hits.Add(1)
							if phase.Load() == 2 {
								hitsBack.Add(1)
							}
						}
					}
				}()
			}
			waitFor(t, func() bool { return hits.Load() >= 20 })
			tg.kill()
			phase.Store(1)
			before := ok.Load()
			waitFor(t, func() bool { return ok.Load() >= before+20 })
			if err := s.layer.Health(ctx); err == nil {
				t.Error("Health reports ok while the cache is down")
			}
			tg.restart()
			phase.Store(2)
			waitFor(t, func() bool { return hitsBack.Load() >= 10 })
			close(stop)
			wg.Wait()
			if f := failed.Load(); f != 0 {
				t.Fatalf("%d of %d client requests failed", f, f+ok.Load())
			}
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			waitFor(t, func() bool { return s.layer.Health(hctx) == nil })
			t.Logf("%d requests, %d hits, 0 failures; hits resumed after restart", ok.Load(), hits.Load())
		})
	}
}

func TestHealthWhenCacheUnreachable(t *testing.T) {
	l, err := respcache.New(respcache.Config{Timeout: 50 * time.Millisecond}, cache.NewClient("http://"+freeAddr(t), 50*time.Millisecond), nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Health(t.Context()); err == nil {
		t.Fatal("Health ok with nothing listening")
	}
	disabled, _ := respcache.New(respcache.Config{}, nil, nil, quiet)
	if err := disabled.Health(t.Context()); err == nil {
		t.Fatal("Health ok for a disabled cache")
	}
}
