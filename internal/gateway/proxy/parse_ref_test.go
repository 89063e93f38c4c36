package proxy

// The previous Parse (service.DecodeJSONBytes into json.RawMessage fields),
// kept as the reference the faster one must agree with.

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

type peekRef struct {
	Model         *string `json:"model"`
	Stream        *bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages json.RawMessage `json:"messages"`
	Prompt   json.RawMessage `json:"prompt"`
	Input    json.RawMessage `json:"input"`
}

func parseReference(kind Kind, body []byte, prefixChars int) (*Request, error) {
	var p peekRef
	if err := service.DecodeJSONBytes(body, &p); err != nil {
		return nil, err
	}
	if p.Model == nil || *p.Model == "" {
		return nil, errs.Param("model", "you must provide a model parameter")
	}
	if len(*p.Model) > 256 {
		return nil, errs.Param("model", "model name is longer than 256 bytes")
	}
	r := &Request{Kind: kind, Body: body, Model: *p.Model}
	if p.Stream != nil {
		r.Stream = *p.Stream
	}
	if p.StreamOptions != nil && p.StreamOptions.IncludeUsage != nil {
		r.IncludeUsage = *p.StreamOptions.IncludeUsage
	}
	if kind == Embedding && r.Stream {
		return nil, errs.Param("stream", "embeddings cannot be streamed")
	}
	var field string
	var raw json.RawMessage
	switch kind {
	case Chat:
		field, raw = "messages", p.Messages
	case Completion:
		field, raw = "prompt", p.Prompt
	case Embedding:
		field, raw = "input", p.Input
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, errs.Param(field, "you must provide %s", field)
	}
	if kind == Chat {
		// Only the shape is checked: content parts (images, audio) are the
		// replica's business, and a vision model behind the gateway takes them.
		if raw[0] != '[' {
			return nil, errs.Param("messages", "messages must be an array of message objects")
		}
		if len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0 {
			return nil, errs.Param("messages", "messages must not be empty")
		}
		if prefixChars > 0 {
			var msgs []prefixMessage
			if err := json.Unmarshal(raw, &msgs); err != nil {
				return nil, errs.Param("messages", "messages: %s", cleanJSONErr(err))
			}
			r.Prefix = chatPrefix(msgs, prefixChars)
		}
	} else if raw[0] != '"' && raw[0] != '[' {
		return nil, errs.Param(field, "%s must be a string or an array", field)
	} else if prefixChars > 0 && kind == Completion {
		var pr api.Prompt
		if err := json.Unmarshal(raw, &pr); err != nil {
			return nil, errs.Param("prompt", "%s", cleanJSONErr(err))
		}
		r.Prefix = completionPrefix(pr, prefixChars)
	}
	return r, nil
}

// FuzzParseMatchesReference: same verdict, same message, same Request.
func FuzzParseMatchesReference(f *testing.F) {
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, `{"model":"m","stream":true,"stream_options":{"x":1},"prompt":"a"}`,
		`{"model":"m","input":[[1,2]]}`, `[]`, `{"model":1}`, `{"model":"m","messages":[ ]}`, `{"model":"m","messages":null}`,
		`{"model":"m","Messages":[{"role":"user","content":"x"}]}`, `{"model":"m","prompt":[1,2,3]}`, `{"model":"m","messages":"x"}`,
		` `, "\xff", `{"model":"m","messages":[{"role":"user","content":"a"}],"messages":[]}`,
		`{"model":"m","stream":true,"stream":null,"prompt":"x"}`, `{"MODEL":"m","prompt":"x"}`, `{"model":"m\u0041","prompt":"x"}`,
		`{"model":"m","stream":"yes","prompt":"x"}`, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{}]}`,
		`{"model":"m","model":7,"input":"x"}`, `{"model":"m","messages":[{"role":"user","content":"x"}] ,}`, `{}`, `{"model":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, k := range []Kind{Chat, Completion, Embedding} {
			for _, n := range []int{0, 32} {
				got, gerr := Parse(k, []byte(body), n)
				want, werr := parseReference(k, []byte(body), n)
				if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
					t.Fatalf("Parse(%d, %q) error %v; reference %v", k, body, gerr, werr)
				}
				if gerr == nil && !reflect.DeepEqual(got, want) {
					t.Fatalf("Parse(%d, %q) = %+v; reference %+v", k, body, got, want)
				}
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	body := []byte(`{"model":"fake","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in five words."}],"max_tokens":16}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(Chat, body, 0); err != nil {
			b.Fatal(err)
		}
	}
}

var _ = bytes.TrimSpace
var _ = errs.Param
var _ = service.JSONError
var _ api.Prompt
var _ json.RawMessage

func BenchmarkParseReference(b *testing.B) {
	body := []byte(`{"model":"fake","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in five words."}],"max_tokens":16}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseReference(Chat, body, 0); err != nil {
			b.Fatal(err)
		}
	}
}
