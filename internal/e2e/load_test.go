package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Promise: load beyond capacity is refused early, not queued without
// bound. With one replica of 2 slots and a queue of 4, 24 concurrent
// clients get only 200s and 429/503s; every refusal carries Retry-After;
// the replica never holds more than 2+4 requests; admitted requests' p99
// latency stays under 5 s; and the gateway's goroutines stay bounded.
func TestBackpressure(t *testing.T) {
	const slots, queue = 2, 4
	s := StartStack(t, StackOptions{Replicas: 1, ModelArgs: []string{"--max-batch", itoa(slots), "--max-queue", itoa(queue)}})
	c := newClient(60 * time.Second)
	body := completionBody(s.Model, 64, false)
	var noRetryAfter, other atomic.Int64
	do := func(ctx context.Context, _ int) outcome {
		start := time.Now()
		code, hdr, b, err := post(ctx, c, s.Gateway.URL+"/v1/completions", body)
		o := outcome{code: code, err: err, latency: time.Since(start)}
		switch {
		case err != nil:
		case code == 429 || code == 503:
			if hdr.Get("Retry-After") == "" {
				noRetryAfter.Add(1)
			}
		case code != 200:
			other.Add(1)
			o.err = errorf("status %d: %.200s", code, b)
		}
		return o
	}
	// Sample the replica's queue and the gateway's goroutines meanwhile.
	var maxAdmitted, maxGoroutines float64
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sampleCtx.Err() == nil {
			if m, err := scrape(s.Replicas[0].URL + "/metrics"); err == nil {
				// Admitted = running + waiting, bounded by slots + queue (a
				// request between the admission semaphore and the engine's
				// first step counts as waiting).
				maxAdmitted = max(maxAdmitted, sumSeries(m, "vllm:num_requests_waiting")+sumSeries(m, "vllm:num_requests_running"))
			}
			maxGoroutines = max(maxGoroutines, metric(s.Gateway.URL, "go_goroutines"))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res := runLoad(ctx, 24, 60*time.Second, do)
	stopSampling()
	wg.Wait()
	p50, p99 := res.percentile(0.5), res.percentile(0.99)
	refused := res.Codes[429] + res.Codes[503]
	t.Logf("overload 24 clients on %d slots + %d queue: %s; refused=%d (no Retry-After: %d); admitted p50=%s p99=%s; max replica running+waiting=%.0f; max gateway goroutines=%.0f",
		slots, queue, res, refused, noRetryAfter.Load(), p50, p99, maxAdmitted, maxGoroutines)
	if res.OK == 0 || refused == 0 {
		t.Fatalf("want both admitted and refused requests under overload: %s", res)
	}
	if other.Load() != 0 || len(res.Errors) != 0 {
		t.Fatalf("statuses other than 200/429/503 or transport errors: %s", res)
	}
	if noRetryAfter.Load() != 0 {
		t.Errorf("%d refusals without Retry-After", noRetryAfter.Load())
	}
	// Admission bounds running+waiting at slots+queue; the engine may still
	// count a finishing sequence as running for a step after its admission
	// slot went to the next request, so allow one more batch of those.
	if maxAdmitted > slots+queue+slots {
		t.Errorf("replica held %.0f requests (running+waiting), above --max-batch + --max-queue (+ finishing) = %d", maxAdmitted, slots+queue+slots)
	}
	if p99 > 5*time.Second {
		t.Errorf("admitted p99 latency %s, want <= 5s", p99)
	}
	if maxGoroutines > 400 {
		t.Errorf("gateway reached %.0f goroutines under a 24-client load", maxGoroutines)
	}
	s.assertAllHealthy(t)
}

// footprint is one service's RSS and goroutine count.
type footprint struct {
	rssKB      int64
	goroutines float64
}

func (s *Stack) footprints(t *testing.T) map[string]footprint {
	out := map[string]footprint{}
	for _, p := range append([]*Proc{s.Gateway, s.Cache, s.Storage}, s.Replicas...) {
		if p == nil {
			continue
		}
		rss, err := rssKB(p.Pid())
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		out[p.Name] = footprint{rss, metric(p.URL, "go_goroutines")}
	}
	return out
}

// Promise: a bounded soak (warm-up, then ~90 s of mixed traffic: plain,
// streamed, cacheable, and streams the client abandons mid-way) leaves
// every service's RSS and goroutine count within 10% of their post-warm-up
// values: nothing leaks per request.
func TestSoak(t *testing.T) {
	s := StartStack(t, StackOptions{Replicas: 2, Cache: true, Storage: true})
	c := newClient(60 * time.Second)
	det := []byte(`{"model":"` + s.Model + `","prompt":"The dog","max_tokens":12,"temperature":0}`)
	storageDo := func(ctx context.Context) outcome {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Storage.URL+"/llmo/v1/models", nil)
		resp, err := c.Do(req)
		if err != nil {
			return outcome{err: err}
		}
		resp.Body.Close()
		return outcome{code: resp.StatusCode, latency: time.Since(start)}
	}
	var abandoned atomic.Int64
	do := func(ctx context.Context, w int) outcome {
		start := time.Now()
		var code int
		var err error
		switch w % 5 {
		case 4: // storage reads, paced
			time.Sleep(20 * time.Millisecond)
			return storageDo(ctx)
		case 0:
			code, _, _, err = post(ctx, c, s.Gateway.URL+"/v1/completions", completionBody(s.Model, 24, false))
		case 1:
			code, _, _, err = post(ctx, c, s.Gateway.URL+"/v1/completions", det)
		case 2:
			code, _, _, err = post(ctx, c, s.Gateway.URL+"/v1/completions", completionBody(s.Model, 24, true))
		case 3: // a stream the client abandons after the first event
			code, err = abandonStream(ctx, c, s.Gateway.URL+"/v1/completions", completionBody(s.Model, 400, true))
			abandoned.Add(1)
		}
		return outcome{code: code, err: err, latency: time.Since(start)}
	}
	phase := func(d time.Duration) *loadResult {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return runLoad(ctx, 5, 60*time.Second, do)
	}
	settle := func() {
		// Idle keep-alive connections each hold a server goroutine: close
		// ours, and let abandoned streams wind down.
		c.CloseIdleConnections()
		time.Sleep(3 * time.Second)
	}
	warm := phase(15 * time.Second)
	settle()
	before := s.footprints(t)
	soak := phase(90 * time.Second)
	settle()
	after := s.footprints(t)
	t.Logf("soak: warm-up %s; soak %s; abandoned streams=%d", warm, soak, abandoned.Load())
	if soak.Failed != 0 {
		t.Errorf("failed requests during the soak: %s", soak)
	}
	for name, b := range before {
		a := after[name]
		rssGrowth := float64(a.rssKB-b.rssKB) / float64(b.rssKB)
		gGrowth := (a.goroutines - b.goroutines) / b.goroutines
		t.Logf("%-8s RSS %6d kB -> %6d kB (%+.1f%%)  goroutines %3.0f -> %3.0f (%+.1f%%)",
			name, b.rssKB, a.rssKB, 100*rssGrowth, b.goroutines, a.goroutines, 100*gGrowth)
		// A Go process of ~25 MB moves by a few MB between GC cycles
		// (GOGC=100), so growth must also exceed 3 MB to count.
		if rssGrowth > 0.10 && a.rssKB-b.rssKB > 3<<10 {
			t.Errorf("%s RSS grew %.1f%% during the soak, want < 10%%", name, 100*rssGrowth)
		}
		// One keep-alive connection (the gateway's health check of the
		// storage or cache service, say) is one goroutine, 10% of a service
		// running ten: growth must also exceed 2 goroutines to count.
		if gGrowth > 0.10 && a.goroutines-b.goroutines > 2 {
			t.Errorf("%s goroutines grew %.1f%% during the soak, want < 10%%", name, 100*gGrowth)
		}
	}
}

// abandonStream opens a stream, reads its first event and hangs up.
func abandonStream(ctx context.Context, c *http.Client, url string, body []byte) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			return resp.StatusCode, nil
		}
	}
	return resp.StatusCode, fmt.Errorf("stream ended before its first event: %v", sc.Err())
}
