package modelsvc

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/chattmpl"
	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

const maxMessages = 4096

var chatRoles = map[string]string{"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}

func (s *Service) handleChat(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req api.ChatRequest
	if err := decode(r, &req); err != nil {
		s.reject(w, r, err)
		return
	}
	m, err := s.lookup(req.Model)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	g, err := parseSampling(&req.SamplingParams, m.ctxLen)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	if err := checkUnsupported(req); err != nil {
		s.reject(w, r, err)
		return
	}
	prompt, err := s.chatPrompt(m, req.Messages)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	reqs := make([]engine.Request, g.n)
	for i := range reqs {
		if reqs[i], err = g.request(prompt, m.ctxLen, "messages", i); err != nil {
			s.reject(w, r, err)
			return
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
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if g.stream {
		s.streamChat(w, gen, &g, id, created)
		return
	}
	results, err := gen.collect(g.logprobs)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	resp := api.ChatResponse{ID: id, Object: "chat.completion", Created: created, Model: m.id, Usage: &api.Usage{}}
	for i, res := range results {
		c := api.ChatChoice{Index: i, Message: api.Message{Role: "assistant", Content: api.Content(res.text.String())}, FinishReason: res.finish}
		if g.logprobs {
			c.Logprobs = &api.ChatLogprobs{Content: s.tokenLogprobs(m, res.tokens)}
		}
		resp.Choices = append(resp.Choices, c)
		resp.Usage.CompletionTokens += res.completion
	}
	resp.Usage.PromptTokens = results[0].prompt
	resp.Usage.TotalTokens = resp.Usage.PromptTokens + resp.Usage.CompletionTokens
	service.WriteJSON(w, http.StatusOK, resp)
}

// checkUnsupported refuses features that would otherwise be silently
// ignored and give the client something it did not ask for.
func checkUnsupported(req api.ChatRequest) error {
	if t := strings.TrimSpace(string(req.Tools)); t != "" && t != "null" && t != "[]" {
		return errs.Param("tools", "tool calling is not supported by this server")
	}
	if rf := strings.TrimSpace(string(req.ResponseFormat)); rf != "" && rf != "null" {
		var v struct {
			Type string `json:"type"`
		}
		if err := service.DecodeJSONBytes(req.ResponseFormat, &v); err != nil || (v.Type != "text" && v.Type != "") {
			return errs.Param("response_format", "only response_format {\"type\":\"text\"} is supported")
		}
	}
	return nil
}

// chatPrompt renders the messages with the model's chat template and
// tokenizes the result.
func (s *Service) chatPrompt(m *model, msgs []api.Message) ([]int, error) {
	if len(msgs) == 0 {
		return nil, errs.Param("messages", "messages must contain at least one message")
	}
	if len(msgs) > maxMessages {
		return nil, errs.Param("messages", "at most %d messages are allowed, got %d", maxMessages, len(msgs))
	}
	if m.tmpl == nil {
		return nil, errs.Param("messages", "model %s has no chat template; use /v1/completions, or start the server with --chat-template (chatml, llama2, llama3 or a file)", m.id).WithCode("chat_template_missing")
	}
	total := 0
	norm := make([]api.Message, len(msgs))
	for i, msg := range msgs {
		role, ok := chatRoles[msg.Role]
		if !ok {
			return nil, errs.Param("messages", "messages[%d].role %q is not one of system, developer, user, assistant, tool", i, truncate(msg.Role, 40))
		}
		if !utf8.ValidString(string(msg.Content)) {
			return nil, errs.Param("messages", "messages[%d].content is not valid UTF-8", i)
		}
		total += len(msg.Content)
		norm[i] = api.Message{Role: role, Content: msg.Content, Name: msg.Name, ToolCallID: msg.ToolCallID}
	}
	if total > maxBytesPerToken*m.ctxLen {
		return nil, errs.Param("messages", "messages are %d bytes, far longer than the model's context of %d tokens", total, m.ctxLen).WithCode("context_length_exceeded")
	}
	text, err := m.tmpl.Render(norm, true, m.bos, m.eos)
	if err != nil {
		var te *chattmpl.TemplateError
		if errors.As(err, &te) {
			return nil, errs.Param("messages", "the model's chat template rejected the messages: %s", te.Msg)
		}
		return nil, errs.Wrap(errs.Invalid, err, "the model's chat template could not render these messages").WithCode("chat_template_error")
	}
	// Templates that print bos_token themselves must not get a second one.
	addBOS := m.bos == "" || !strings.HasPrefix(text, m.bos)
	return m.b.Encode(text, addBOS, true)
}

func (s *Service) streamChat(w http.ResponseWriter, gen *generation, g *genParams, id string, created int64) {
	m := gen.m
	out := startSSE(w)
	chunk := func(choices []api.ChatChunkChoice) api.ChatChunk {
		return api.ChatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: m.id, Choices: choices}
	}
	for i := range gen.chans {
		if out.send(chunk([]api.ChatChunkChoice{{Index: i, Delta: api.Delta{Role: "assistant"}}})) != nil {
			return
		}
	}
	results := make([]*seqResult, len(gen.chans))
	for i := range results {
		results[i] = &seqResult{}
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
		c := api.ChatChunkChoice{Index: e.seq}
		c.Delta.Content = res.text.String()[before:]
		if g.logprobs && !e.ev.Done {
			c.Logprobs = &api.ChatLogprobs{Content: s.tokenLogprobs(m, []engine.Event{e.ev})}
		}
		if ended {
			reason := res.finish
			c.FinishReason = &reason
		}
		if c.Delta.Content == "" && c.FinishReason == nil && c.Logprobs == nil {
			continue
		}
		if out.send(chunk([]api.ChatChunkChoice{c})) != nil {
			return // the client went away; close() frees the slots
		}
	}
	if err := gen.ctx.Err(); err != nil {
		out.fail(ctxError(gen.ctx, err))
		return
	}
	if g.includeUsage {
		u := usageOf(results)
		c := chunk([]api.ChatChunkChoice{})
		c.Usage = &u
		if out.send(c) != nil {
			return
		}
	}
	_ = out.done()
}

func usageOf(results []*seqResult) api.Usage {
	var u api.Usage
	for _, r := range results {
		u.CompletionTokens += r.completion
	}
	if len(results) > 0 {
		u.PromptTokens = results[0].prompt
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// tokenLogprobs renders engine events as the chat API's logprobs.
func (s *Service) tokenLogprobs(m *model, evs []engine.Event) []api.TokenLogprob {
	out := make([]api.TokenLogprob, 0, len(evs))
	for _, ev := range evs {
		text := m.b.TokenText(ev.Token)
		tl := api.TokenLogprob{Token: text, Logprob: float64(ev.Logprob), Bytes: bytesOf(text), TopLogprobs: []api.TopLogprob{}}
		for _, tp := range ev.Top {
			t := m.b.TokenText(tp.Token) // decoded, as the chosen token is
			tl.TopLogprobs = append(tl.TopLogprobs, api.TopLogprob{Token: t, Logprob: float64(tp.Logprob), Bytes: bytesOf(t)})
		}
		out = append(out, tl)
	}
	return out
}

func bytesOf(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
