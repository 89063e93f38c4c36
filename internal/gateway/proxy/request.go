package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// Kind is the API a request is for.
type Kind int

// The proxied APIs.
const (
	Chat Kind = iota
	Completion
	Embedding
)

// Path is the upstream path of k.
func (k Kind) Path() string {
	switch k {
	case Completion:
		return "/v1/completions"
	case Embedding:
		return "/v1/embeddings"
	}
	return "/v1/chat/completions"
}

// KindOf maps a request path to its Kind.
func KindOf(path string) (Kind, bool) {
	switch path {
	case "/v1/chat/completions":
		return Chat, true
	case "/v1/completions":
		return Completion, true
	case "/v1/embeddings":
		return Embedding, true
	}
	return 0, false
}

// Request is a parsed client request: just the fields routing needs. The
// body goes upstream as the client sent it, except that streamed requests
// get stream_options.include_usage.
type Request struct {
	Kind         Kind
	Body         []byte
	Model        string
	Stream       bool
	IncludeUsage bool   // the client asked for the usage chunk
	Prefix       []byte // the prompt prefix for affinity hashing (when asked for)
}

type peek struct {
	Model         *string `json:"model"`
	Stream        *bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages shape `json:"messages"`
	Prompt   shape `json:"prompt"`
	Input    shape `json:"input"`
}

// fast fills p from body the way json.Unmarshal would for the usual
// request (plain string model, boolean or absent stream, no
// stream_options), with one validating pass and one scan of the top-level
// keys instead of reflection. It reports false, leaving the rest to
// json.Unmarshal and its exact error messages, for anything else: invalid
// JSON, escapes in the model, other types, keys in another case (which
// encoding/json would also match).
func (p *peek) fast(body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	var model []byte
	ok := eachTopLevel(body, func(k, v []byte) bool {
		switch string(k) {
		case "model":
			if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
				return false
			}
			model = v[1 : len(v)-1]
		case "stream":
			switch string(v) {
			case "true", "false":
				b := v[0] == 't'
				p.Stream = &b
			case "null":
				p.Stream = nil
			default:
				return false
			}
		case "stream_options":
			if string(v) != "null" {
				return false
			}
			p.StreamOptions = nil
		case "messages":
			return p.Messages.UnmarshalJSON(v) == nil
		case "prompt":
			return p.Prompt.UnmarshalJSON(v) == nil
		case "input":
			return p.Input.UnmarshalJSON(v) == nil
		default:
			for _, f := range peekFields {
				if bytes.EqualFold(k, []byte(f)) {
					return false // another case: encoding/json's business
				}
			}
		}
		return true
	})
	if !ok {
		return false
	}
	if model != nil {
		m := string(model)
		p.Model = &m
	}
	return true
}

var peekFields = [...]string{"model", "stream", "stream_options", "messages", "prompt", "input"}

// shape records what Parse checks of a prompt field (its first byte, and
// whether an array or string is empty) without copying it, as a
// json.RawMessage would.
type shape struct {
	first byte // 0: absent or null
	empty bool // [] or an array of blanks
}

func (s *shape) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*s = shape{}
		return nil
	}
	*s = shape{first: b[0], empty: b[0] == '[' && len(bytes.TrimSpace(b[1:len(b)-1])) == 0}
	return nil
}

// Parse checks body enough to route it and returns the Request. It refuses,
// with a 4xx naming the field, what no upstream could serve: bodies that
// are not JSON objects, a missing model, a non-boolean stream, a missing
// prompt. Everything else is the upstream's to judge. prefixChars > 0 fills
// Prefix with up to that many bytes of the prompt.
func Parse(kind Kind, body []byte, prefixChars int) (*Request, error) {
	var p peek
	// service.DecodeJSONBytes's checks, without its copy of the body.
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errs.E(errs.Invalid, "request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return nil, errs.E(errs.Invalid, "request body is not valid UTF-8")
	}
	if !p.fast(body) {
		p = peek{}
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, service.JSONError(err)
		}
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
	var sh shape
	switch kind {
	case Chat:
		field, sh = "messages", p.Messages
	case Completion:
		field, sh = "prompt", p.Prompt
	case Embedding:
		field, sh = "input", p.Input
	}
	if sh.first == 0 {
		return nil, errs.Param(field, "you must provide %s", field)
	}
	if kind == Chat {
		// Only the shape is checked: content parts (images, audio) are the
		// replica's business, and a vision model behind the gateway takes them.
		if sh.first != '[' {
			return nil, errs.Param("messages", "messages must be an array of message objects")
		}
		if sh.empty {
			return nil, errs.Param("messages", "messages must not be empty")
		}
		if prefixChars > 0 {
			raw := rawField(body, field)
			var msgs []prefixMessage
			if err := json.Unmarshal(raw, &msgs); err != nil {
				return nil, errs.Param("messages", "messages: %s", cleanJSONErr(err))
			}
			r.Prefix = chatPrefix(msgs, prefixChars)
		}
	} else if sh.first != '"' && sh.first != '[' {
		return nil, errs.Param(field, "%s must be a string or an array", field)
	} else if prefixChars > 0 && kind == Completion {
		raw := rawField(body, field)
		var pr api.Prompt
		if err := json.Unmarshal(raw, &pr); err != nil {
			return nil, errs.Param("prompt", "%s", cleanJSONErr(err))
		}
		r.Prefix = completionPrefix(pr, prefixChars)
	}
	return r, nil
}

// rawField is the raw value of a prompt field Unmarshal found in body: the
// exact key by a scan, else (a key in other case, which encoding/json
// matches too) by decoding.
func rawField(body []byte, field string) []byte {
	if raw, ok := topLevelValue(body, field); ok {
		return raw
	}
	var p struct {
		Messages json.RawMessage `json:"messages"`
		Prompt   json.RawMessage `json:"prompt"`
	}
	_ = json.Unmarshal(body, &p)
	if field == "prompt" {
		return p.Prompt
	}
	return p.Messages
}

func cleanJSONErr(err error) string {
	if e := errs.As(service.JSONError(err)); e != nil {
		return e.Message
	}
	return err.Error()
}

// prefixMessage is the part of a message the affinity key covers. Content
// stays raw (a string's JSON form, or an array of parts as sent), which is
// as stable across gateways as the decoded text.
type prefixMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func chatPrefix(msgs []prefixMessage, n int) []byte {
	b := make([]byte, 0, n)
	for _, m := range msgs {
		b = append(b, m.Role...)
		b = append(b, 0)
		b = append(b, m.Content...)
		b = append(b, 0)
		if len(b) >= n {
			return b[:n]
		}
	}
	return b
}

func completionPrefix(p api.Prompt, n int) []byte {
	b := make([]byte, 0, n)
	if len(p.Texts) > 0 {
		b = append(b, p.Texts[0]...)
	} else if len(p.IDs) > 0 {
		for _, id := range p.IDs[0] {
			b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
			if len(b) >= n {
				break
			}
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return b
}

// UpstreamBody is the body to send: the client's, with
// stream_options.include_usage forced on for streams so that usage can be
// accounted. injected reports whether the usage chunk must be stripped.
func (r *Request) UpstreamBody() (body []byte, injected bool, err error) {
	if !r.Stream || r.IncludeUsage || r.Kind == Embedding {
		return r.Body, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, false, errs.Wrap(errs.Invalid, err, "malformed JSON")
	}
	so := map[string]json.RawMessage{}
	if raw, ok := m["stream_options"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &so); err != nil {
			return nil, false, errs.Param("stream_options", "stream_options must be an object")
		}
	}
	so["include_usage"] = json.RawMessage("true")
	enc, _ := json.Marshal(so)
	m["stream_options"] = enc
	out, err := json.Marshal(m)
	if err != nil {
		return nil, false, errs.Wrap(errs.Internal, err, "re-encoding the request")
	}
	return out, true, nil
}

type reqKey struct{}

// WithRequest returns ctx carrying a parsed request, so that layers after
// the one that parsed it do not parse it again.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, reqKey{}, r)
}

// RequestFrom is the parsed request in ctx, or nil.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(reqKey{}).(*Request)
	return r
}
