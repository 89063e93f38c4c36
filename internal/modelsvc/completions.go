package modelsvc

import (
	"net/http"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// completionRequest is api.CompletionRequest with the legacy API's integer
// logprobs (how many alternatives to return), which shadows the chat API's
// boolean in the embedded SamplingParams.
type completionRequest struct {
	api.CompletionRequest
	Logprobs *int `json:"logprobs,omitempty"`
}

const maxCompletionLogprobs = 5

func (s *Service) handleCompletions(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req completionRequest
	if err := decode(r, &req); err != nil {
		s.reject(w, r, err)
		return
	}
	m, err := s.lookup(req.Model)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > maxCompletionLogprobs {
			s.reject(w, r, errs.Param("logprobs", "logprobs must be between 0 and %d, got %d", maxCompletionLogprobs, *req.Logprobs))
			return
		}
		on, top := true, *req.Logprobs
		req.SamplingParams.Logprobs, req.SamplingParams.TopLogprobs = &on, &top
	}
	g, err := parseSampling(&req.SamplingParams, m.ctxLen)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	prompts, err := s.prompts(m, req.Prompt, "prompt", false)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	if len(prompts)*g.n > s.cfg.MaxBatch {
		s.reject(w, r, errs.Param("n", "%d prompts x n=%d is more than this server's %d concurrent sequences", len(prompts), g.n, s.cfg.MaxBatch))
		return
	}
	var reqs []engine.Request
	for _, p := range prompts {
		for j := range g.n {
			rq, err := g.request(p, m.ctxLen, "prompt", j)
			if err != nil {
				s.reject(w, r, err)
				return
			}
			reqs = append(reqs, rq)
		}
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	gen, err := s.start(ctx, m, reqs, arrived)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	defer gen.close()
	id, created := newID("cmpl-"), time.Now().Unix()
	echo := func(i int) string {
		if !req.Echo {
			return ""
		}
		p := i / g.n
		if p < len(req.Prompt.Texts) {
			return req.Prompt.Texts[p]
		}
		return ""
	}
	if g.stream {
		s.streamCompletion(w, gen, &g, id, created, echo)
		return
	}
	results, err := gen.collect(g.logprobs)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	resp := api.CompletionResponse{ID: id, Object: "text_completion", Created: created, Model: m.id, Usage: &api.Usage{}}
	for i, res := range results {
		reason := res.finish
		c := api.CompletionChoice{Index: i, Text: echo(i) + res.text.String(), FinishReason: &reason}
		if g.logprobs {
			c.Logprobs = s.completionLogprobs(m, res.tokens, len(echo(i)))
		}
		resp.Choices = append(resp.Choices, c)
		resp.Usage.CompletionTokens += res.completion
		if i%g.n == 0 {
			resp.Usage.PromptTokens += res.prompt
		}
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens + resp.Usage.CompletionTokens
	service.WriteJSON(w, http.StatusOK, resp)
}

func (s *Service) streamCompletion(w http.ResponseWriter, gen *generation, g *genParams, id string, created int64, echo func(int) string) {
	m := gen.m
	out := startSSE(w)
	chunk := func(c api.CompletionChoice) api.CompletionResponse {
		return api.CompletionResponse{ID: id, Object: "text_completion", Created: created, Model: m.id, Choices: []api.CompletionChoice{c}}
	}
	results := make([]*seqResult, len(gen.chans))
	offsets := make([]int, len(gen.chans))
	for i := range results {
		results[i] = &seqResult{}
		if e := echo(i); e != "" {
			offsets[i] = len(e)
			if out.send(chunk(api.CompletionChoice{Index: i, Text: e})) != nil {
				return
			}
		}
	}
	for e := range gen.events() {
		res := results[e.seq]
		if e.closed && res.finish != "" {
			continue
		}
		before := res.text.Len()
		ended := gen.observe(e, res, false)
		if res.err != nil {
			out.fail(res.err)
			return
		}
		c := api.CompletionChoice{Index: e.seq, Text: res.text.String()[before:]}
		if g.logprobs && !e.ev.Done {
			c.Logprobs = s.completionLogprobs(m, []engine.Event{e.ev}, offsets[e.seq]+before)
		}
		if ended {
			reason := res.finish
			c.FinishReason = &reason
		}
		if c.Text == "" && c.FinishReason == nil && c.Logprobs == nil {
			continue
		}
		if out.send(chunk(c)) != nil {
			return
		}
	}
	if err := gen.ctx.Err(); err != nil {
		out.fail(ctxError(gen.ctx, err))
		return
	}
	if g.includeUsage {
		var u api.Usage
		for i, r := range results {
			u.CompletionTokens += r.completion
			if i%g.n == 0 {
				u.PromptTokens += r.prompt
			}
		}
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		if out.send(api.CompletionResponse{ID: id, Object: "text_completion", Created: created, Model: m.id, Choices: []api.CompletionChoice{}, Usage: &u}) != nil {
			return
		}
	}
	_ = out.done()
}

// completionLogprobs renders events in the legacy completions format;
// offset is the text offset of the first event's token.
func (s *Service) completionLogprobs(m *model, evs []engine.Event, offset int) *api.CompletionLogprobs {
	lp := &api.CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, ev := range evs {
		text := m.b.TokenText(ev.Token)
		lp.Tokens = append(lp.Tokens, text)
		lp.TokenLogprobs = append(lp.TokenLogprobs, float64(ev.Logprob))
		lp.TextOffset = append(lp.TextOffset, offset)
		offset += len(text)
		top := map[string]float64{}
		for _, tp := range ev.Top {
			t := m.b.TokenText(tp.Token) // decoded, as the chosen token is
			top[t] = float64(tp.Logprob)
		}
		lp.TopLogprobs = append(lp.TopLogprobs, top)
	}
	return lp
}
