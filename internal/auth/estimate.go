package auth

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/llmo/llmo/internal/errs"
)

// request is what the auth layer needs from a /v1 body. Fields are raw so
// that a body the model service will reject still decodes here; validation
// is the upstream's job.
type request struct {
	Model               string          `json:"model"`
	Messages            json.RawMessage `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	Input               json.RawMessage `json:"input"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
}

// perMessageOverhead approximates the role and template tokens of a chat
// message.
const perMessageOverhead = 4

// estimateTokens is ceil(bytes/4): about right for English under BPE
// tokenizers and cheap enough to run on every request. Quotas reconcile with
// the real count afterwards, so the estimate only has to be in the right
// range.
func estimateTokens(nbytes int) int { return (nbytes + 3) / 4 }

// parseRequest reads model, prompt size and completion budget from body.
// A body that is not a JSON object yields a zero request (the upstream
// answers 400). It refuses bodies that name the model twice or in another
// letter case: encoding/json matches keys case-insensitively and keeps the
// last, while other JSON parsers may keep the first, so such a body could
// pass the model check here and reach a different model upstream.
func parseRequest(body []byte) (request, error) {
	var req request
	if err := checkModelKeys(body); err != nil {
		return req, err
	}
	if json.Unmarshal(body, &req) != nil {
		return request{}, nil
	}
	return req, nil
}

func checkModelKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, _ := t.(string)
		if strings.EqualFold(k, "model") {
			if k != "model" {
				return errs.Param("model", "the field is spelled %q; it must be \"model\"", k)
			}
			if seen++; seen > 1 {
				return errs.Param("model", "model is given more than once")
			}
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

// promptTokens estimates the prompt of a chat, completion or embedding
// request.
func (r *request) promptTokens() int {
	switch {
	case len(r.Messages) > 0:
		var msgs []struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(r.Messages, &msgs) != nil {
			return estimateTokens(len(r.Messages))
		}
		n := 0
		for _, m := range msgs {
			n += perMessageOverhead + textTokens(m.Content)
		}
		return n
	case len(r.Prompt) > 0:
		return textTokens(r.Prompt)
	case len(r.Input) > 0:
		return textTokens(r.Input)
	}
	return 0
}

// textTokens estimates a string, an array of strings, token ids (counted
// exactly) or content parts.
func textTokens(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return estimateTokens(len(s))
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		n := 0
		for _, x := range ss {
			n += estimateTokens(len(x))
		}
		return n
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return len(ids)
	}
	var idss [][]int
	if json.Unmarshal(raw, &idss) == nil {
		n := 0
		for _, x := range idss {
			n += len(x)
		}
		return n
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		n := 0
		for _, p := range parts {
			n += estimateTokens(len(p.Text))
		}
		return n
	}
	return estimateTokens(len(raw))
}

// completionTokens is the completion budget to reserve: max_tokens (or
// max_completion_tokens), else def, times n choices. Embeddings generate
// nothing.
func (r *request) completionTokens(path string, def int) int {
	if strings.HasSuffix(path, "/embeddings") {
		return 0
	}
	m := def
	switch {
	case r.MaxCompletionTokens != nil && *r.MaxCompletionTokens > 0:
		m = *r.MaxCompletionTokens
	case r.MaxTokens != nil && *r.MaxTokens > 0:
		m = *r.MaxTokens
	}
	m = min(m, 1<<30) // no overflow below, whatever the client sent
	if r.N != nil && *r.N > 1 {
		m *= min(*r.N, 128)
	}
	return m
}
