package modelsvc

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/llmo/llmo/api"
)

// TestChatStreamN: n=2 streamed chat gives two choices that each finish,
// with seeded sampling reproducible across calls.
func TestChatStreamN(t *testing.T) {
	ts := startService(t, "--model", stories(t), "--chat-template", "chatml", "--max-batch", "4")
	body := `{"messages":[{"role":"user","content":"Tell me a story"}],"n":2,"max_tokens":8,"temperature":1,"seed":42,"stream":true,"stream_options":{"include_usage":true}}`
	run := func() ([2]string, api.Usage) {
		resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("status %d content-type %q", resp.StatusCode, ct)
		}
		var texts [2]string
		var finished [2]bool
		var usage api.Usage
		done := false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if line == "data: [DONE]" {
				done = true
				continue
			}
			if !strings.HasPrefix(line, "data: ") {
				continue
			}
			var c api.ChatChunk
			if err := json.Unmarshal([]byte(line[6:]), &c); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") {
				t.Fatalf("bad chunk %s", line)
			}
			if c.Usage != nil {
				usage = *c.Usage
			}
			for _, ch := range c.Choices {
				texts[ch.Index] += ch.Delta.Content
				if ch.FinishReason != nil {
					finished[ch.Index] = true
				}
			}
		}
		if !done || !finished[0] || !finished[1] {
			t.Fatalf("done=%v finished=%v", done, finished)
		}
		return texts, usage
	}
	a, ua := run()
	b, _ := run()
	if a != b {
		t.Fatalf("seeded runs differ: %q vs %q", a, b)
	}
	if a[0] == a[1] {
		t.Fatalf("the two choices are identical: %q", a[0])
	}
	if ua.CompletionTokens != 16 || ua.PromptTokens == 0 || ua.TotalTokens != ua.PromptTokens+16 {
		t.Fatalf("usage %+v", ua)
	}
}

// TestRequestTimeout: a request that outlives --request-timeout is ended
// with a 504 (not streamed) or an error event (streamed), and its slot is
// freed.
func TestRequestTimeout(t *testing.T) {
	ts := startService(t, "--model", synth(t), "--request-timeout", "300ms", "--max-batch", "1")
	var env struct {
		Error struct{ Type, Message string }
	}
	resp := postJSON(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":200}`, &env)
	if resp.StatusCode != 504 || env.Error.Type != "timeout_error" {
		t.Fatalf("got %d %+v", resp.StatusCode, env)
	}
	resp2, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once","max_tokens":200,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc := bufio.NewScanner(resp2.Body)
	var last string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			last = sc.Text()
		}
	}
	if !strings.Contains(last, `"timeout_error"`) {
		t.Fatalf("stream did not end with a timeout error event: %q", last)
	}
	waitMetric(t, ts.URL, `vllm:num_requests_running{model_name="synth-15m-q8_0"}`, 0, 5e9)
}

// TestDrainingRefusesNewWork: once the drain hook has run, a request that
// still reaches the service (a kept-alive connection, or the monolith) gets
// 503 with Retry-After.
func TestDrainingRefusesNewWork(t *testing.T) {
	ts := startService(t, "--model", stories(t))
	ts.svc.draining.Store(true)
	var env struct{ Error struct{ Type string } }
	resp := postJSON(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":2}`, &env)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || env.Error.Type != "service_unavailable_error" {
		t.Fatalf("got %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), env)
	}
	if v := metricValue(t, ts.URL, `llmo_model_rejected_total{reason="draining"}`); v != 1 {
		t.Fatalf("draining rejections = %v", v)
	}
}
