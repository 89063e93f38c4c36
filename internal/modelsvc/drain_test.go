package modelsvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// TestDrainOnSIGTERM runs the real binary, loads it with more requests
// than it has slots, sends SIGTERM, and checks that every accepted request
// (running or queued) completes in full, that new work is refused, and that
// the process exits cleanly.
func TestDrainOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.Llmo(t)
	model := synth(t)
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "model", "--model", model, "--port", fmt.Sprint(port),
		"--max-batch", "3", "--max-queue", "8", "--drain-timeout", "90s")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	waitReady(t, base)

	const maxTokens = 32
	type result struct {
		i      int
		code   int
		tokens int
		finish string
		err    error
	}
	results := make(chan result, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := i%2 == 1
			body := fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"temperature":0,"stream":%v,"stream_options":%s}`,
				maxTokens, stream, map[bool]string{true: `{"include_usage":true}`, false: "null"}[stream])
			resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				results <- result{i: i, err: err}
				return
			}
			defer resp.Body.Close()
			r := result{i: i, code: resp.StatusCode}
			if !stream {
				var out struct {
					Choices []struct {
						FinishReason string `json:"finish_reason"`
					} `json:"choices"`
					Usage struct {
						CompletionTokens int `json:"completion_tokens"`
					} `json:"usage"`
				}
				r.err = json.NewDecoder(resp.Body).Decode(&out)
				if len(out.Choices) == 1 {
					r.finish, r.tokens = out.Choices[0].FinishReason, out.Usage.CompletionTokens
				}
				results <- r
				return
			}
			sc := bufio.NewScanner(resp.Body)
			done := false
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "data: [DONE]":
					done = true
				case strings.HasPrefix(line, "data: "):
					var ch struct {
						Choices []struct {
							FinishReason *string `json:"finish_reason"`
						} `json:"choices"`
						Usage *struct {
							CompletionTokens int `json:"completion_tokens"`
						} `json:"usage"`
						Error any `json:"error"`
					}
					if err := json.Unmarshal([]byte(line[6:]), &ch); err != nil || ch.Error != nil {
						r.err = fmt.Errorf("bad event %q", line)
					}
					if len(ch.Choices) == 1 && ch.Choices[0].FinishReason != nil {
						r.finish = *ch.Choices[0].FinishReason
					}
					if ch.Usage != nil {
						r.tokens = ch.Usage.CompletionTokens
					}
				}
			}
			if !done && r.err == nil {
				r.err = fmt.Errorf("stream ended without [DONE]: %v", sc.Err())
			}
			results <- r
		}()
	}
	// Wait until the slots are full and the rest are queued, then SIGTERM.
	deadline := time.Now().Add(30 * time.Second)
	loaded := false
	for !loaded && time.Now().Before(deadline) {
		loaded = metricValueOr(t, base, `vllm:num_requests_running{model_name="synth-15m-q8_0"}`, 0) == 3 &&
			metricValueOr(t, base, `vllm:num_requests_waiting{model_name="synth-15m-q8_0"}`, 0) == 2
		time.Sleep(2 * time.Millisecond)
	}
	if !loaded {
		t.Fatal("never saw 3 running and 2 queued requests before SIGTERM")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New work is refused: the listener closes (connection refused) or,
	// in the instant before, the service answers 503.
	time.Sleep(200 * time.Millisecond)
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if resp, err := cl.Post(base+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":1}`)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("new request during drain got %d %s", resp.StatusCode, b)
		}
	}
	if resp, err := cl.Get(base + "/ready"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("/ready is 200 while draining")
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil || r.code != 200 || r.finish != "length" || r.tokens != maxTokens {
			t.Errorf("accepted request %d did not complete: %+v", r.i, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("exit: %v\n%s", exitErr, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("process did not exit after drain\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "draining") {
		t.Errorf("no drain in the log:\n%s", stderr.String())
	}
}
