package modelsvc

import (
	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/errs"
)

// Limits on request parameters beyond the ranges OpenAI documents.
const (
	maxStops       = 16
	maxStopLen     = 256
	maxTopLogprobs = 20
	maxPrompts     = 64 // prompts in one /v1/completions or inputs in one /v1/embeddings call
)

// genParams is a validated generation request, before the prompt is known.
type genParams struct {
	maxTokens    int // 0 = up to the context
	sampling     engine.Sampling
	stop         []string
	n            int
	logprobs     bool
	topLogprobs  int
	stream       bool
	includeUsage bool
}

// parseSampling checks the parameters shared by chat and completions and
// names the first one that is wrong.
func parseSampling(p *api.SamplingParams, ctxLen int) (genParams, error) {
	g := genParams{n: 1, stream: p.Stream}
	g.sampling.Temperature = 1
	g.sampling.TopP = 1
	if p.StreamOptions != nil {
		if !p.Stream {
			return g, errs.Param("stream_options", "stream_options is only allowed when stream is true")
		}
		g.includeUsage = p.StreamOptions.IncludeUsage
	}
	maxTok, name := p.MaxTokens, "max_tokens"
	if p.MaxCompletionTokens != nil {
		maxTok, name = p.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTok != nil {
		switch {
		case *maxTok < 1:
			return g, errs.Param(name, "%s must be at least 1, got %d", name, *maxTok)
		case *maxTok >= ctxLen:
			return g, errs.Param(name, "%s=%d does not fit in the model's context of %d tokens", name, *maxTok, ctxLen)
		}
		g.maxTokens = *maxTok
	}
	if t := p.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return g, errs.Param("temperature", "temperature must be between 0 and 2, got %g", *t)
		}
		g.sampling.Temperature = *t
	}
	if v := p.TopP; v != nil {
		if *v <= 0 || *v > 1 {
			return g, errs.Param("top_p", "top_p must be in (0, 1], got %g", *v)
		}
		g.sampling.TopP = *v
	}
	if v := p.TopK; v != nil {
		if *v < -1 {
			return g, errs.Param("top_k", "top_k must be -1 (off), 0 (off) or positive, got %d", *v)
		}
		if *v > 0 {
			g.sampling.TopK = *v
		}
	}
	if v := p.MinP; v != nil {
		if *v < 0 || *v > 1 {
			return g, errs.Param("min_p", "min_p must be between 0 and 1, got %g", *v)
		}
		g.sampling.MinP = *v
	}
	for _, pen := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"presence_penalty", p.PresencePenalty, &g.sampling.PresencePenalty}, {"frequency_penalty", p.FrequencyPenalty, &g.sampling.FrequencyPenalty}} {
		if pen.v == nil {
			continue
		}
		if *pen.v < -2 || *pen.v > 2 {
			return g, errs.Param(pen.name, "%s must be between -2 and 2, got %g", pen.name, *pen.v)
		}
		*pen.dst = *pen.v
	}
	if v := p.RepetitionPenalty; v != nil {
		if *v <= 0 || *v > 10 {
			return g, errs.Param("repetition_penalty", "repetition_penalty must be in (0, 10], got %g", *v)
		}
		g.sampling.RepetitionPenalty = *v
	}
	if p.Seed != nil {
		g.sampling.Seed, g.sampling.HasSeed = *p.Seed, true
	}
	if len(p.Stop) > maxStops {
		return g, errs.Param("stop", "at most %d stop sequences are allowed, got %d", maxStops, len(p.Stop))
	}
	for _, s := range p.Stop {
		if s == "" || len(s) > maxStopLen {
			return g, errs.Param("stop", "stop sequences must be 1 to %d bytes long", maxStopLen)
		}
	}
	g.stop = p.Stop
	if p.N != nil {
		if *p.N < 1 || *p.N > 128 {
			return g, errs.Param("n", "n must be between 1 and 128, got %d", *p.N)
		}
		g.n = *p.N
	}
	if p.Logprobs != nil {
		g.logprobs = *p.Logprobs
	}
	if v := p.TopLogprobs; v != nil {
		if *v < 0 || *v > maxTopLogprobs {
			return g, errs.Param("top_logprobs", "top_logprobs must be between 0 and %d, got %d", maxTopLogprobs, *v)
		}
		if *v > 0 && !g.logprobs {
			return g, errs.Param("top_logprobs", "top_logprobs requires logprobs to be true")
		}
		g.topLogprobs = *v
	}
	return g, nil
}

// request builds the engine request for prompt, checking that it fits.
// promptParam names the field the prompt came from (messages or prompt).
func (g *genParams) request(prompt []int, ctxLen int, promptParam string, index int) (engine.Request, error) {
	if len(prompt) == 0 {
		return engine.Request{}, errs.Param(promptParam, "%s is empty after tokenization", promptParam)
	}
	if len(prompt) >= ctxLen {
		return engine.Request{}, errs.Param(promptParam, "%s is %d tokens; the model's context is %d tokens", promptParam, len(prompt), ctxLen).WithCode("context_length_exceeded")
	}
	maxTokens := g.maxTokens
	if maxTokens == 0 {
		maxTokens = ctxLen - len(prompt)
	} else if len(prompt)+maxTokens > ctxLen {
		return engine.Request{}, errs.Param("max_tokens", "%s (%d tokens) plus max_tokens (%d) exceeds the model's context of %d tokens", promptParam, len(prompt), maxTokens, ctxLen).WithCode("context_length_exceeded")
	}
	s := g.sampling
	if s.HasSeed {
		s.Seed += int64(index) // n choices with one seed differ, yet stay reproducible
	}
	return engine.Request{Prompt: prompt, MaxTokens: maxTokens, Sampling: s, Stop: g.stop, Logprobs: g.logprobs, TopLogprobs: g.topLogprobs}, nil
}

// maxBytesPerToken bounds the bytes a token can stand for, so that text far
// too long for the context is refused before it is tokenized.
const maxBytesPerToken = 128
