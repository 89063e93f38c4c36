package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/tensor"
)

type benchConfig struct {
	Model        string `flag:"model" env:"MODEL_PATH" help:"GGUF model file"`
	Threads      int    `flag:"threads" env:"LLMO_THREADS" help:"compute threads (0 = all cores)"`
	PromptTokens int    `flag:"prompt-tokens" env:"LLMO_BENCH_PROMPT_TOKENS" default:"128" help:"prompt length for the prefill measurement"`
	GenTokens    int    `flag:"gen-tokens" env:"LLMO_BENCH_GEN_TOKENS" default:"128" help:"tokens to generate per stream"`
	Concurrency  int    `flag:"concurrency" env:"LLMO_BENCH_CONCURRENCY" default:"8" help:"concurrent streams for the aggregate measurement"`
	JSON         bool   `flag:"json" help:"print one JSON object"`
	Int8         bool   `flag:"int8" env:"USE_INT8" help:"quantize F32/F16/BF16 weights to Q8_0 at load"`
}

func (c *benchConfig) Validate() error {
	switch {
	case c.Model == "":
		return fmt.Errorf("--model is required (or MODEL_PATH)")
	case c.PromptTokens < 1 || c.GenTokens < 2:
		return fmt.Errorf("--prompt-tokens must be >= 1 and --gen-tokens >= 2")
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("--concurrency must be between 1 and 256")
	case c.Threads < 0:
		return fmt.Errorf("--threads must not be negative")
	}
	return nil
}

func init() {
	config.Register(benchConfig{})
	Register("bench", runBench)
}

// benchResult is the --json object; the tok/s keys are DESIGN.md's.
type benchResult struct {
	Model          string  `json:"model"`
	Quant          string  `json:"quant"`
	Threads        int     `json:"threads"`
	Kernels        string  `json:"kernels"`
	PromptTokens   int     `json:"prompt_tokens"`
	GenTokens      int     `json:"gen_tokens"`
	Concurrency    int     `json:"concurrency"`
	PrefillTokS    float64 `json:"prefill_tok_s"`
	DecodeTokS     float64 `json:"decode_tok_s"`
	AggregateTokS  float64 `json:"aggregate_tok_s"`
	AggregateSpeed float64 `json:"aggregate_speedup"`
}

// runBench is `llmo bench`: prefill speed (one prompt of --prompt-tokens),
// single-stream decode speed (a 4-token prompt, --gen-tokens new tokens,
// greedy, timed from the first token to the last), and aggregate decode
// speed of --concurrency such streams submitted together through the
// continuous-batching scheduler (all generated tokens over the wall time).
func runBench(ctx context.Context, env *Env, args []string) error {
	var cfg benchConfig
	rest, err := LoadConfig(env, "bench", "llmo bench --model FILE [flags]", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return UsageError{fmt.Errorf("bench takes no arguments")}
	}
	m, err := engine.Load(cfg.Model, engine.Options{Threads: cfg.Threads, Int8: cfg.Int8, MaxBatch: cfg.Concurrency})
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()
	if cfg.PromptTokens >= info.CtxLen || 4+cfg.GenTokens > info.CtxLen {
		return UsageError{fmt.Errorf("prompt (%d) or 4+gen (%d) tokens do not fit the context of %d", cfg.PromptTokens, 4+cfg.GenTokens, info.CtxLen)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := engine.NewScheduler(m)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var progress atomic.Int64
	total := int64(cfg.PromptTokens + cfg.GenTokens + cfg.Concurrency*cfg.GenTokens)
	stopBar := startBar(env.Stderr, &progress, total)
	defer stopBar()

	r := rand.New(rand.NewPCG(7, 7))
	randomPrompt := func(n int) []int {
		p := make([]int, n)
		p[0] = info.BOS
		for i := 1; i < n; i++ {
			p[i] = 259 + r.IntN(max(info.VocabSize-259, 1)) // past the control and byte tokens
		}
		return p
	}
	res := benchResult{Model: info.Name, Quant: info.Quant, Threads: cfg.Threads, Kernels: tensor.SIMD,
		PromptTokens: cfg.PromptTokens, GenTokens: cfg.GenTokens, Concurrency: cfg.Concurrency}
	if res.Threads == 0 {
		res.Threads = -1 // all cores; printed as such
	}

	// Prefill: time to the first token of a long prompt.
	start := time.Now()
	if _, _, err := stream(ctx, s, randomPrompt(cfg.PromptTokens), 1, nil); err != nil {
		return err
	}
	res.PrefillTokS = float64(cfg.PromptTokens) / time.Since(start).Seconds()
	progress.Add(int64(cfg.PromptTokens))

	// Single-stream decode.
	first, last, err := stream(ctx, s, randomPrompt(4), cfg.GenTokens, &progress)
	if err != nil {
		return err
	}
	res.DecodeTokS = float64(cfg.GenTokens-1) / last.Sub(first).Seconds()

	// Aggregate decode with concurrent streams.
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Concurrency)
	start = time.Now()
	for range cfg.Concurrency {
		p := randomPrompt(4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := stream(ctx, s, p, cfg.GenTokens, &progress); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	res.AggregateTokS = float64(cfg.Concurrency*cfg.GenTokens) / time.Since(start).Seconds()
	res.AggregateSpeed = res.AggregateTokS / res.DecodeTokS
	stopBar()

	if cfg.JSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	threads := fmt.Sprint(cfg.Threads)
	if cfg.Threads == 0 {
		threads = "all"
	}
	fmt.Fprintf(env.Stdout, "model      %s (%s, %s kernels, %s threads)\n", info.Name, info.Quant, res.Kernels, threads)
	fmt.Fprintf(env.Stdout, "prefill    %8.1f tok/s  (%d-token prompt)\n", res.PrefillTokS, cfg.PromptTokens)
	fmt.Fprintf(env.Stdout, "decode     %8.1f tok/s  (1 stream, %d tokens)\n", res.DecodeTokS, cfg.GenTokens)
	fmt.Fprintf(env.Stdout, "aggregate  %8.1f tok/s  (%d streams, %.1fx single)\n", res.AggregateTokS, cfg.Concurrency, res.AggregateSpeed)
	return nil
}

// stream generates n tokens greedily (ignoring end-of-generation tokens)
// and returns when the first and the last token arrived.
func stream(ctx context.Context, s *engine.Scheduler, prompt []int, n int, progress *atomic.Int64) (first, last time.Time, err error) {
	ch, err := s.Submit(ctx, engine.Request{Prompt: prompt, MaxTokens: n, IgnoreEOS: true})
	if err != nil {
		return first, last, err
	}
	for ev := range ch {
		if ev.Err != nil {
			return first, last, ev.Err
		}
		if ev.Done {
			break
		}
		last = time.Now()
		if first.IsZero() {
			first = last
		}
		if progress != nil {
			progress.Add(1)
		}
	}
	return first, last, nil
}

// startBar draws a progress bar on w every 200ms until the returned stop
// function is called (which is safe to call twice).
func startBar(w io.Writer, done *atomic.Int64, total int64) func() {
	stop := make(chan struct{})
	var once sync.Once
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		drawn := false
		for {
			select {
			case <-stop:
				if drawn {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
				n := min(done.Load(), total)
				const width = 30
				fill := int(n * width / total)
				fmt.Fprintf(w, "\rbench [%s%s] %3d%%", strings.Repeat("#", fill), strings.Repeat(".", width-fill), n*100/total)
				drawn = true
			}
		}
	}()
	return func() { once.Do(func() { close(stop); <-finished }) }
}
