package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/chattmpl"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/tokenizer"
)

type runConfig struct {
	Model       string  `flag:"model" env:"MODEL_PATH" help:"GGUF model file"`
	MaxTokens   int     `flag:"max-tokens" env:"LLMO_MAX_TOKENS" default:"256" help:"tokens to generate at most"`
	Temperature float64 `flag:"temperature" env:"LLMO_TEMPERATURE" default:"0.8" help:"sampling temperature; 0 is greedy"`
	TopK        int     `flag:"top-k" env:"LLMO_TOP_K" default:"40" help:"sample among the k most likely tokens (0 = all)"`
	TopP        float64 `flag:"top-p" env:"LLMO_TOP_P" default:"0.95" help:"nucleus sampling threshold"`
	Seed        int64   `flag:"seed" env:"LLMO_SEED" default:"-1" help:"random seed; -1 picks one"`
	Threads     int     `flag:"threads" env:"LLMO_THREADS" help:"compute threads (0 = all cores)"`
	Raw         bool    `flag:"raw" help:"no chat template: BOS + the prompt's tokens"`
	JSON        bool    `flag:"json" help:"print one JSON object {text, ids, prompt_ids, decode_tok_s}"`
	Int8        bool    `flag:"int8" env:"USE_INT8" help:"quantize F32/F16/BF16 weights to Q8_0 at load"`
}

func (c *runConfig) Validate() error {
	switch {
	case c.Model == "":
		return fmt.Errorf("--model is required (or MODEL_PATH)")
	case c.MaxTokens < 1:
		return fmt.Errorf("--max-tokens must be at least 1")
	case c.Temperature < 0:
		return fmt.Errorf("--temperature must not be negative")
	case c.Threads < 0:
		return fmt.Errorf("--threads must not be negative")
	}
	return nil
}

func init() {
	config.Register(runConfig{})
	Register("run", runRun)
}

// runOutput is the --json object of DESIGN.md. prompt_ids are the prompt's
// tokens after the BOS token the engine puts in front, as in the golden
// files.
type runOutput struct {
	Text       string  `json:"text"`
	IDs        []int   `json:"ids"`
	PromptIDs  []int   `json:"prompt_ids"`
	DecodeTokS float64 `json:"decode_tok_s"`
}

// runRun is `llmo run`: generate locally with the native engine, streaming
// text to stdout.
func runRun(ctx context.Context, env *Env, args []string) error {
	var cfg runConfig
	rest, err := LoadConfig(env, "run", "llmo run --model FILE [flags] PROMPT", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return UsageError{fmt.Errorf("run takes exactly one PROMPT argument (quote it)")}
	}
	m, err := engine.Load(cfg.Model, engine.Options{Threads: cfg.Threads, Int8: cfg.Int8, MaxBatch: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	prompt, err := promptIDs(m, rest[0], cfg.Raw)
	if err != nil {
		return err
	}
	ctxLen := m.Info().CtxLen
	if len(prompt) >= ctxLen {
		return errs.Param("prompt", "prompt has %d tokens; the context holds %d", len(prompt), ctxLen)
	}
	maxTokens := min(cfg.MaxTokens, ctxLen-len(prompt))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := engine.NewScheduler(m)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	req := engine.Request{Prompt: prompt, MaxTokens: maxTokens, Sampling: engine.Sampling{
		Temperature: cfg.Temperature, TopK: cfg.TopK, TopP: cfg.TopP, Seed: cfg.Seed, HasSeed: cfg.Seed >= 0,
	}}
	events, err := s.Submit(ctx, req)
	if err != nil {
		return err
	}
	out := runOutput{IDs: []int{}, PromptIDs: prompt}
	if len(prompt) > 0 && prompt[0] == m.Info().BOS {
		out.PromptIDs = prompt[1:]
	}
	var text strings.Builder
	var first, last time.Time
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if ev.Done {
			break
		}
		last = time.Now()
		if first.IsZero() {
			first = last
		}
		out.IDs = append(out.IDs, ev.Token)
		text.WriteString(ev.Text)
		if !cfg.JSON {
			fmt.Fprint(env.Stdout, ev.Text)
		}
	}
	if n := len(out.IDs); n > 1 {
		out.DecodeTokS = float64(n-1) / last.Sub(first).Seconds()
	}
	if cfg.JSON {
		out.Text = text.String()
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

// promptIDs tokenizes the prompt: BOS + its tokens with raw (or for models
// without a chat template), else the chat template's rendering of one user
// message.
func promptIDs(m *engine.Model, prompt string, raw bool) ([]int, error) {
	tok := m.Tokenizer()
	info := m.Info()
	if raw || info.ChatTemplate == "" {
		return tok.Encode(prompt, tokenizer.EncodeOptions{AddBOS: true}), nil
	}
	t, err := chattmpl.New(info.ChatTemplate)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "the model's chat template does not parse (use --raw)")
	}
	bos, eos := "", ""
	if info.BOS >= 0 {
		bos = tok.Piece(info.BOS)
	}
	if info.EOS >= 0 {
		eos = tok.Piece(info.EOS)
	}
	text, err := t.Render([]api.Message{{Role: "user", Content: api.Content(prompt)}}, true, bos, eos)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "rendering the chat template (use --raw)")
	}
	addBOS := tok.AddBOS() && (bos == "" || !strings.HasPrefix(text, bos))
	return tok.Encode(text, tokenizer.EncodeOptions{AddBOS: addBOS, ParseSpecial: true}), nil
}
