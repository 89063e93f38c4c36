package modelsvc

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

func synth(t testing.TB) string { return testenv.Model(t, "synth-15m-q8_0.gguf") }

// openStream starts a streamed completion and returns once its first token
// has arrived, with a func that hangs up.
func openStream(t *testing.T, base string, maxTokens int) (hangUp func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"prompt":"Once upon a time","max_tokens":` + itoa(maxTokens) + `,"stream":true}`
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: {") && strings.Contains(sc.Text(), `"text":"`) && !strings.Contains(sc.Text(), `"text":""`) {
			break
		}
	}
	return func() { cancel(); resp.Body.Close() }
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// waitMetric polls a series until it equals want.
func waitMetric(t *testing.T, base, series string, want float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got float64
	for time.Now().Before(deadline) {
		if got = metricValueOr(t, base, series, -1); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s = %v after %s, want %v", series, got, within, want)
}

// TestDisconnectFreesSlot: with one slot, a streaming client that hangs up
// mid-stream frees it at once; the running gauge drops and the next request
// starts without waiting for the abandoned one's tokens.
func TestDisconnectFreesSlot(t *testing.T) {
	ts := startService(t, "--model", synth(t), "--max-batch", "1", "--max-queue", "4")
	running := `vllm:num_requests_running{model_name="synth-15m-q8_0"}`
	aborted := `vllm:request_success_total{finished_reason="abort",model_name="synth-15m-q8_0"}`
	hangUp := openStream(t, ts.URL, 200) // far longer than this test runs
	waitMetric(t, ts.URL, running, 1, 5*time.Second)

	// A second request queues behind the first (one slot).
	type result struct {
		code int
		took time.Duration
	}
	next := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hello","max_tokens":2}`))
		if err != nil {
			next <- result{code: -1}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		next <- result{resp.StatusCode, time.Since(start)}
	}()
	waitMetric(t, ts.URL, `vllm:num_requests_waiting{model_name="synth-15m-q8_0"}`, 1, 5*time.Second)
	select {
	case r := <-next:
		t.Fatalf("queued request finished before the slot was freed: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}

	hungUp := time.Now()
	hangUp()
	r := <-next
	if r.code != 200 {
		t.Fatalf("queued request got %d", r.code)
	}
	if wait := time.Since(hungUp); wait > 5*time.Second {
		t.Fatalf("queued request took %s after the hang-up", wait)
	}
	waitMetric(t, ts.URL, running, 0, 5*time.Second)
	waitMetric(t, ts.URL, aborted, 1, 5*time.Second)
}

// TestQueueFull: with one slot and a queue of one, a third request is
// refused at once with 429 and Retry-After; a queued client that gives up
// leaves the queue.
func TestQueueFull(t *testing.T) {
	ts := startService(t, "--model", synth(t), "--max-batch", "1", "--max-queue", "1")
	hangUp := openStream(t, ts.URL, 200)
	defer hangUp()
	waiting := `vllm:num_requests_waiting{model_name="synth-15m-q8_0"}`

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", strings.NewReader(`{"prompt":"Hi","max_tokens":2}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		queued <- err
	}()
	waitMetric(t, ts.URL, waiting, 1, 5*time.Second)

	start := time.Now()
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Chat without a template is a 400 before admission; completions hit the queue.
	resp = postJSON(t, ts.URL+"/v1/completions", `{"prompt":"Hi","max_tokens":2}`, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After=%q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("429 took %s; it should not wait", took)
	}
	if v := metricValue(t, ts.URL, `llmo_model_rejected_total{reason="queue_full"}`); v != 1 {
		t.Fatalf("queue_full rejections = %v", v)
	}
	cancel()
	<-queued
	waitMetric(t, ts.URL, waiting, 0, 5*time.Second)
}
