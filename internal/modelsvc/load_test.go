package modelsvc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is one streamed request as a client saw it.
type loadResult struct {
	ttft   time.Duration
	tokens int
	err    error
}

// streamOnce sends one streamed completion and times its first token.
func streamOnce(client *http.Client, base, body string) loadResult {
	start := time.Now()
	resp, err := client.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return loadResult{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return loadResult{err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	var r loadResult
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: {") {
			continue
		}
		var ch struct {
			Choices []struct{ Text string } `json:"choices"`
			Usage   *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(line[6:]), &ch); err != nil {
			return loadResult{err: err}
		}
		if r.ttft == 0 && len(ch.Choices) > 0 && ch.Choices[0].Text != "" {
			r.ttft = time.Since(start)
		}
		if ch.Usage != nil {
			r.tokens = ch.Usage.CompletionTokens
		}
	}
	return r
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

// BenchmarkHTTPLoad is a small load generator over HTTP: streamed
// completions of 64 tokens on synth-15m-q8_0 at concurrency 1, 4 and 16.
// Each b.N is one request. It reports aggregate generated tokens per
// second and p50/p99 time to first token as the client saw them:
//
//	go test -run '^$' -bench HTTPLoad -benchtime 48x ./internal/modelsvc
func BenchmarkHTTPLoad(b *testing.B) {
	ts := startService(b, "--model", synth(b), "--max-batch", "16", "--max-queue", "64")
	body := `{"prompt":"Once upon a time there was a little robot who lived in a big city","max_tokens":64,"temperature":0.8,"seed":1,"stream":true,"stream_options":{"include_usage":true}}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			var next atomic.Int64
			var mu sync.Mutex
			var ttfts []time.Duration
			var tokens int
			var failed error
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						r := streamOnce(client, ts.URL, body)
						mu.Lock()
						if r.err != nil {
							failed = r.err
						}
						ttfts = append(ttfts, r.ttft)
						tokens += r.tokens
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
			b.ReportMetric(float64(tokens)/elapsed.Seconds(), "tok/s")
			b.ReportMetric(float64(percentile(ttfts, 0.5).Microseconds())/1000, "ttft_p50_ms")
			b.ReportMetric(float64(percentile(ttfts, 0.99).Microseconds())/1000, "ttft_p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
