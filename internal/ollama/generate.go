package ollama

import (
	"encoding/json"
	"net/http"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

func (h *handler) generate(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	var req api.OllamaGenerateRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if err := requireModel(req.Model); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Prompt == "" && !req.Raw && req.System == "" {
		h.load(w, r, req.Model, req.KeepAlive, false)
		return
	}
	if !req.Raw && req.Template == "" {
		// Ollama renders a model without a template as the bare prompt. An
		// llmo replica says whether it has one; other servers are assumed
		// to (chat models served by vLLM and friends do).
		if m, err := h.findModel(r, req.Model); err == nil && m.OwnedBy == "llmo" && !m.ChatTemplate {
			req.Raw = true
			if req.System != "" {
				req.Prompt = req.System + "\n\n" + req.Prompt
			}
		}
	}
	path, body, err := translateGenerate(&req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.generation(w, r, &emitter{model: req.Model, start: start, now: h.now}, path, body, streamOf(req.Stream))
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	var req api.OllamaChatRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if err := requireModel(req.Model); err != nil {
		writeError(w, r, err)
		return
	}
	if len(req.Messages) == 0 {
		h.load(w, r, req.Model, req.KeepAlive, true)
		return
	}
	body, err := translateChat(&req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.generation(w, r, &emitter{chat: true, model: req.Model, start: start, now: h.now}, "/v1/chat/completions", body, streamOf(req.Stream))
}

// generation runs a translated request, streamed (NDJSON) or not.
func (h *handler) generation(w http.ResponseWriter, r *http.Request, em *emitter, path string, body any, stream bool) {
	if !stream {
		var c chunk
		if err := h.call(r, http.MethodPost, path, body, &c); err != nil {
			fail(w, r, err)
			return
		}
		service.WriteJSON(w, http.StatusOK, em.fromResponse(&c))
		return
	}
	req, err := h.v1Request(r, http.MethodPost, path, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	nw := newNDJSONWriter(w, em)
	h.v1.ServeHTTP(nw, req)
	if nw.status == 0 {
		nw.status = http.StatusOK
	}
	switch {
	case nw.sse:
		nw.finish()
	case nw.status >= 300:
		fail(w, r, upstreamError(nw.status, nw.hdr, nw.buf.Bytes()))
	default:
		// A 200 that is not SSE (an upstream that ignores stream, or a
		// cached answer stored whole): one final line carries it all.
		var c chunk
		if err := json.Unmarshal(nw.buf.Bytes(), &c); err != nil {
			writeError(w, r, errs.Wrap(errs.BadGateway, err, "upstream sent a malformed answer"))
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		b, _ := json.Marshal(em.fromResponse(&c))
		_, _ = w.Write(append(b, '\n'))
	}
}

// load answers a generate or chat request with nothing to generate, which
// Ollama clients send to load (or, with keep_alive 0, unload) a model. The
// model is looked up so that an unknown model is a 404 and the caller's key
// is checked, as a real request would be.
func (h *handler) load(w http.ResponseWriter, r *http.Request, model string, keepAlive json.RawMessage, chat bool) {
	if _, err := h.findModel(r, model); err != nil {
		fail(w, r, err)
		return
	}
	reason := "load"
	if unloadRequested(keepAlive) {
		reason = "unload"
	}
	now := h.now().UTC()
	if chat {
		service.WriteJSON(w, http.StatusOK, api.OllamaChatResponse{Model: model, CreatedAt: now, Message: api.OllamaMessage{Role: "assistant"}, Done: true, DoneReason: reason})
		return
	}
	service.WriteJSON(w, http.StatusOK, api.OllamaGenerateResponse{Model: model, CreatedAt: now, Done: true, DoneReason: reason})
}
