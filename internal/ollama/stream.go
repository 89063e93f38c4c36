package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/llmo/llmo/api"
)

// chunk is the union of a chat.completion.chunk, a text_completion chunk
// and a non-streamed answer of either, plus an error event.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content   string          `json:"content"`
			ToolCalls json.RawMessage `json:"tool_calls"`
		} `json:"delta"`
		Message *struct {
			Content   string          `json:"content"`
			ToolCalls json.RawMessage `json:"tool_calls"`
		} `json:"message"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *api.Usage      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// errorMessage reads an SSE error payload: OpenAI's object or a string.
func errorMessage(raw json.RawMessage) string {
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	return "upstream error"
}

// emitter writes Ollama lines for one generation (chat or generate shape).
type emitter struct {
	chat   bool
	model  string
	start  time.Time
	now    func() time.Time
	first  time.Time // first content token
	reason string
	usage  *api.Usage
	done   bool // final line or error line written
}

func (e *emitter) line(content string, tools []api.OllamaToolCall) any {
	now := e.now().UTC()
	if e.chat {
		return api.OllamaChatResponse{Model: e.model, CreatedAt: now, Message: api.OllamaMessage{Role: "assistant", Content: content, ToolCalls: tools}}
	}
	return api.OllamaGenerateResponse{Model: e.model, CreatedAt: now, Response: content}
}

// final is the done:true line with Ollama's timings. Streams know when the
// first token came (prompt eval ends there); buffered answers do not, so
// their whole duration counts as eval.
func (e *emitter) final(content string, tools []api.OllamaToolCall) any {
	end := e.now()
	m := &api.OllamaMetrics{TotalDuration: int64(end.Sub(e.start))}
	if e.usage != nil {
		m.PromptEvalCount, m.EvalCount = e.usage.PromptTokens, e.usage.CompletionTokens
	}
	if !e.first.IsZero() {
		m.PromptEvalDuration, m.EvalDuration = int64(e.first.Sub(e.start)), int64(end.Sub(e.first))
	} else {
		m.EvalDuration = m.TotalDuration
	}
	reason := doneReason(e.reason)
	if e.chat {
		return api.OllamaChatResponse{Model: e.model, CreatedAt: end.UTC(), Message: api.OllamaMessage{Role: "assistant", Content: content, ToolCalls: tools},
			Done: true, DoneReason: reason, OllamaMetrics: m}
	}
	return api.OllamaGenerateResponse{Model: e.model, CreatedAt: end.UTC(), Response: content, Done: true, DoneReason: reason, OllamaMetrics: m}
}

// fromResponse builds the single answer of a non-streamed request.
func (e *emitter) fromResponse(c *chunk) any {
	var content string
	var tools []api.OllamaToolCall
	if len(c.Choices) > 0 {
		ch := c.Choices[0]
		if ch.Message != nil {
			content = ch.Message.Content
			if len(ch.Message.ToolCalls) > 0 {
				tools = openAIToolCalls(ch.Message.ToolCalls)
			}
		} else {
			content = ch.Text
		}
		if ch.FinishReason != nil {
			e.reason = *ch.FinishReason
		}
	}
	e.usage = c.Usage
	e.done = true
	return e.final(content, tools)
}

// ndjsonWriter is the ResponseWriter the /v1 handler writes a streamed
// answer into. It parses the SSE events as they come and writes each as an
// NDJSON line to the client, flushing at once. An error status (or a
// non-SSE answer) is buffered instead, for translation after the handler
// returns.
type ndjsonWriter struct {
	client  http.ResponseWriter
	hdr     http.Header
	status  int
	sse     bool
	buf     bytes.Buffer // partial SSE line, or the whole buffered answer
	data    []byte       // the current event's data
	em      *emitter
	werr    error // a failed client write
	flusher http.Flusher
}

func newNDJSONWriter(client http.ResponseWriter, em *emitter) *ndjsonWriter {
	f, _ := client.(http.Flusher)
	return &ndjsonWriter{client: client, hdr: http.Header{}, em: em, flusher: f}
}

func (w *ndjsonWriter) Header() http.Header { return w.hdr }

func (w *ndjsonWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	ct := w.hdr.Get("Content-Type")
	if code == http.StatusOK && strings.HasPrefix(ct, "text/event-stream") {
		w.sse = true
		h := w.client.Header()
		h.Set("Content-Type", "application/x-ndjson")
		for k, v := range w.hdr {
			if strings.HasPrefix(k, "X-Llmo-") || k == "X-Cache" {
				h[k] = v
			}
		}
		w.client.WriteHeader(http.StatusOK)
	}
}

func (w *ndjsonWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if !w.sse {
		if w.buf.Len()+len(p) > maxUpstreamBody {
			return 0, errors.New("upstream answer too large")
		}
		return w.buf.Write(p)
	}
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(w.buf.Next(i+1), "\r\n")
		w.sseLine(line)
		if w.werr != nil {
			return 0, w.werr
		}
	}
	if w.buf.Len() > maxUpstreamBody {
		return 0, errors.New("SSE line too long")
	}
	return len(p), nil
}

func (w *ndjsonWriter) Flush() {
	if w.flusher != nil && w.sse {
		w.flusher.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines)
// through this writer.
func (w *ndjsonWriter) Unwrap() http.ResponseWriter { return w.client }

// sseLine handles one SSE line: data lines accumulate, a blank line
// dispatches the event, comments and other fields are ignored.
func (w *ndjsonWriter) sseLine(line []byte) {
	switch {
	case len(line) == 0:
		if w.data != nil {
			w.event(w.data)
			w.data = nil
		}
	case bytes.HasPrefix(line, []byte("data:")):
		d := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
		if w.data != nil {
			w.data = append(w.data, '\n')
		}
		w.data = append(w.data, d...)
	}
}

// event translates one SSE event.
func (w *ndjsonWriter) event(data []byte) {
	em := w.em
	if em.done {
		return
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		w.emit(em.final("", nil))
		em.done = true
		return
	}
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		w.emit(map[string]string{"error": "upstream sent a malformed stream event"})
		em.done = true
		return
	}
	if len(c.Error) > 0 && !bytes.Equal(c.Error, []byte("null")) {
		w.emit(map[string]string{"error": errorMessage(c.Error)})
		em.done = true
		return
	}
	if c.Usage != nil {
		em.usage = c.Usage
	}
	for _, ch := range c.Choices {
		text := ch.Delta.Content
		if text == "" {
			text = ch.Text
		}
		var tools []api.OllamaToolCall
		if len(ch.Delta.ToolCalls) > 0 && !bytes.Equal(ch.Delta.ToolCalls, []byte("null")) {
			tools = openAIToolCalls(ch.Delta.ToolCalls)
		}
		if text != "" || len(tools) > 0 {
			if em.first.IsZero() {
				em.first = em.now()
			}
			w.emit(em.line(text, tools))
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			em.reason = *ch.FinishReason
		}
	}
}

func (w *ndjsonWriter) emit(v any) {
	if w.werr != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal error: encoding a response line failed"}`)
	}
	if _, err := w.client.Write(append(b, '\n')); err != nil {
		w.werr = err
		return
	}
	if w.flusher != nil {
		w.flusher.Flush()
	}
}

// finish ends a stream after the /v1 handler returned: a pending event is
// dispatched, and a stream that stopped without [DONE] ends with a final
// line if the upstream had finished, else with an error line.
func (w *ndjsonWriter) finish() {
	if rest := bytes.TrimRight(w.buf.Bytes(), "\r\n"); len(rest) > 0 {
		w.buf.Reset()
		w.sseLine(rest)
	}
	if w.data != nil {
		w.event(w.data)
		w.data = nil
	}
	if w.em.done {
		return
	}
	w.em.done = true
	if w.em.reason != "" {
		w.emit(w.em.final("", nil))
		return
	}
	w.emit(map[string]string{"error": "the upstream stream ended before the generation finished"})
}
