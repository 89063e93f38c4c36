package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// chatRequest is the /v1/chat/completions body the translation builds.
type chatRequest struct {
	Model    string           `json:"model"`
	Messages []map[string]any `json:"messages"`
	api.SamplingParams
	Tools          json.RawMessage `json:"tools,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

// completionRequest is the /v1/completions body for raw generation.
type completionRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	api.SamplingParams
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

// sampling maps Ollama options onto OpenAI sampling parameters.
func sampling(raw json.RawMessage, stream bool) (api.SamplingParams, error) {
	var sp api.SamplingParams
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			return sp, errs.Param("options", "options must be a JSON object")
		}
		var o api.OllamaOptions
		if err := json.Unmarshal(raw, &o); err != nil {
			return sp, optionsError(err)
		}
		sp.Temperature, sp.TopP, sp.TopK, sp.MinP, sp.Seed = o.Temperature, o.TopP, o.TopK, o.MinP, o.Seed
		sp.PresencePenalty, sp.FrequencyPenalty, sp.RepetitionPenalty = o.PresencePenalty, o.FrequencyPenalty, o.RepeatPenalty
		sp.Stop = o.Stop
		// num_predict: -1 is "until done", -2 "fill the context"; both
		// mean no max_tokens. 0 generates nothing in Ollama, which OpenAI
		// cannot express, so it is refused.
		if o.NumPredict != nil {
			switch n := *o.NumPredict; {
			case n > 0:
				sp.MaxTokens = &n
			case n == 0 || n < -2:
				return sp, errs.Param("options.num_predict", "num_predict must be positive, -1 (no limit) or -2 (fill the context)")
			}
		}
	}
	sp.Stream = stream
	if stream {
		// Usage feeds the final line's counts; the proxy would strip it
		// for a client that did not ask, so ask.
		sp.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	}
	return sp, nil
}

func optionsError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return errs.Param("options."+te.Field, "options.%s: expected %s, got %s", te.Field, te.Type.String(), te.Value)
	}
	e := errs.As(service.JSONError(err))
	if e.Param != "" {
		e.Param = "options." + e.Param
	}
	return errs.Wrap(errs.Invalid, err, "options: %s", e.Message)
}

// responseFormat maps Ollama's format ("json" or a JSON schema object) to
// OpenAI's response_format.
func responseFormat(format json.RawMessage) (json.RawMessage, error) {
	format = bytes.TrimSpace(format)
	if len(format) == 0 || bytes.Equal(format, []byte("null")) || bytes.Equal(format, []byte(`""`)) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(format, &s) == nil {
		if s != "json" {
			return nil, errs.Param("format", `format must be "json" or a JSON schema object, got %q`, s)
		}
		return json.RawMessage(`{"type":"json_object"}`), nil
	}
	if format[0] != '{' || !json.Valid(format) {
		return nil, errs.Param("format", `format must be "json" or a JSON schema object`)
	}
	b, _ := json.Marshal(map[string]any{
		"type":        "json_schema",
		"json_schema": map[string]any{"name": "ollama_format", "schema": format, "strict": true},
	})
	return b, nil
}

// stream reads Ollama's "stream", which defaults to true.
func streamOf(p *bool) bool { return p == nil || *p }

// unloadRequested reports keep_alive 0 ("0", "0s", 0), which with an empty
// prompt asks Ollama to unload the model.
func unloadRequested(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "0", `"0"`, `"0s"`, `"0m"`:
		return true
	}
	return false
}

// translateGenerate turns /api/generate into a chat or (raw) completion
// request. Non-raw prompts go through the chat endpoint so that the model's
// own chat template is applied, as Ollama applies the model's template.
func translateGenerate(req *api.OllamaGenerateRequest) (path string, body any, err error) {
	switch {
	case len(req.Images) > 0:
		return "", nil, errs.Param("images", "images are not supported: llmo serves text models")
	case req.Template != "":
		return "", nil, errs.Param("template", "custom templates are not supported; send raw=true with the prompt already formatted")
	case req.Suffix != "":
		return "", nil, errs.Param("suffix", "suffix (fill-in-the-middle) is not supported")
	}
	sp, err := sampling(req.Options, streamOf(req.Stream))
	if err != nil {
		return "", nil, err
	}
	rf, err := responseFormat(req.Format)
	if err != nil {
		return "", nil, err
	}
	if req.Raw {
		return "/v1/completions", completionRequest{Model: req.Model, Prompt: req.Prompt, SamplingParams: sp, ResponseFormat: rf}, nil
	}
	var msgs []map[string]any
	if req.System != "" {
		msgs = append(msgs, map[string]any{"role": "system", "content": req.System})
	}
	msgs = append(msgs, map[string]any{"role": "user", "content": req.Prompt})
	return "/v1/chat/completions", chatRequest{Model: req.Model, Messages: msgs, SamplingParams: sp, ResponseFormat: rf}, nil
}

// translateChat turns /api/chat into /v1/chat/completions.
func translateChat(req *api.OllamaChatRequest) (any, error) {
	sp, err := sampling(req.Options, streamOf(req.Stream))
	if err != nil {
		return nil, err
	}
	rf, err := responseFormat(req.Format)
	if err != nil {
		return nil, err
	}
	msgs := make([]map[string]any, 0, len(req.Messages))
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, errs.Param(fmt.Sprintf("messages[%d].role", i), "role must be system, user, assistant or tool, got %q", m.Role)
		}
		if len(m.Images) > 0 {
			return nil, errs.Param(fmt.Sprintf("messages[%d].images", i), "images are not supported: llmo serves text models")
		}
		om := map[string]any{"role": m.Role, "content": m.Content}
		if m.Role == "tool" && m.ToolName != "" {
			om["name"] = m.ToolName
		}
		if len(m.ToolCalls) > 0 {
			calls := make([]map[string]any, 0, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				args := "{}"
				if a := bytes.TrimSpace(tc.Function.Arguments); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
					args = string(a)
				}
				calls = append(calls, map[string]any{
					"id": fmt.Sprintf("call_%d_%d", i, j), "type": "function",
					"function": map[string]any{"name": tc.Function.Name, "arguments": args},
				})
			}
			om["tool_calls"] = calls
		}
		msgs = append(msgs, om)
	}
	tools := bytes.TrimSpace(req.Tools)
	if bytes.Equal(tools, []byte("null")) {
		tools = nil
	}
	if len(tools) > 0 && tools[0] != '[' {
		return nil, errs.Param("tools", "tools must be an array")
	}
	return chatRequest{Model: req.Model, Messages: msgs, SamplingParams: sp, Tools: tools, ResponseFormat: rf}, nil
}

// openAIToolCalls converts OpenAI tool calls (arguments as a JSON string)
// to Ollama's (arguments as an object).
func openAIToolCalls(raw json.RawMessage) []api.OllamaToolCall {
	var calls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &calls) != nil {
		return nil
	}
	out := make([]api.OllamaToolCall, 0, len(calls))
	for i, c := range calls {
		args := json.RawMessage(c.Function.Arguments)
		if !json.Valid(args) {
			args, _ = json.Marshal(map[string]string{"raw": c.Function.Arguments})
		}
		out = append(out, api.OllamaToolCall{Function: api.OllamaToolCallFunction{Index: i, Name: c.Function.Name, Arguments: args}})
	}
	return out
}

// doneReason maps an OpenAI finish_reason to Ollama's done_reason.
func doneReason(finish string) string {
	switch finish {
	case "length":
		return "length"
	case "":
		return "stop"
	}
	return "stop" // stop, tool_calls, content_filter
}

// requireModel is Ollama's own check, done before any upstream call.
func requireModel(model string) error {
	if strings.TrimSpace(model) == "" {
		return errs.Param("model", "model is required")
	}
	return nil
}
