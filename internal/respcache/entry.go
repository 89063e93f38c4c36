package respcache

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/llmo/llmo/api"
)

// Entry is a cached answer in a normalised form that renders both as a JSON
// response and as an SSE stream, so a streamed request can be served from a
// non-streamed fill and the other way round. Pieces keep the original
// stream's chunking (a non-streamed fill is one piece), so a replayed stream
// delivers the same deltas as the original.
type Entry struct {
	V           int        `json:"v"`
	Kind        string     `json:"kind"` // kindChat or kindText
	Model       string     `json:"model"`
	Fingerprint string     `json:"fp,omitempty"`
	Choices     []Choice   `json:"choices"`
	Usage       *api.Usage `json:"usage,omitempty"`
}

// Choice is one choice of an Entry.
type Choice struct {
	Index        int     `json:"i"`
	Role         string  `json:"role,omitempty"`
	Pieces       []Piece `json:"p"`
	FinishReason string  `json:"fr"`
}

// Piece is one delta of text with its logprobs: for chat, the array inside
// "logprobs":{"content":[...]}; for completions, the legacy logprobs object.
type Piece struct {
	Text     string          `json:"t"`
	Logprobs json.RawMessage `json:"lp,omitempty"`
}

const (
	entryVersion = 1
	kindChat     = "chat"
	kindText     = "text"
)

var errUncacheable = errors.New("response is not cacheable")

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || bytes.Equal(m, []byte("null"))
}

// wire forms, decoded leniently: unknown fields are ignored, but fields we
// cannot reproduce (tool calls, refusals, audio) make a response uncacheable.
type wireResponse struct {
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []wireChoice    `json:"choices"`
	Usage             *api.Usage      `json:"usage"`
	Error             json.RawMessage `json:"error"`
}

type wireChoice struct {
	Index        int                        `json:"index"`
	Message      map[string]json.RawMessage `json:"message"`
	Delta        map[string]json.RawMessage `json:"delta"`
	Text         *string                    `json:"text"`
	FinishReason *string                    `json:"finish_reason"`
	Logprobs     json.RawMessage            `json:"logprobs"`
}

// messageText extracts role and content from a chat message or delta and
// refuses anything else that carries a value.
func messageText(m map[string]json.RawMessage) (role, content string, err error) {
	for k, v := range m {
		switch k {
		case "role":
			if err := json.Unmarshal(v, &role); err != nil {
				return "", "", errUncacheable
			}
		case "content":
			if isNull(v) {
				continue
			}
			if err := json.Unmarshal(v, &content); err != nil {
				return "", "", errUncacheable
			}
		default:
			if !isNull(v) && !bytes.Equal(bytes.TrimSpace(v), []byte("[]")) {
				return "", "", errUncacheable // tool_calls, refusal, audio, ...
			}
		}
	}
	return role, content, nil
}

// chatLogprobsContent is the array inside a chat choice's logprobs.
func chatLogprobsContent(lp json.RawMessage) (json.RawMessage, error) {
	if isNull(lp) {
		return nil, nil
	}
	var x struct {
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(lp, &x); err != nil {
		return nil, errUncacheable
	}
	if isNull(x.Content) {
		return nil, nil
	}
	return x.Content, nil
}

// entryFromJSON normalises a non-streamed response body.
func entryFromJSON(kind string, body []byte) (*Entry, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil || !isNull(w.Error) || len(w.Choices) == 0 {
		return nil, errUncacheable
	}
	e := &Entry{V: entryVersion, Kind: kind, Model: w.Model, Fingerprint: w.SystemFingerprint, Usage: w.Usage}
	for _, c := range w.Choices {
		if c.FinishReason == nil || *c.FinishReason == "" {
			return nil, errUncacheable
		}
		ch := Choice{Index: c.Index, FinishReason: *c.FinishReason}
		var p Piece
		if kind == kindChat {
			role, content, err := messageText(c.Message)
			if err != nil {
				return nil, err
			}
			lp, err := chatLogprobsContent(c.Logprobs)
			if err != nil {
				return nil, err
			}
			ch.Role, p = role, Piece{Text: content, Logprobs: lp}
		} else {
			if c.Text == nil {
				return nil, errUncacheable
			}
			p = Piece{Text: *c.Text}
			if !isNull(c.Logprobs) {
				p.Logprobs = c.Logprobs
			}
		}
		ch.Pieces = []Piece{p}
		e.Choices = append(e.Choices, ch)
	}
	return e, e.check()
}

// check requires choices indexed 0..n-1, each finished.
func (e *Entry) check() error {
	sort.Slice(e.Choices, func(i, j int) bool { return e.Choices[i].Index < e.Choices[j].Index })
	for i, c := range e.Choices {
		if c.Index != i || c.FinishReason == "" {
			return errUncacheable
		}
	}
	if len(e.Choices) == 0 {
		return errUncacheable
	}
	return nil
}

// sseEvents splits an SSE byte stream into the data payloads of its events.
func sseEvents(b []byte) [][]byte {
	var out [][]byte
	var data []byte
	have := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			if have {
				out = append(out, data)
			}
			data, have = nil, false
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if have {
				data = append(append(data, '\n'), v...)
			} else {
				data, have = append([]byte(nil), v...), true
			}
		}
	}
	if have {
		out = append(out, data)
	}
	return out
}

// entryFromSSE normalises a captured SSE stream. It must end with [DONE],
// carry no error event, and finish every choice.
func entryFromSSE(kind string, b []byte) (*Entry, error) {
	e := &Entry{V: entryVersion, Kind: kind}
	byIndex := map[int]*Choice{}
	done := false
	for _, data := range sseEvents(b) {
		if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
			done = true
			continue
		}
		if done {
			return nil, errUncacheable
		}
		var w wireResponse
		if err := json.Unmarshal(data, &w); err != nil || !isNull(w.Error) {
			return nil, errUncacheable
		}
		if w.Model != "" {
			e.Model = w.Model
		}
		if w.SystemFingerprint != "" {
			e.Fingerprint = w.SystemFingerprint
		}
		if w.Usage != nil {
			e.Usage = w.Usage
		}
		for _, c := range w.Choices {
			if c.Index < 0 || c.Index > 1024 {
				return nil, errUncacheable
			}
			ch := byIndex[c.Index]
			if ch == nil {
				ch = &Choice{Index: c.Index}
				byIndex[c.Index] = ch
			}
			var p Piece
			if kind == kindChat {
				role, content, err := messageText(c.Delta)
				if err != nil {
					return nil, err
				}
				if role != "" {
					ch.Role = role
				}
				lp, err := chatLogprobsContent(c.Logprobs)
				if err != nil {
					return nil, err
				}
				p = Piece{Text: content, Logprobs: lp}
			} else {
				if c.Text != nil {
					p.Text = *c.Text
				}
				if !isNull(c.Logprobs) {
					p.Logprobs = c.Logprobs
				}
			}
			if p.Text != "" || p.Logprobs != nil {
				if ch.FinishReason != "" {
					return nil, errUncacheable // content after the end
				}
				ch.Pieces = append(ch.Pieces, p)
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				ch.FinishReason = *c.FinishReason
			}
		}
	}
	if !done {
		return nil, errUncacheable
	}
	for _, ch := range byIndex {
		e.Choices = append(e.Choices, *ch)
	}
	return e, e.check()
}

// ---- rendering ----

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// text is the whole text of a choice.
func (c *Choice) text() string {
	if len(c.Pieces) == 1 {
		return c.Pieces[0].Text
	}
	var b bytes.Buffer
	for _, p := range c.Pieces {
		b.WriteString(p.Text)
	}
	return b.String()
}

// chatLogprobs merges the pieces' token arrays into {"content":[...]}.
func (c *Choice) chatLogprobs() json.RawMessage {
	var all []json.RawMessage
	seen := false
	for _, p := range c.Pieces {
		if p.Logprobs == nil {
			continue
		}
		seen = true
		var arr []json.RawMessage
		if json.Unmarshal(p.Logprobs, &arr) == nil {
			all = append(all, arr...)
		}
	}
	if !seen {
		return json.RawMessage("null")
	}
	if all == nil {
		all = []json.RawMessage{}
	}
	b, _ := json.Marshal(map[string]any{"content": all})
	return b
}

// textLogprobs merges legacy completion logprobs objects.
func (c *Choice) textLogprobs() json.RawMessage {
	type legacy struct {
		Tokens        []json.RawMessage `json:"tokens"`
		TokenLogprobs []json.RawMessage `json:"token_logprobs"`
		TopLogprobs   []json.RawMessage `json:"top_logprobs"`
		TextOffset    []json.RawMessage `json:"text_offset"`
	}
	var n int
	var m legacy
	for _, p := range c.Pieces {
		if p.Logprobs == nil {
			continue
		}
		var x legacy
		if json.Unmarshal(p.Logprobs, &x) != nil {
			continue
		}
		if n == 0 && len(c.Pieces) == 1 {
			return p.Logprobs // unchanged when there is nothing to merge
		}
		n++
		m.Tokens = append(m.Tokens, x.Tokens...)
		m.TokenLogprobs = append(m.TokenLogprobs, x.TokenLogprobs...)
		m.TopLogprobs = append(m.TopLogprobs, x.TopLogprobs...)
		m.TextOffset = append(m.TextOffset, x.TextOffset...)
	}
	if n == 0 {
		return json.RawMessage("null")
	}
	b, _ := json.Marshal(m)
	return b
}

type outChatChoice struct {
	Index        int             `json:"index"`
	Message      outMessage      `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type outMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type outTextChoice struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type outResponse struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Created           int64      `json:"created"`
	Model             string     `json:"model"`
	SystemFingerprint string     `json:"system_fingerprint,omitempty"`
	Choices           any        `json:"choices"`
	Usage             *api.Usage `json:"usage,omitempty"`
}

// JSON renders e as a non-streamed response body.
func (e *Entry) JSON() []byte {
	r := outResponse{Created: time.Now().Unix(), Model: e.Model, SystemFingerprint: e.Fingerprint, Usage: e.Usage}
	if e.Kind == kindChat {
		r.ID, r.Object = newID("chatcmpl-"), "chat.completion"
		cs := make([]outChatChoice, len(e.Choices))
		for i := range e.Choices {
			c := &e.Choices[i]
			role := c.Role
			if role == "" {
				role = "assistant"
			}
			cs[i] = outChatChoice{Index: c.Index, Message: outMessage{Role: role, Content: c.text()}, Logprobs: c.chatLogprobs(), FinishReason: c.FinishReason}
		}
		r.Choices = cs
	} else {
		r.ID, r.Object = newID("cmpl-"), "text_completion"
		cs := make([]outTextChoice, len(e.Choices))
		for i := range e.Choices {
			c := &e.Choices[i]
			fr := c.FinishReason
			cs[i] = outTextChoice{Index: c.Index, Text: c.text(), Logprobs: c.textLogprobs(), FinishReason: &fr}
		}
		r.Choices = cs
	}
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

type outChunkChoice struct {
	Index        int             `json:"index"`
	Delta        *outDelta       `json:"delta,omitempty"`
	Text         *string         `json:"text,omitempty"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type outDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// SSE renders e as a complete event stream ending in [DONE]. The usage
// chunk is included only when the client asked for it.
func (e *Entry) SSE(includeUsage bool) []byte {
	var buf bytes.Buffer
	base := outResponse{Created: time.Now().Unix(), Model: e.Model, SystemFingerprint: e.Fingerprint}
	if e.Kind == kindChat {
		base.ID, base.Object = newID("chatcmpl-"), "chat.completion.chunk"
	} else {
		base.ID, base.Object = newID("cmpl-"), "text_completion"
	}
	emit := func(choices any, usage *api.Usage) {
		r := base
		r.Choices, r.Usage = choices, usage
		b, _ := json.Marshal(r)
		buf.WriteString("data: ")
		buf.Write(b)
		buf.WriteString("\n\n")
	}
	null := json.RawMessage("null")
	for i := range e.Choices {
		c := &e.Choices[i]
		if e.Kind == kindChat {
			role, empty := c.Role, ""
			if role == "" {
				role = "assistant"
			}
			emit([]outChunkChoice{{Index: c.Index, Delta: &outDelta{Role: role, Content: &empty}, Logprobs: null}}, nil)
			for _, p := range c.Pieces {
				text := p.Text
				lp := null
				if p.Logprobs != nil {
					lp, _ = json.Marshal(map[string]json.RawMessage{"content": p.Logprobs})
				}
				emit([]outChunkChoice{{Index: c.Index, Delta: &outDelta{Content: &text}, Logprobs: lp}}, nil)
			}
			fr := c.FinishReason
			emit([]outChunkChoice{{Index: c.Index, Delta: &outDelta{}, Logprobs: null, FinishReason: &fr}}, nil)
			continue
		}
		for _, p := range c.Pieces {
			text := p.Text
			lp := null
			if p.Logprobs != nil {
				lp = p.Logprobs
			}
			emit([]outChunkChoice{{Index: c.Index, Text: &text, Logprobs: lp}}, nil)
		}
		fr, empty := c.FinishReason, ""
		emit([]outChunkChoice{{Index: c.Index, Text: &empty, Logprobs: null, FinishReason: &fr}}, nil)
	}
	if includeUsage && e.Usage != nil {
		emit([]outChunkChoice{}, e.Usage)
	}
	buf.WriteString("data: [DONE]\n\n")
	return buf.Bytes()
}

// write sends e in the client's format.
func (e *Entry) write(w http.ResponseWriter, stream, includeUsage bool) {
	h := w.Header()
	if stream {
		b := e.SSE(includeUsage)
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	b := e.JSON()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
